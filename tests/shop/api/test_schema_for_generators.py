"""/api/openapi.json is a schema client generators can use (docs/api.md, "A generated client").

What a generator reads from it: who needs credentials (`security`), one shape per body type,
function names (operationIds); and the proof, a client generated from it whose every module
imports. tests/integration/test_generated_client.py uses such a client against a live server.
"""

import keyword
import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs.models import DeadLetter
from shop.tokens import issue_token
from tests.factories import CustomerFactory, DeadLetterFactory
from tests.generated_client import generated_client

# docs/api.md, "Authentication": the operations that read no credentials.
PUBLIC = {("/api/signup", "post"), ("/api/products", "get"), ("/api/health", "get")}


@pytest.fixture
def schema_bytes(api_client) -> bytes:
    response = api_client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.content


@pytest.fixture
def operations(api_client) -> dict[tuple[str, str], dict]:
    schema = api_client.get("/api/openapi.json").json()
    return {
        (path, method): operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }


def test_public_operations_declare_no_security_requirement(operations):
    """`security: []`, not `[{}]` ("credentials optional"): from that, openapi-python-client
    made signup and the catalogue demand a client with a token."""
    assert operations.keys() >= PUBLIC
    for key in PUBLIC:
        assert operations[key]["security"] == [], key


def test_every_other_operation_requires_the_bearer_token_or_the_session(operations):
    others = {key: operation for key, operation in operations.items() if key not in PUBLIC}
    assert ("/api/orders", "post") in others
    assert ("/api/ops/stats", "get") in others
    for key, operation in others.items():
        # Either scheme alone is enough, and nothing less: no empty `{}` alternative.
        assert operation["security"] == [{"bearerAuth": []}, {"cookieAuth": []}], key


def test_each_body_type_of_an_operation_has_a_schema_of_its_own(operations):
    """Signup takes JSON or a multipart form with an avatar: two components, the file only in
    the form's, so a generated client knows which body it holds and how to send it."""
    for key, operation in operations.items():
        content = operation.get("requestBody", {}).get("content", {})
        refs = [body["schema"]["$ref"] for body in content.values()]
        assert len(set(refs)) == len(refs), (key, refs)

    signup = operations[("/api/signup", "post")]["requestBody"]
    assert signup["required"] is True
    assert signup["content"].keys() == {"application/json", "multipart/form-data"}
    components = {
        media_type: body["schema"]["$ref"].rsplit("/", 1)[1]
        for media_type, body in signup["content"].items()
    }
    assert components == {
        "application/json": "SignupInputRequest",
        "multipart/form-data": "SignupWithAvatarInputRequest",
    }


def test_the_json_signup_has_no_file_and_the_form_has_the_avatar(api_client):
    schemas = api_client.get("/api/openapi.json").json()["components"]["schemas"]
    assert "avatar" not in schemas["SignupInputRequest"]["properties"]
    avatar = schemas["SignupWithAvatarInputRequest"]["properties"]["avatar"]
    assert avatar == {"type": "string", "format": "binary"}


def test_no_value_is_a_choice_between_plain_strings(api_client):
    """A `oneOf` of inline schemas is a type of its own to some generators, a wrapper to build
    the value with: the phone number, which may be blank, is one string with one pattern."""
    schemas = api_client.get("/api/openapi.json").json()["components"]["schemas"]

    def choices_of_inline_schemas(node, where):
        if isinstance(node, dict):
            for key in ("oneOf", "anyOf"):
                if key in node and not all("$ref" in option for option in node[key]):
                    yield where
            for key, value in node.items():
                yield from choices_of_inline_schemas(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from choices_of_inline_schemas(value, f"{where}/{index}")

    assert list(choices_of_inline_schemas(schemas, "")) == []
    for body in ("SignupInputRequest", "SignupWithAvatarInputRequest"):
        phone = schemas[body]["properties"]["phone"]
        assert phone["type"] == "string"
        assert "phone" not in schemas[body]["required"]
        for accepted in ("", "+4915112345678", "+12"):
            assert re.search(phone["pattern"], accepted), accepted
        for refused in ("004915112345678", "+0151", "+49 151 12345678", "+1234567890123456"):
            assert not re.search(phone["pattern"], refused), refused


@pytest.mark.django_db
def test_the_dead_letter_actions_take_json_only_as_the_schema_says(api_client, operations):
    """One body type each: the operations API refuses a form (415) and acts on nothing."""
    for path in (
        "/api/ops/dead-letters/{letter_id}/discard",
        "/api/ops/dead-letters/{letter_id}/requeue",
    ):
        assert operations[(path, "post")]["requestBody"]["content"].keys() == {"application/json"}
    staff = get_user_model().objects.create_user(
        username="ops@example.com", email="ops@example.com", is_staff=True
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(staff)}")
    letter = DeadLetterFactory(job__concerning=CustomerFactory())

    for action in ("discard", "requeue"):
        url = f"/api/ops/dead-letters/{letter.pk}/{action}"
        response = api_client.post(url, {"reason": "fixed"}, format="multipart")
        assert response.status_code == 415, (action, response.content)
    letter.refresh_from_db()
    assert letter.status == DeadLetter.Status.OPEN
    discard = f"/api/ops/dead-letters/{letter.pk}/discard"
    assert api_client.post(discard, {"reason": "fixed"}, format="json").status_code == 204


def test_operation_ids_are_unique_snake_case_function_names(operations):
    ids = [operation["operationId"] for operation in operations.values()]
    assert len(set(ids)) == len(ids), ids
    for operation_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", operation_id), operation_id
        assert not keyword.iskeyword(operation_id)
    # The function names docs/api.md lists.
    named = {
        ("/api/signup", "post"): "signup",
        ("/api/products", "get"): "list_products",
        ("/api/orders", "post"): "place_order",
        ("/api/orders/{order_id}", "get"): "get_order",
        ("/api/orders/{order_id}/cancel", "post"): "cancel_order",
        ("/api/jobs/{job_id}", "get"): "get_job",
        ("/api/health", "get"): "get_health",
        ("/api/ops/orders/{order_id}/ship", "post"): "ship_order",
        ("/api/ops/stats", "get"): "get_ops_stats",
        ("/api/ops/dead-letters", "get"): "list_dead_letters",
        ("/api/ops/dead-letters/{letter_id}/requeue", "post"): "requeue_dead_letter",
        ("/api/ops/dead-letters/{letter_id}/discard", "post"): "discard_dead_letter",
        ("/api/ops/dead-letters/requeue", "post"): "requeue_matching_dead_letters",
        ("/api/ops/dead-letters/discard", "post"): "discard_matching_dead_letters",
        ("/api/ops/queues/{queue}/pause", "post"): "pause_queue",
        ("/api/ops/queues/{queue}/resume", "post"): "resume_queue",
        ("/api/ops/jobs/{job_id}/cancel", "post"): "cancel_job",
    }
    assert {key: operations[key]["operationId"] for key in named} == named


def test_a_client_generated_from_the_schema_imports_every_module(schema_bytes, tmp_path):
    """openapi-python-client, offline, warnings counted as failures; then every module of the
    package is imported (the issue: signup's did not, `NameError`)."""
    with generated_client(schema_bytes, tmp_path) as module:
        signup = module("api.signup.signup")
        models = module("models")
        # The one function takes either body, and sends each its own way.
        json_body = models.SignupInputRequest(email="a@example.com", name="A", password="p")
        form_body = models.SignupWithAvatarInputRequest(
            email="a@example.com", name="A", password="p"
        )
        assert "json" in signup._get_kwargs(body=json_body)
        assert "files" in signup._get_kwargs(body=form_body)
        assert "json" not in signup._get_kwargs(body=form_body)
        # Public operations take a plain client; with `security: [{}]` the generator made
        # them insist on an AuthenticatedClient, a token to sign up with.
        client = module("client")
        for public in ("signup.signup", "products.list_products", "health.get_health"):
            annotation = module(f"api.{public}").sync.__annotations__["client"]
            assert annotation == client.AuthenticatedClient | client.Client, public
        place_order = module("api.orders.place_order")
        assert place_order.sync.__annotations__["client"] is client.AuthenticatedClient


def test_every_operation_declares_the_refusals_any_operation_may_answer(api_client, operations):
    """docs/api.md, "Errors": any operation may answer 400 (too many query fields) and 503 (the
    database away), and one with a body 413 and 415 as well, each `{"detail"}`. Undeclared, a
    generated client returned None for them, or raised; declared as field errors only
    (signup's 413, whose avatar is the other), it failed on the missing `errors`."""
    components = api_client.get("/api/openapi.json").json()["components"]["schemas"]

    def shapes(response: dict) -> set[str]:
        schema = response["content"]["application/json"]["schema"]
        refs = [schema, *schema.get("oneOf", [])]
        names = {ref["$ref"].rsplit("/", 1)[1] for ref in refs if "$ref" in ref}
        found = set()
        for name in names:
            component = components[name]
            for part in [component, *component.get("oneOf", [])]:
                part = components[part["$ref"].rsplit("/", 1)[1]] if "$ref" in part else part
                found |= set(part.get("properties", {}))
        return found

    for key, operation in operations.items():
        statuses = ["400", "503", *(["413", "415"] if "requestBody" in operation else [])]
        for status in statuses:
            assert status in operation["responses"], (key, status)
            if (key, status) == (("/api/health", "get"), "503"):
                continue  # its own answer: the health of each part, the database's "down"
            assert "detail" in shapes(operation["responses"][status]), (key, status)
    signup_413 = operations["/api/signup", "post"]["responses"]["413"]
    assert shapes(signup_413) == {"detail", "errors"}


@pytest.mark.django_db
@pytest.mark.parametrize("progress", [None, {"done": 3, "total": 10}])
def test_a_jobs_progress_null_or_not_is_valid_by_the_openapi_3_0_rules(api_client, progress):
    """OpenAPI 3.0's `nullable` adds null only to a `type` in the same schema; a `$ref` beside
    it (drf-spectacular's `allOf: [$ref], nullable`) still refuses null, and strict validators
    and generators refused every job not yet reporting progress."""
    from openapi_schema_validator import OAS30Validator

    from jobs.dispatch import new_job
    from jobs.serializers import JobOut

    schema = api_client.get("/api/openapi.json").json()
    job = new_job("jobs.track_analytics_event", event_id="e-1", name="n", properties={})
    job.created_at = timezone.now()
    if progress:
        job.progress_done, job.progress_total = progress["done"], progress["total"]
    answer = JobOut(job).data
    assert answer["progress"] == progress
    validator = OAS30Validator(
        {"$ref": "#/components/schemas/JobOut", "components": schema["components"]}
    )

    assert [(list(error.path), error.message) for error in validator.iter_errors(answer)] == []


def test_every_field_of_an_answer_is_required_as_docs_api_says(api_client):
    """docs/api.md, "Shapes": every field of an answer is always present. A generated client
    makes an optional field an `Unset` its user must test for."""
    schemas = api_client.get("/api/openapi.json").json()["components"]["schemas"]
    answers = {
        name: schema
        for name, schema in schemas.items()
        if "properties" in schema and not name.endswith("Request")  # the bodies sent
    }
    assert "DeadLetterOut" in answers
    for name, schema in answers.items():
        assert set(schema.get("required", [])) == set(schema["properties"]), name
