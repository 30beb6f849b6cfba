"""Throttling of signups, logins and bearer tokens (docs/api.md, "Throttling").

Over its limit, a client gets 429 with `Retry-After` and a message: `{"detail"}` from the API,
the page with the message from the HTML pages. Counted per address (signups, logins, bad
tokens) and per account (logins), in the cache every web process shares. The suite runs with
throttling off (tests/embedded_services.py); these tests turn it on at low rates.
"""

import logging
import uuid

import pytest
from django.contrib.auth import get_user_model

from stack.waiting import free_port
from tests.factories import CustomerFactory, ProductFactory, UserFactory, customer_with_token

pytestmark = pytest.mark.django_db

RATES = {"signup": "3/hour", "login": "5/hour", "login_account": "3/hour", "bad_token": "3/minute"}
PASSWORD = "a-long-enough-password"  # the factories' password


@pytest.fixture
def throttles(settings):
    """The low rates above, counted afresh: under a cache key prefix of this test's own."""
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }
    settings.THROTTLE_RATES = RATES


def signup(api_client, n: int, **extra):
    body = {"email": f"user{n}@example.com", "name": "User", "password": "a-fine-long-password"}
    return api_client.post("/api/signup", body, format="json", **extra)


def assert_retry_after(response, at_most: int) -> None:
    assert 0 < int(response["Retry-After"]) <= at_most


# --- API signup -------------------------------------------------------------------------------


def test_api_signups_from_one_address_are_429_over_the_limit(api_client, throttles):
    # A forged X-Forwarded-For does not make another client: the address is the connection's.
    for n in range(3):
        assert signup(api_client, n, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code == 201

    refused = signup(api_client, 3, HTTP_X_FORWARDED_FOR="198.51.100.3")

    assert refused.status_code == 429
    assert refused.json() == {
        "detail": "Too many signups from this address. "
        f"Expected available in {refused['Retry-After']} seconds."
    }
    assert_retry_after(refused, 3600)
    assert not get_user_model().objects.filter(email="user3@example.com").exists()
    # Another address is not held back.
    assert signup(api_client, 4, REMOTE_ADDR="192.0.2.44").status_code == 201


# --- bearer tokens ----------------------------------------------------------------------------


def test_bad_bearer_tokens_from_one_address_are_429_over_the_limit(api_client, throttles):
    ProductFactory(sku="MUG-001", stock=100)
    _, token = customer_with_token()
    order = {"items": [{"sku": "MUG-001", "quantity": 1}]}

    def place(bearer: str, **extra):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {bearer}", **extra}
        return api_client.post("/api/orders", order, format="json", **headers)

    # A good token is never counted, however often it is used.
    for _ in range(5):
        assert place(token).status_code == 201
    for n in range(3):
        assert place(f"guess-{n}").status_code == 401

    refused = place("guess-3")

    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many invalid tokens from this address.")
    assert_retry_after(refused, 60)
    # Even a good token is refused from there until then, or a guesser would learn which guess
    # was right; from another address it works.
    assert place(token).status_code == 429
    assert place(token, REMOTE_ADDR="192.0.2.44").status_code == 201


# --- HTML login -------------------------------------------------------------------------------


def test_login_attempts_from_one_address_are_429_over_the_limit(client, throttles):
    for n in range(5):  # five different accounts: the address is what is counted
        wrong = client.post("/login", {"username": f"nobody{n}@example.com", "password": "x"})
        assert wrong.status_code == 200
    user = UserFactory()

    refused = client.post("/login", {"username": user.email, "password": PASSWORD})

    assert refused.status_code == 429
    assert_retry_after(refused, 3600)
    assert "Too many login attempts. Try again in" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # From another address the same login goes through.
    other = client.post(
        "/login", {"username": user.email, "password": PASSWORD}, REMOTE_ADDR="192.0.2.44"
    )
    assert other.status_code == 302


def test_login_attempts_at_one_account_are_429_over_the_limit(client, throttles):
    user = UserFactory(email="ada@example.com", username="ada@example.com")
    # Three addresses, and the email spelled three ways: it is the same account.
    for n, spelling in enumerate(["ada@example.com", "ADA@example.com", " Ada@Example.com "]):
        wrong = client.post(
            "/login", {"username": spelling, "password": "wrong"}, REMOTE_ADDR=f"192.0.2.{n}"
        )
        assert wrong.status_code == 200

    refused = client.post(
        "/login", {"username": user.email, "password": PASSWORD}, REMOTE_ADDR="192.0.2.9"
    )

    assert refused.status_code == 429
    assert_retry_after(refused, 3600)
    assert "Too many login attempts. Try again in" in refused.content.decode()
    # Another account logs in from that same address.
    other = UserFactory()
    ok = client.post(
        "/login", {"username": other.email, "password": PASSWORD}, REMOTE_ADDR="192.0.2.9"
    )
    assert ok.status_code == 302


def test_the_admin_login_counts_with_the_shops_login(client, throttles):
    """The admin's login page is a login like any other: an address or an account over the
    limit there is over it everywhere, and the admin answers 429 with the message too."""
    staff = UserFactory(email="staff@example.com", username="staff@example.com", is_staff=True)
    for _ in range(3):  # three wrong passwords for the staff account, on the shop's page
        wrong = client.post("/login", {"username": staff.email, "password": "wrong"})
        assert wrong.status_code == 200
    for n in range(2):  # and two at other accounts, on the admin's: five from this address
        wrong = client.post(
            "/admin/login/", {"username": f"nobody{n}@example.com", "password": "wrong"}
        )
        assert wrong.status_code == 200

    refused = client.post("/admin/login/", {"username": staff.email, "password": PASSWORD})

    assert refused.status_code == 429
    assert_retry_after(refused, 3600)
    assert "Too many login attempts. Try again in" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address is not held back, but the account is (three wrong passwords).
    again = client.post(
        "/admin/login/",
        {"username": staff.email, "password": PASSWORD},
        REMOTE_ADDR="192.0.2.80",
    )
    assert again.status_code == 429
    other = UserFactory(is_staff=True)
    ok = client.post(
        "/admin/login/",
        {"username": other.username, "password": PASSWORD},
        REMOTE_ADDR="192.0.2.81",
    )
    assert ok.status_code == 302


# --- HTML signup ------------------------------------------------------------------------------


def test_signups_on_the_page_from_one_address_are_429_over_the_limit(client, throttles):
    def sign_up(n: int, **extra):
        body = {"email": f"page{n}@example.com", "name": "Page", "password": "a-fine-long-one"}
        return client.post("/signup", body, **extra)

    for n in range(3):
        assert sign_up(n).status_code == 302

    refused = sign_up(3)

    assert refused.status_code == 429
    assert_retry_after(refused, 3600)
    assert "Too many signups from this address. Try again in" in refused.content.decode()
    assert not get_user_model().objects.filter(email="page3@example.com").exists()
    assert sign_up(4, REMOTE_ADDR="192.0.2.44").status_code == 302


def test_the_page_and_the_api_count_an_address_signups_together(client, api_client, throttles):
    for n in range(3):
        assert signup(api_client, n).status_code == 201

    refused = client.post(
        "/signup", {"email": "page@example.com", "name": "Page", "password": "a-fine-long-one"}
    )

    assert refused.status_code == 429


# --- a cache outage ---------------------------------------------------------------------------


def test_with_the_cache_down_signups_logins_and_tokens_go_through(
    client, api_client, throttles, settings, caplog
):
    """Fail open: the broker's Redis down must not turn every signup and login into a 500."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        }
    }
    ProductFactory(sku="MUG-001", stock=100)
    _, token = customer_with_token()
    user = CustomerFactory().user

    with caplog.at_level(logging.WARNING, logger="shop.throttling"):
        assert signup(api_client, 1).status_code == 201
        login = client.post("/login", {"username": user.email, "password": PASSWORD})
        assert login.status_code == 302
        order = api_client.post(
            "/api/orders",
            {"items": [{"sku": "MUG-001", "quantity": 1}]},
            format="json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert order.status_code == 201

    assert "let through" in caplog.text


# --- the contract -----------------------------------------------------------------------------


def test_the_schema_documents_429_wherever_a_throttle_can_answer(api_client):
    """Signup, and every operation that reads a bearer token: generated clients know it."""
    schema = api_client.get("/api/openapi.json").json()
    throttled = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            takes_tokens = any("bearerAuth" in item for item in operation.get("security", []))
            if takes_tokens or (path, method) == ("/api/signup", "post"):
                throttled.append((path, method, "429" in operation["responses"]))

    assert ("/api/signup", "post", True) in throttled
    assert ("/api/orders", "post", True) in throttled
    assert all(documented for _, _, documented in throttled), throttled
