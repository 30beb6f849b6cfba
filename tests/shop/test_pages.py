"""The HTML pages: signup, login, ordering from the catalogue, the order page and its timeline."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job
from shop.models import Customer, Order
from tests.factories import CustomerFactory, ProductFactory
from tests.helpers import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper(client):
    customer = CustomerFactory()
    client.force_login(customer.user)
    return customer


def test_signup_page_creates_the_account_logs_in_and_records_the_jobs(client):
    response = client.post(
        "/signup",
        {
            "email": "Lin@Example.com",
            "name": "Lin",
            "password": "a-fine-long-password",
            "avatar": SimpleUploadedFile("lin.png", png_bytes(), content_type="image/png"),
        },
    )

    assert response.status_code == 302
    user = get_user_model().objects.get(email="lin@example.com")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert set(Job.objects.values_list("name", flat=True)) == {
        "jobs.send_welcome_email",
        "jobs.track_analytics_event",
        "jobs.sync_crm_contact",
        "jobs.make_avatar_thumbnails",
    }


def test_signup_page_shows_field_errors_and_writes_nothing(client):
    response = client.post(
        "/signup",
        {
            "email": "nope",
            "name": "",
            "password": "123",
            "avatar": SimpleUploadedFile("x.png", b"<html>", content_type="image/png"),
        },
    )

    assert response.status_code == 400
    form = response.context["form"]
    assert {"email", "name", "password", "avatar"} <= set(form.errors)
    assert not get_user_model().objects.exists()
    assert not Job.objects.exists()


def test_login_by_email_in_any_case(client):
    CustomerFactory(user__email="kim@example.com", user__username="kim@example.com")

    response = client.post(
        "/login", {"username": "KIM@example.com", "password": "a-long-enough-password"}
    )

    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_ordering_from_the_catalogue_leads_to_the_order_page(client, shopper):
    ProductFactory(sku="MUG-001", stock=3)
    catalogue = client.get("/")
    key = catalogue.context["idempotency_key"]

    first = client.post("/orders", {"quantity_MUG-001": "2", "idempotency_key": key})
    double_click = client.post("/orders", {"quantity_MUG-001": "2", "idempotency_key": key})

    order = Order.objects.get()
    assert first.status_code == double_click.status_code == 302
    assert first["Location"] == double_click["Location"] == f"/orders/{order.pk}"
    page = client.get(f"/orders/{order.pk}")
    assert page.status_code == 200
    assert b"Payment" in page.content
    assert b"charge_payment" not in page.content  # a job's name is staff's
    assert b"live.js" in page.content


def test_a_form_key_too_long_to_keep_is_refused_not_dropped(client, shopper):
    # Dropped, the order would be placed without a key, and a second submit of the same
    # form would place a second order.
    ProductFactory(sku="MUG-001", stock=3)

    response = client.post(
        "/orders", {"quantity_MUG-001": "1", "idempotency_key": "k" * 256}, follow=True
    )

    assert not Order.objects.exists()
    assert any("longer than 255" in str(m) for m in response.context["messages"])


def test_an_order_beyond_the_stock_is_refused_with_a_message(client, shopper):
    ProductFactory(sku="MUG-001", stock=1)

    response = client.post("/orders", {"quantity_MUG-001": "5"}, follow=True)

    assert not Order.objects.exists()
    assert any("Not enough stock" in str(m) for m in response.context["messages"])


@pytest.mark.parametrize("quantity", ["\uff11", "\u0663", "1_0", "+3", "2.0", "1e1", "9" * 5000])
def test_an_order_quantity_is_ascii_digits_as_the_api_has_it(client, shopper, quantity):
    # Python's int() takes a full-width 1, an Arabic-Indic 3, "1_0" (10) and "+3", and
    # raises on 5,000 digits (over its limit for a str); the API refuses them all.
    ProductFactory(sku="MUG-001", stock=20)

    response = client.post("/orders", {"quantity_MUG-001": quantity}, follow=True)

    assert not Order.objects.exists()
    assert any("the quantity must be" in str(m) for m in response.context["messages"])


def test_the_order_form_needs_a_csrf_token(shopper):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(shopper.user)
    ProductFactory(sku="MUG-001")

    assert strict.post("/orders", {"quantity_MUG-001": "1"}).status_code == 403
    assert not Order.objects.exists()


def test_another_customers_order_page_and_timeline_are_404(client, shopper):
    ProductFactory(sku="MUG-001")
    client.post("/orders", {"quantity_MUG-001": "1"})
    order = Order.objects.get()
    client.force_login(CustomerFactory().user)

    assert client.get(f"/orders/{order.pk}").status_code == 404
    assert client.get(f"/orders/{order.pk}/timeline").status_code == 404


def test_the_timeline_says_when_everything_is_final(client, shopper):
    ProductFactory(sku="MUG-001")
    client.post("/orders", {"quantity_MUG-001": "1"})
    order = Order.objects.get()

    assert b'data-final="false"' in client.get(f"/orders/{order.pk}/timeline").content

    Order.objects.update(status=Order.Status.PAID)
    Job.objects.exclude(state=Job.State.SCHEDULED).update(state=Job.State.SUCCEEDED)
    timeline = client.get(f"/orders/{order.pk}/timeline").content.decode()
    assert 'data-final="true"' in timeline
    # Not "everything": the review reminder is still to come.
    assert "everything due has finished; what is planned happens when due." in timeline

    Job.objects.update(state=Job.State.SUCCEEDED)
    assert (
        "· everything has finished." in client.get(f"/orders/{order.pk}/timeline").content.decode()
    )


def test_a_cancelled_job_is_final_on_the_timeline(client, shopper):
    ProductFactory(sku="MUG-001")
    client.post("/orders", {"quantity_MUG-001": "1"})
    order = Order.objects.get()
    Order.objects.update(status=Order.Status.PAID)
    Job.objects.update(state=Job.State.SUCCEEDED)
    Job.objects.filter(name="jobs.send_review_reminder").update(state=Job.State.CANCELLED)

    timeline = client.get(f"/orders/{order.pk}/timeline").content.decode()

    assert 'data-final="true"' in timeline
    assert "Review request" in timeline
    assert "Cancelled" in timeline


def test_the_signup_page_takes_an_optional_mobile_number(client):
    fields = {"email": "kim@example.com", "name": "Kim", "password": "a-fine-long-password"}

    refused = client.post("/signup", {**fields, "phone": "0151 1234"})
    taken = client.post("/signup", {**fields, "phone": "+4915112345678"})

    assert refused.status_code == 400
    assert list(refused.context["form"].errors) == ["phone"]
    assert taken.status_code == 302
    assert Customer.objects.get().phone == "+4915112345678"


def test_the_customer_cancels_from_the_order_page_after_a_confirmation(client, shopper):
    ProductFactory(sku="MUG-001", stock=3)
    client.post("/orders", {"quantity_MUG-001": "2"})
    order = Order.objects.get()
    page = client.get(f"/orders/{order.pk}").content.decode()
    assert "Cancel order" in page
    assert f"Yes, cancel order #{order.pk}" in page
    assert f'action="/orders/{order.pk}/cancel"' in page

    response = client.post(f"/orders/{order.pk}/cancel", follow=True)

    assert response.redirect_chain == [(f"/orders/{order.pk}", 302)]
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [f"Order #{order.pk} is cancelled and its items are back in stock."]
    assert Order.objects.get().status == Order.Status.CANCELLED
    page = response.content.decode()
    assert "status-cancelled" in page
    assert "Yes, cancel order" not in page  # only while it can be cancelled


def test_a_cancel_that_is_refused_says_why(client, shopper):
    ProductFactory(sku="MUG-001", stock=3)
    client.post("/orders", {"quantity_MUG-001": "1"})
    order = Order.objects.get()
    Order.objects.update(status=Order.Status.SHIPPED)

    response = client.post(f"/orders/{order.pk}/cancel", follow=True)

    messages = [str(m) for m in response.context["messages"]]
    assert messages[-1] == f"Order #{order.pk} has shipped: it can no longer be cancelled."
    assert Order.objects.get().status == Order.Status.SHIPPED


def test_only_the_owner_cancels_and_only_with_a_csrf_token(client, shopper):
    from django.test import Client

    ProductFactory(sku="MUG-001", stock=3)
    client.post("/orders", {"quantity_MUG-001": "1"})
    order = Order.objects.get()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(shopper.user)
    stranger = Client()
    stranger.force_login(CustomerFactory().user)

    assert strict.post(f"/orders/{order.pk}/cancel").status_code == 403
    assert stranger.post(f"/orders/{order.pk}/cancel").status_code == 404
    assert client.get(f"/orders/{order.pk}/cancel").status_code == 405
    assert Order.objects.get().status == Order.Status.PENDING_PAYMENT


def test_an_order_page_speaks_to_its_customer_and_plainly_to_staff(client, shopper):
    ProductFactory(sku="MUG-001", stock=3)
    client.post("/orders", {"quantity_MUG-001": "1"})
    order = Order.objects.get()
    staff = get_user_model().objects.create_user(
        username="ops@example.com", password="run-the-shop-1", is_staff=True
    )

    own = client.get(f"/orders/{order.pk}").content.decode()
    client.force_login(staff)
    seen_by_staff = client.get(f"/orders/{order.pk}").content.decode()

    assert "Your order's progress" in own
    assert "Cancel order" in own
    assert "Your order" not in seen_by_staff
    assert "<h2>Progress</h2>" in seen_by_staff
    assert "Cancel order" not in seen_by_staff  # staff cancel in the admin
