"""The API keeps the promises of its own schema, /api/openapi.json, under generated input.

Schemathesis reads the published schema from the WSGI app, in process, and sends every
operation requests built from it: the schema's examples, its boundary values (coverage) and
random ones (fuzzing), valid and invalid. Every answer must be a non-5xx whose status code,
content type and body are the ones the schema documents for it (plus schemathesis' other
default checks: auth enforced, 405 for undeclared methods, invalid input refused).

Runs in the test database with `transactional_db`: requests go through Django's real WSGI
handler, whose request signals close the connection, which would end the `db` fixture's
wrapping transaction after the first request. Committed signups and orders publish their jobs
to the test broker; no worker is needed, and the queues are emptied before and after.
"""

import pytest
import schemathesis
from django.conf import settings as django_settings
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from config.wsgi import application
from tests.factories import ProductFactory, customer_with_token

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)

# Bounded and reproducible (same requests every run): about 30 s for the file on 2 cores.
FUZZ = settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    # One database (and one customer) per operation, shared by its examples, on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

STALE_TOKEN = {"Authorization": "Bearer revoked-or-made-up-token"}

# Signup and orders also refuse, with a documented 400, input that no schema can rule out:
# Django's password validators (too common, entirely numeric, too short), skus that are not in
# the catalogue, more than the stock, a sku twice. So "schema-valid input is accepted" does
# not apply to them; every other check does.
SERVER_SIDE_RULES = {"POST /api/signup", "POST /api/orders"}


def excluded_checks(case) -> list:
    return [positive_data_acceptance] if case.operation.label in SERVER_SIDE_RULES else []


def call_and_validate(case, **kwargs):
    """The case, less a made-up `Host` header that the generator sometimes adds among the
    extra headers of a negative case: Django refuses a host the site does not serve before any
    view, with the `400 {"detail": "Bad request."}` docs/api.md ("Errors") promises of every
    operation, which says nothing about the operation the case is for."""
    if case.headers:
        for name in [name for name in case.headers if name.lower() == "host"]:
            del case.headers[name]
    return case.call_and_validate(**kwargs)


@pytest.fixture
def catalogue(transactional_db, empty_queues):
    """The product the schema's order example names, in stock for every order of the run."""
    ProductFactory(sku="MUG-001", price="14.00", stock=10_000)
    yield
    # Leave no published jobs behind for later tests (as `empty_queues` does before).
    for queue in django_settings.QUEUES:
        empty_queues.delete(queue, *empty_queues.keys(f"{queue}\x06\x16*"))


@pytest.fixture
def customer_headers(catalogue) -> dict[str, str]:
    _, token = customer_with_token()
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@FUZZ
def test_as_a_customer(case, customer_headers):
    call_and_validate(case, headers=customer_headers, excluded_checks=excluded_checks(case))


@schema.parametrize()
@FUZZ
def test_with_a_stale_token(case, catalogue):
    """A revoked or made-up token: a documented 401 where credentials count, ignored elsewhere."""
    call_and_validate(case, headers=STALE_TOKEN, excluded_checks=excluded_checks(case))


def _takes_credentials(context) -> bool:
    """Operations whose schema names an auth scheme (signup, catalogue, health name none)."""
    security = context.operation.definition.raw.get("security", [])
    return any(requirement for requirement in security)


@schema.include(_takes_credentials).parametrize()
@FUZZ
def test_without_valid_credentials(case, catalogue):
    """No token, or whatever schemathesis makes up: every answer documented (401s included)."""
    call_and_validate(case, excluded_checks=excluded_checks(case))


def test_reads_of_a_real_order_and_its_jobs_match_the_schema(customer_headers):
    """The 200s of GET /api/orders/{id} and /api/jobs/{id}: ids no generator can guess."""
    placed = (
        schema["/api/orders"]["POST"]
        .Case(body={"items": [{"sku": "MUG-001", "quantity": 2}]}, media_type="application/json")
        .call_and_validate(headers=customer_headers)
    )
    assert placed.status_code == 201
    order_id, jobs = placed.json()["order"]["id"], placed.json()["jobs"]

    order = (
        schema["/api/orders/{order_id}"]["GET"]
        .Case(path_parameters={"order_id": order_id})
        .call_and_validate(headers=customer_headers)
    )
    assert order.status_code == 200
    assert order.json()["order"]["id"] == order_id
    assert jobs
    for job in jobs:
        answer = (
            schema["/api/jobs/{job_id}"]["GET"]
            .Case(path_parameters={"job_id": job["id"]})
            .call_and_validate(headers=customer_headers)
        )
        assert answer.status_code == 200
        assert answer.json()["job"]["id"] == job["id"]
