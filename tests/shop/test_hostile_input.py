"""Input built to break the request rather than the rules: JSON nested too deep to parse, a
charset Python knows but cannot decode text with, a body over Django's size limit, more fields
or files than Django reads. Each is a 4xx that writes nothing: JSON on the API, plain text on
the pages, never a 500 (docs/api.md, "Errors").

Hypothesis picks the depths, charsets, sizes and counts (limits included). The requests go
through the whole middleware stack with Django's test client, which here answers a crash with
the 500 a visitor would get instead of raising it; the charsets through the WSGI application
gunicorn serves, since one can break the request before Django's middleware runs.
"""

import codecs
import encodings
import pkgutil
from encodings.aliases import aliases

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from werkzeug.test import Client as WsgiClient

from config.wsgi import application
from jobs.models import Job
from sandbox.models import Charge, SmsMessage
from sandbox.switches import get_switch
from shop.models import Order
from tests.factories import ProductFactory, customer_with_token

pytestmark = pytest.mark.django_db

FUZZ = hypothesis_settings(
    max_examples=30,
    deadline=None,
    database=None,
    # One database and one customer for all the examples of a test: nothing may be written.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True, params=[False, True], ids=["production", "debug"])
def debug(request, settings) -> bool:
    """Each test as production runs (DEBUG off) and as the demo does (DEBUG on), where Django's
    and DRF's error handling take other ways: an error raised again on the way to the 500
    page got past every handler to the server's own bare 500."""
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def visitor() -> Client:
    return Client(raise_request_exception=False)


@pytest.fixture
def customer_token() -> str:
    ProductFactory(sku="MUG-001", stock=10)
    return customer_with_token()[1]


def users_orders_jobs() -> tuple[int, int, int]:
    return get_user_model().objects.count(), Order.objects.count(), Job.objects.count()


def assert_api_refusal(response, *statuses: int) -> dict:
    """A 4xx in one of the contract's two JSON shapes."""
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json", response.content[:300]
    body = response.json()
    assert set(body) in ({"detail"}, {"errors"}), body
    return body


def assert_page_refusal(response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])


# --- JSON nested deeper than Python parses --------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# Bare, and where each API expects an object or a string: never valid, at any depth.
SHAPES = [
    nested,
    lambda depth: '{"items": ' + nested(depth) + "}",
    lambda depth: '{"email": ' + nested(depth) + ', "name": "M", "password": "hostile-input-1"}',
    lambda depth: '{"latency_ms": ' + nested(depth) + "}",
]
# Anywhere, and around Python's recursion limit (1,000): deep enough to fail somewhere, not
# yet when parsed.
depths = st.integers(min_value=1, max_value=200_000) | st.integers(min_value=800, max_value=1_100)


def post_json_to_signup_and_orders(visitor, customer_token: str, body: str):
    """The same JSON body to the two API operations that take one: (signup, order)."""
    signup = visitor.post("/api/signup", body, content_type="application/json")
    order = visitor.post(
        "/api/orders",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {customer_token}"},
    )
    return signup, order


@given(depth=depths, shape=st.sampled_from(SHAPES))
@example(depth=100_000, shape=SHAPES[0])
@example(depth=100_000, shape=SHAPES[1])
@example(depth=2_000, shape=SHAPES[2])
@FUZZ
def test_deeply_nested_json_is_a_400_on_the_api(visitor, customer_token, depth, shape):
    before = users_orders_jobs()
    body = shape(depth)

    signup, order = post_json_to_signup_and_orders(visitor, customer_token, body)

    assert_api_refusal(signup, 400)
    assert_api_refusal(order, 400)
    assert users_orders_jobs() == before


def switch_values(service: str) -> tuple:
    switch = get_switch(service)
    return switch.latency_ms, switch.failure_rate, switch.fail_next


@given(depth=depths, shape=st.sampled_from([SHAPES[0], SHAPES[3]]))
@example(depth=100_000, shape=SHAPES[0])
@example(depth=100_000, shape=SHAPES[3])
@example(depth=900, shape=SHAPES[3])
@FUZZ
def test_deeply_nested_json_is_a_400_from_the_sandbox(visitor, depth, shape):
    before = switch_values("crm")
    body = shape(depth)

    switch = visitor.post("/sandbox/switches/crm", body, content_type="application/json")
    charge = visitor.post(
        "/sandbox/payments/charges", body, "application/json", headers={"Idempotency-Key": "k"}
    )
    sms = visitor.post(
        "/sandbox/sms/messages", body, "application/json", headers={"Idempotency-Key": "k"}
    )

    for response in (switch, charge, sms):
        assert response.status_code == 400, (response.status_code, response.content[:300])
        assert set(response.json()) in ({"detail"}, {"errors"})
    assert switch_values("crm") == before
    assert not Charge.objects.exists()
    assert not SmsMessage.objects.exists()


# --- Charsets Django would decode the query string and the body with ------------------------


def known_charsets() -> list[str]:
    """Every name Python's codec registry answers to: text encodings, and codecs that are not
    (bz2_codec, base64, rot13) or cannot decode every byte string (idna, punycode, undefined)."""
    names = set(aliases) | set(aliases.values())
    names |= {module.name for module in pkgutil.iter_modules(encodings.__path__)}
    return sorted(name for name in names if _known(name))


def _known(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


charsets = st.sampled_from([*known_charsets(), "no-such-charset", ""])
API_ANSWERS = {"products", "signup", "orders", "unknown"}


@pytest.fixture
def wsgi() -> WsgiClient:
    """The WSGI application gunicorn serves: Django's test client would build the request
    itself, and a charset can break that before any middleware runs."""
    return WsgiClient(application)


def call(wsgi: WsgiClient, method: str, path: str, *, query: bytes, content_type: str, **kwargs):
    # The query string as raw bytes, the way a WSGI server hands it on (as Latin-1).
    return wsgi.open(
        path,
        method=method,
        content_type=content_type,
        environ_overrides={"QUERY_STRING": query.decode("latin-1")},
        **kwargs,
    )


# Django's request signals close the connection, which ends the `db` fixture's transaction.
@pytest.mark.django_db(transaction=True)
@given(charset=charsets, query=st.binary(min_size=1, max_size=60))
@example(charset="bz2_codec", query=b"page=1")
@example(charset="idna", query=b"q=" + b"x" * 100)
@example(charset="punycode", query=b"q=\xff")
@example(charset="undefined", query=b"q=1")
@FUZZ
def test_no_charset_makes_a_500_on_any_address(wsgi, customer_token, charset, query):
    before = users_orders_jobs()
    json_type = f"application/json; charset={charset}"
    form_type = f"application/x-www-form-urlencoded; charset={charset}"
    bearer = {"Authorization": f"Bearer {customer_token}"}

    answers = {
        "products": call(wsgi, "GET", "/api/products", query=query, content_type=json_type),
        "signup": call(
            wsgi, "POST", "/api/signup", query=query, content_type=json_type, data=b"{}"
        ),
        "orders": call(
            wsgi,
            "POST",
            "/api/orders",
            query=query,
            content_type=json_type,
            data=b'{"items": []}',
            headers=bearer,
        ),
        "unknown": call(wsgi, "GET", "/api/nowhere", query=query, content_type=json_type),
        "catalogue": call(wsgi, "GET", "/", query=query, content_type=json_type),
        "login page": call(
            wsgi, "POST", "/login", query=query, content_type=form_type, data=b"username=x"
        ),
        "sandbox": call(wsgi, "GET", "/sandbox/switches/crm", query=query, content_type=json_type),
    }

    for name, response in answers.items():
        assert response.status_code < 500, (name, response.status_code, response.data[:300])
        if name in API_ANSWERS:
            assert response.content_type == "application/json", (name, response.data[:300])
    assert users_orders_jobs() == before


@pytest.mark.django_db(transaction=True)
def test_a_charset_that_is_not_a_text_encoding_is_refused_with_415(wsgi):
    bz2 = "text/plain; charset=bz2_codec"

    api = call(wsgi, "GET", "/api/products", query=b"page=1", content_type=bz2)
    page = call(wsgi, "GET", "/", query=b"page=1", content_type=bz2)

    assert (api.status_code, api.content_type) == (415, "application/json")
    assert "bz2_codec" in api.json["detail"]
    assert page.status_code == 415
    assert page.content_type.startswith("text/plain")


# --- Bodies over DATA_UPLOAD_MAX_MEMORY_SIZE --------------------------------------------------

LIMIT = settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def json_of_size(size: int) -> str:
    """A signup-shaped JSON body of exactly `size` bytes (a name far too long)."""
    envelope = '{"email": "m@example.com", "password": "hostile-input-1", "name": ""}'
    return envelope[:-2] + "x" * (size - len(envelope)) + '"}'


sizes = st.integers(min_value=LIMIT - 100, max_value=LIMIT + 100) | st.integers(
    min_value=1_000, max_value=3 * LIMIT
)


@given(size=sizes)
@example(size=LIMIT)
@example(size=LIMIT + 1)
@FUZZ
def test_a_json_body_over_the_size_limit_is_a_json_413(visitor, customer_token, size):
    before = users_orders_jobs()
    body = json_of_size(size)
    assert len(body.encode()) == size

    signup, order = post_json_to_signup_and_orders(visitor, customer_token, body)

    if size > LIMIT:
        for response in (signup, order):
            assert "larger than" in assert_api_refusal(response, 413)["detail"]
    else:
        assert assert_api_refusal(signup, 400)["errors"]["name"]
        assert assert_api_refusal(order, 400)["errors"]["items"]
    assert users_orders_jobs() == before


@given(size=st.integers(min_value=LIMIT + 1, max_value=2 * LIMIT))
@FUZZ
def test_a_page_or_sandbox_body_over_the_size_limit_is_a_plain_4xx(visitor, size):
    before = users_orders_jobs()

    page = visitor.post(
        "/signup", "name=" + "x" * size, content_type="application/x-www-form-urlencoded"
    )
    sandbox = visitor.post("/sandbox/switches/crm", json_of_size(size), "application/json")

    assert_page_refusal(page)
    assert_page_refusal(sandbox)
    assert users_orders_jobs() == before


# --- More fields, files or query parameters than Django reads --------------------------------

FIELDS = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
FILES = settings.DATA_UPLOAD_MAX_NUMBER_FILES
counts = st.integers(min_value=FIELDS - 5, max_value=FIELDS + 5) | st.integers(1, 3 * FIELDS)


@given(count=counts)
@example(count=FIELDS)
@example(count=FIELDS + 1)
@FUZZ
def test_too_many_multipart_fields_is_a_json_400(visitor, count):
    before = users_orders_jobs()
    fields = {f"field{number}": "x" for number in range(count)}

    response = visitor.post("/api/signup", fields)  # multipart/form-data

    body = assert_api_refusal(response, 400)
    if count > FIELDS:
        assert body == {"detail": f"The request has more than {FIELDS} fields."}
    else:
        assert "email" in body["errors"]
    assert users_orders_jobs() == before


@given(count=st.integers(min_value=1, max_value=3 * FILES))
@example(count=FILES + 1)
@FUZZ
def test_too_many_files_is_a_json_400(visitor, count):
    before = users_orders_jobs()
    files = {f"file{n}": SimpleUploadedFile(f"{n}.png", b"x") for n in range(count)}

    response = visitor.post("/api/signup", {"email": "mallory@example.com", **files})

    body = assert_api_refusal(response, 400)
    if count > FILES:
        assert body == {"detail": f"The request has more than {FILES} files."}
    assert users_orders_jobs() == before


@given(count=counts)
@example(count=FIELDS + 1)
@FUZZ
def test_too_many_query_parameters_is_a_400(visitor, count):
    query = "&".join(f"p{number}=1" for number in range(count))

    api = visitor.get(f"/api/products?{query}")
    page = visitor.get(f"/?{query}")

    if count > FIELDS:
        assert assert_api_refusal(api, 400) == {
            "detail": f"The request has more than {FIELDS} fields."
        }
        assert page.status_code == 400
        assert page.content == f"The request has more than {FIELDS} fields.".encode()
        # Refused on its way in, and still answered with every header an answer carries.
        for answer in (api, page):
            assert answer["X-Content-Type-Options"] == "nosniff"
            assert answer["X-Frame-Options"] == "DENY"
    else:
        assert (api.status_code, page.status_code) == (200, 200)


@given(count=st.integers(min_value=FIELDS + 1, max_value=3 * FIELDS))
@FUZZ
def test_too_many_fields_on_a_page_is_a_plain_400(visitor, count):
    fields = {f"field{number}": "x" for number in range(count)}

    response = visitor.post("/signup", fields)

    assert response.status_code == 400
    assert not get_user_model().objects.exists()
