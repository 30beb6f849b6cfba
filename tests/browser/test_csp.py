"""Every page in Chromium under the Content-Security-Policy (config/settings.py): nothing a page
loads, runs or fetches is refused, the live parts keep updating, the admin's scripts work.

Chromium reports each refusal as a console error ("Refused to execute inline script because it
violates the following Content Security Policy directive: ...").
"""

import pytest
from django.contrib.auth import get_user_model

from shop import services
from shop.models import Customer, Product

pytestmark = pytest.mark.browser

PASSWORD = "run-the-shop-1"


@pytest.fixture
def order(transactional_db, empty_queues):
    """A pending order of a customer who is also staff (no worker runs: its timeline stays live)."""
    user = get_user_model().objects.create_user(
        username="ops@example.com",
        email="ops@example.com",
        password=PASSWORD,
        is_staff=True,
        is_superuser=True,
    )
    customer = Customer.objects.create(user=user, name="Ops Person")
    Product.objects.create(sku="MUG-001", name="Enamel camping mug", price="14.00", stock=50)
    return services.place_order(customer=customer, items=[{"sku": "MUG-001", "quantity": 1}]).order


def test_every_page_works_under_the_content_security_policy(browser, live_server, order):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []

    def on_console(message) -> None:
        # A 404 too: Chromium reports the favicon it asks every page for.
        if message.type == "error":
            errors.append(f"{message.text} ({message.location['url']})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def visit(path: str) -> None:
        page.goto(path)
        page.wait_for_load_state("load")
        assert errors == [], path

    for path in ("/signup", "/login", "/admin/login/"):
        visit(path)
    page.goto("/login")
    page.fill("input[name=username]", "ops@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url("**/")
    assert errors == []

    # The live parts fetch their fragments (jobs/static/jobs/live.js): connect-src allows them.
    for path, fragment in ((f"/orders/{order.pk}", "/timeline"), ("/ops/", "/ops/stats")):
        with page.expect_response(lambda response, f=fragment: response.url.endswith(f)) as got:
            visit(path)
        assert got.value.status == 200
        assert errors == [], path

    for path in (
        "/",
        "/products/MUG-001",
        "/account",
        "/sandbox/",
        "/sandbox/mailbox/",
        "/sandbox/sms/",
        "/admin/",
        f"/admin/shop/order/{order.pk}/change/",
        "/admin/webhooks/webhookendpoint/add/",
        "/admin/jobs/job/",
        "/api/openapi.json",
    ):
        visit(path)

    # The admin's own scripts run: ticking "select all" updates the action counter.
    visit("/admin/shop/order/")
    page.click("#action-toggle")
    assert "1 of 1 selected" in page.inner_text(".action-counter")
    assert errors == []

    # And a refusal would be seen: an inline script added to the page is refused.
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = true'; document.body.append(s); }"
    )
    assert page.evaluate("() => window.ran === undefined")
    assert len(errors) == 1
    assert "Content Security Policy" in errors[0]
    context.close()
