"""What a customer and an operator do, in a real browser."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from jobs.models import DeadLetter
from shop import exports
from shop.models import OrderExport, Product
from shop.tasks import sync_crm_deal
from stack.waiting import wait_until
from tests.factories import many_orders
from tests.helpers import png_bytes

pytestmark = pytest.mark.browser


@pytest.fixture
def catalogue(transactional_db):
    Product.objects.create(sku="MUG-001", name="Enamel camping mug", price="14.00", stock=50)
    Product.objects.create(sku="TEE-002", name="Organic cotton tee", price="29.00", stock=50)


def sign_up(page, tmp_path, email: str) -> None:
    avatar = tmp_path / "avatar.png"
    avatar.write_bytes(png_bytes())
    page.goto("/signup")
    page.fill("input[name=email]", email)
    page.fill("input[name=name]", "Browser Person")
    page.fill("input[name=password]", "clicked-through-1")
    page.set_input_files("input[name=avatar]", str(avatar))
    page.click("form button[type=submit]")
    page.wait_for_url("**/")


def order_two_mugs(page) -> None:
    page.fill("input[name='quantity_MUG-001']", "2")
    page.click("form[action='/orders'] button[type=submit]")
    page.wait_for_url("**/orders/*")


def test_a_customer_signs_up_orders_and_reads_the_email(page, catalogue, tmp_path, screenshot):
    sign_up(page, tmp_path, "browser@example.com")
    assert "Welcome" in page.inner_text(".messages")

    order_two_mugs(page)
    # The timeline follows the jobs without a reload, until everything has finished; each
    # step in a customer's words, with its outcome.
    page.wait_for_selector("[data-final=true]")
    timeline = page.inner_text("#timeline")
    assert "paid" in timeline
    steps = [
        " ".join(step.split()) for step in page.locator("#timeline ol.steps li").all_inner_texts()
    ]
    # Ordered by when each step was due; the confirmation and the invoice are recorded together.
    assert steps[0] == "Payment Paid"
    assert steps[-1] == "Review request, in 1 hour Planned"
    assert sorted(steps[1:-1]) == [
        "Invoice Ready",
        "Order confirmation email Sent",
        "Shop records updated Done",
    ]
    assert "charge_payment" not in timeline  # the jobs' names are staff's
    screenshot(page, "order-timeline")

    page.goto("/sandbox/mailbox/")
    page.wait_for_selector("text=Welcome to the shop")
    assert page.locator("summary", has_text="is paid").count() == 1
    page.locator("summary", has_text="is paid").click()
    assert "Enamel camping mug" in page.inner_text("body")


def test_after_paying_the_order_page_links_the_invoice_without_a_reload(page, catalogue, tmp_path):
    sign_up(page, tmp_path, "invoice@example.com")
    order_two_mugs(page)  # with the card filled in, 4242 4242 4242 4242: paid
    # A mark that a reload would wipe: the link must come from the timeline's own polling.
    page.evaluate("window.stillTheSamePage = true")

    link = page.get_by_role("link", name="Invoice (PDF)")
    link.wait_for()
    assert page.evaluate("window.stillTheSamePage === true")
    assert "being prepared" not in page.inner_text("#timeline")

    with page.expect_download() as downloading:
        link.click()
    download = downloading.value
    order_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert download.suggested_filename == f"INV-{int(order_id):06d}.pdf"
    download.save_as(tmp_path / "saved.pdf")
    assert (tmp_path / "saved.pdf").read_bytes().startswith(b"%PDF-")


def test_a_declined_test_card_fails_the_payment_and_gives_the_stock_back(page, catalogue, tmp_path):
    sign_up(page, tmp_path, "declined@example.com")
    # The account page shows the avatar's thumbnail once the media worker made it.
    page.click("nav a[href='/account']")
    page.wait_for_selector(".avatar[data-final=true] img[src^='/media/avatars/thumbs/']")

    page.goto("/products/MUG-001")
    assert "Enamel camping mug" in page.inner_text("h1")
    assert "4000 0000 0000 0002" in page.inner_text(".test-cards")
    page.fill("input[name='quantity_MUG-001']", "3")
    page.fill("input[name=card_number]", "4000 0000 0000 0002")
    page.click("form[action='/orders'] button[type=submit]")
    page.wait_for_url("**/orders/*")

    page.wait_for_selector("#timeline .status-payment_failed")
    assert "visa •••• 0002" in page.inner_text("dl.facts")
    # Declined is declined, with why; the decline cancelled the review request, with why.
    payment = page.locator("#timeline ol.steps li", has_text=re.compile(r"^\s*Payment"))
    payment.locator(".tone-declined").wait_for()
    assert "Declined: your card was declined" in payment.inner_text()
    review = page.locator("#timeline ol.steps li", has_text="Review request")
    review.locator(".tone-not-needed").wait_for()
    assert "Cancelled: payment declined" in review.inner_text()
    assert "Succeeded" not in page.inner_text("#timeline")
    page.goto("/account")
    assert "payment failed" in page.inner_text("ul.orders")
    page.goto("/")
    mug = page.locator(".product-card", has=page.locator("img[alt='Enamel camping mug']"))
    assert "50 in stock" in mug.inner_text()  # the three reserved mugs are back


def test_a_customer_cancels_a_paid_order_and_sees_the_refund(page, catalogue, tmp_path, screenshot):
    sign_up(page, tmp_path, "cancel@example.com")
    page.fill("input[name='quantity_MUG-001']", "2")
    page.fill("input[name=card_number]", "4242 4242 4242 4242")
    page.click("form[action='/orders'] button[type=submit]")
    page.wait_for_url("**/orders/*")
    page.wait_for_selector("#timeline .status-paid")

    # Two steps: the first only says what cancelling does.
    page.click("details.cancel-order summary")
    assert "the payment is refunded to your card" in page.inner_text("details.cancel-order")
    page.click("details.cancel-order button[type=submit]")

    page.wait_for_selector("#timeline .status-cancelled")
    assert "is cancelled and its items are back in stock" in page.inner_text(".messages")
    assert "Your payment will be refunded." in page.inner_text(".messages")
    assert page.locator("details.cancel-order").count() == 0
    # The refund job runs on the worker; the live timeline shows the gateway's refund.
    page.wait_for_selector("#timeline .refunded")
    assert "refunded re_" in page.inner_text("#timeline")
    screenshot(page, "order-cancelled")
    page.goto("/")
    mug = page.locator(".product-card", has=page.locator("img[alt='Enamel camping mug']"))
    assert "50 in stock" in mug.inner_text()


def test_an_operator_recovers_a_dead_job_from_the_dashboard(
    page, browser, live_server, catalogue, tmp_path, screenshot, monkeypatch
):
    monkeypatch.setattr(sync_crm_deal, "max_retries", 1)  # a short budget for a short test
    get_user_model().objects.create_user(
        username="ops@example.com",
        email="ops@example.com",
        password="run-the-shop-1",
        is_staff=True,
        is_superuser=True,
    )
    sign_up(page, tmp_path, "unlucky@example.com")

    # As staff, break the CRM in the sandbox.
    staff = browser.new_context(base_url=live_server.url)
    ops = staff.new_page()
    ops.goto("/login")
    ops.fill("input[name=username]", "ops@example.com")
    ops.fill("input[name=password]", "run-the-shop-1")
    ops.click("form button[type=submit]")
    ops.goto("/sandbox/")
    crm = ops.locator("form.card", has=ops.locator("h3", has_text="crm"))
    crm.locator("input[name=failure_rate_percent]").fill("100")
    crm.locator("button[type=submit]").click()

    # The customer orders; the CRM sync retries, then dies, on the order page.
    order_two_mugs(page)
    page.wait_for_selector("#timeline .tone-stopped", timeout=60_000)
    assert "Could not be completed" in page.inner_text("#timeline")
    assert "503" not in page.inner_text("#timeline")  # the error's text is staff's

    # Fix the CRM, requeue from the dashboard, and watch the job succeed.
    ops.goto("/sandbox/")
    crm = ops.locator("form.card", has=ops.locator("h3", has_text="crm"))
    crm.locator("input[name=failure_rate_percent]").fill("0")
    crm.locator("button[type=submit]").click()
    # The job is dead at once; its letter is written by a job of its own, a moment later.
    wait_until(
        lambda: DeadLetter.objects.filter(status="open", job__name="jobs.sync_crm_deal").exists(),
        message="the dead letter",
    )
    ops.goto("/ops/")
    assert "sync_crm_deal" in ops.inner_text("#dead-letters ~ form")
    screenshot(ops, "ops-dashboard")
    ops.locator("input[name=letter]").first.check()
    ops.fill("input[name=reason]", "CRM back up")
    ops.click("button[value=requeue]")
    assert "Requeued 1 dead letter" in ops.inner_text(".messages")

    # The customer's page, left open on "dead", follows the job back to life without a reload.
    page.wait_for_function(
        "() => !document.querySelector('#timeline .tone-stopped')"
        " && document.querySelector('#timeline [data-final=true]')",
        timeout=60_000,
    )
    records = page.locator("#timeline ol.steps li", has_text="Shop records updated")
    assert "Done" in records.inner_text()
    ops.goto("/ops/")
    assert "No open dead letters" in ops.inner_text("body")
    assert "CRM back up" in ops.inner_text("body")  # the audit
    staff.close()


def test_staff_export_orders_watch_the_bar_move_download_and_cancel_another(
    page, live_server, settings, screenshot
):
    settings.EXPORT_CHUNK_ROWS = 10
    settings.EXPORT_CHUNK_DELAY_SECONDS = 0.3  # 20 chunks: about 6 s to watch
    order_ids = many_orders(200)
    get_user_model().objects.create_user(
        username="ops@example.com",
        email="ops@example.com",
        password="run-the-shop-1",
        is_staff=True,
    )
    today = timezone.now().date().isoformat()
    page.goto("/login")
    page.fill("input[name=username]", "ops@example.com")
    page.fill("input[name=password]", "run-the-shop-1")
    page.click("form button[type=submit]")
    page.click("nav a[href='/ops/exports']")

    page.fill("input[name=start]", today)
    page.fill("input[name=end]", today)
    page.click("form.export-form button[type=submit]")
    assert "started" in page.inner_text(".messages")
    first = OrderExport.objects.get()
    bar = f"#export-{first.pk} progress"
    # The bar moves without a reload: seen part-way, then further on.
    page.wait_for_function(
        f"() => {{ const p = document.querySelector('{bar}');"
        " return p && p.value > 0 && p.value < 200; }"
    )
    seen = float(page.get_attribute(bar, "value"))
    screenshot(page, "order-exports")
    page.wait_for_function(
        f"() => {{ const p = document.querySelector('{bar}'); return p && p.value > {seen}; }}"
    )
    page.wait_for_selector(f"#export-{first.pk} a.download", timeout=60_000)
    assert "200 of 200 orders" in page.inner_text(f"#export-{first.pk}")
    with page.expect_download() as download:
        page.click(f"#export-{first.pk} a.download")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == exports.COLUMNS
    assert [int(row[0]) for row in rows[1:]] == order_ids

    # A second one, cancelled while it runs.
    page.fill("input[name=start]", today)
    page.fill("input[name=end]", today)
    page.click("form.export-form button[type=submit]")
    second = OrderExport.objects.exclude(pk=first.pk).get()
    page.wait_for_function(
        f"() => {{ const p = document.querySelector('#export-{second.pk} progress');"
        " return p && p.value > 0; }"
    )
    page.fill(f"#export-{second.pk} input[name=reason]", "not these days")
    page.click(f"#export-{second.pk} form.cancel-export button")
    assert "stopping" in page.inner_text(".messages")
    page.wait_for_selector(f"#export-{second.pk}[data-state=cancelled]")
    screenshot(page, "order-exports-cancelled")
    row = page.inner_text(f"#export-{second.pk}")
    assert "not these days" in row
    assert page.locator(f"#export-{second.pk} a.download").count() == 0
