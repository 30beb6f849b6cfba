"""A client generated from the live server's /api/openapi.json signs up, orders, and sees the
order paid: openapi-python-client's code against the real server, real workers, real broker.

Everything the test looks at is what the generated client hands its user: typed models,
enums, datetimes.
"""

import datetime
from io import BytesIO

import pytest
import requests

from jobs.models import Job
from stack.waiting import wait_until
from tests.factories import ProductFactory
from tests.generated_client import generated_client
from tests.helpers import png_bytes

pytestmark = pytest.mark.integration


def test_a_generated_client_signs_up_places_an_order_and_polls_it_until_paid(
    celery_worker, live_server, tmp_path
):
    ProductFactory(sku="MUG-001", name="Mug", price="14.00", stock=10)
    schema = requests.get(f"{live_server.url}/api/openapi.json", timeout=10)
    assert schema.status_code == 200

    with generated_client(schema.content, tmp_path) as module:
        client, models, types = module("client"), module("models"), module("types")
        signup = module("api.signup.signup")
        list_products = module("api.products.list_products")
        place_order = module("api.orders.place_order")
        get_order = module("api.orders.get_order")
        get_order_invoice = module("api.orders.get_order_invoice")
        # An answer the schema does not document raises, instead of coming back as None.
        anonymous = client.Client(base_url=live_server.url, raise_on_unexpected_status=True)

        # The multipart signup, with an avatar.
        signed_up = signup.sync(
            client=anonymous,
            body=models.SignupWithAvatarInputRequest(
                email="ada@example.com",
                name="Ada Lovelace",
                password="analytical-engine-1843",
                phone="+4915112345678",
                avatar=types.File(
                    payload=BytesIO(png_bytes()), file_name="ada.png", mime_type="image/png"
                ),
            ),
            x_request_id="generated-client-signup",
        )
        assert isinstance(signed_up, models.SignupOut)
        assert signed_up.customer.email == "ada@example.com"
        assert signed_up.customer.phone == "+4915112345678"
        assert isinstance(signed_up.customer.avatar_url, str)
        assert signed_up.customer.avatar_url.endswith(".png")
        assert signed_up.token
        assert "jobs.make_avatar_thumbnails" in {job.name for job in signed_up.jobs}

        # The JSON signup, through the same function: no avatar, no phone.
        json_signup = signup.sync(
            client=anonymous,
            body=models.SignupInputRequest(
                email="grace@example.com", name="Grace Hopper", password="compile-the-cobol-1959"
            ),
        )
        assert isinstance(json_signup, models.SignupOut)
        assert json_signup.customer.avatar_url is None
        assert json_signup.customer.phone is None
        # A documented refusal comes back typed too: the email is taken.
        again = signup.sync(
            client=anonymous,
            body=models.SignupInputRequest(
                email="grace@example.com", name="Grace", password="compile-the-cobol-1959"
            ),
        )
        assert isinstance(again, models.FieldErrorsOut)
        assert again.errors["email"] == ["This email is already registered."]
        # So does a refusal any operation may answer (docs/api.md, "Errors"): a body over the
        # size limit, which signup also answers as a field error for its avatar.
        too_large = signup.sync(
            client=anonymous,
            body=models.SignupInputRequest(
                email="big@example.com", name="x" * 3_000_000, password="compile-the-cobol-1959"
            ),
        )
        assert isinstance(too_large, models.DetailOut)
        assert too_large.detail == "The request body is larger than 2621440 bytes."

        catalogue = list_products.sync(client=anonymous)
        assert isinstance(catalogue, models.ProductsOut)
        assert [(p.sku, p.price, p.stock) for p in catalogue.products] == [("MUG-001", "14.00", 10)]

        customer = client.AuthenticatedClient(
            base_url=live_server.url, token=signed_up.token, raise_on_unexpected_status=True
        )
        placed = place_order.sync(
            client=customer,
            body=models.OrderInputRequest(
                items=[models.OrderItemInputRequest(sku="MUG-001", quantity=2)]
            ),
            idempotency_key="generated-client-order-1",
        )
        assert isinstance(placed, models.OrderWithJobsOut)
        refused = place_order.sync(
            client=customer,
            body=models.OrderInputRequest(
                items=[models.OrderItemInputRequest(sku="MUG-001" + " " * 3_000_000, quantity=1)]
            ),
        )
        assert isinstance(refused, models.DetailOut)
        assert refused.detail == "The request body is larger than 2621440 bytes."
        assert placed.order.status == models.OrderOutStatusEnum.PENDING_PAYMENT
        assert placed.order.total == "28.00"
        assert "jobs.charge_payment" in {job.name for job in placed.jobs}

        # The charge job sets the order paid in a transaction of its own and ends its ledger
        # row after it (docs/api.md, GET /api/orders/<id>): a client polls for both.
        final = {str(state) for state in Job.FINAL_STATES}

        def paid_and_charge_ended():
            seen = get_order.sync(client=customer, order_id=placed.order.id)
            charge_ended = all(
                job.state.value in final for job in seen.jobs if job.name == "jobs.charge_payment"
            )
            paid = seen.order.status == models.OrderOutStatusEnum.PAID
            return seen if paid and charge_ended else None

        order = wait_until(
            paid_and_charge_ended,
            message="the order, read by the generated client, to be paid and its charge ended",
        )

        assert isinstance(order, models.OrderWithJobsOut)
        assert order.order.id == placed.order.id
        assert [(line.sku, line.quantity, line.unit_price) for line in order.order.items] == [
            ("MUG-001", 2, "14.00")
        ]
        assert isinstance(order.order.created_at, datetime.datetime)
        assert order.order.created_at.tzinfo is not None
        assert order.order.shipped_at is None
        charge = [job for job in order.jobs if job.name == "jobs.charge_payment"]
        assert len(charge) == 1
        assert charge[0].state == models.StateEnum.SUCCEEDED
        assert isinstance(charge[0].finished_at, datetime.datetime)

        # The invoice: its URL once the media worker made it, and the PDF as a File.
        def invoiced():
            seen = get_order.sync(client=customer, order_id=placed.order.id)
            return seen if isinstance(seen.order.invoice_url, str) else None

        invoiced_order = wait_until(invoiced, message="the order's invoice_url")
        assert invoiced_order.order.invoice_url.endswith(f"/api/orders/{placed.order.id}/invoice")
        invoice = get_order_invoice.sync(client=customer, order_id=placed.order.id)
        assert isinstance(invoice, types.File)
        assert invoice.payload.read().startswith(b"%PDF-")
