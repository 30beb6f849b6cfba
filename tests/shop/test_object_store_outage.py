"""An object store that does not answer (nothing listens on its port) fails the jobs that write
media with a TransientError, which their retry policy tries again, never a PermanentError that
would make a dead letter of an avatar, an invoice or an export at once."""

import pytest
from botocore.config import Config
from django.contrib.auth import get_user_model
from django.utils import timezone

from config.media import object_storages
from jobs import effects
from jobs.errors import TransientError
from shop import avatars, exports, invoices, services
from shop.models import Customer, OrderExport
from stack.waiting import free_port
from tests.factories import CustomerFactory, many_orders
from tests.object_store import ACCESS_KEY, REGION, SECRET_KEY
from tests.shop.test_invoices import paid_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def silent_store(settings):
    """The media on a bucket of a store at a loopback port nothing listens on."""
    settings.AWS_STORAGE_BUCKET_NAME = "shop"
    settings.AWS_S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    settings.AWS_S3_REGION_NAME = REGION
    settings.AWS_ACCESS_KEY_ID = ACCESS_KEY
    settings.AWS_SECRET_ACCESS_KEY = SECRET_KEY
    # One attempt, not boto3's five with backoff: the job's own retries are what count.
    settings.AWS_S3_CLIENT_CONFIG = Config(retries={"max_attempts": 1}, connect_timeout=1)
    settings.STORAGES = {**settings.STORAGES, **object_storages()}


def test_thumbnails_of_an_avatar_the_store_does_not_give_back_are_tried_again():
    customer = CustomerFactory()
    Customer.objects.filter(pk=customer.pk).update(avatar="avatars/ada.png")

    with pytest.raises(TransientError, match="avatar storage"):
        avatars.make_thumbnails(customer_id=customer.pk, job_id=None)

    # The effect is not recorded as done: the retry makes the thumbnails.
    assert not effects.already_done("thumbnails:avatars/ada.png")


def test_an_invoice_the_store_does_not_take_is_tried_again():
    order = paid_order()

    with pytest.raises(TransientError, match="invoice storage"):
        invoices.make_invoice(order_id=order.pk)

    order.refresh_from_db()
    assert not order.invoice


def test_an_export_the_store_does_not_take_is_tried_again_from_its_checkpoint():
    many_orders(3)
    staff = get_user_model().objects.create_user(username="ops@example.com", is_staff=True)
    today = timezone.now().date()
    export = services.request_order_export(by=staff, start=today, end=today)

    with pytest.raises(TransientError, match="export storage"):
        exports.write_export(export_id=export.pk, report=lambda *, done, total: True)

    export = OrderExport.objects.get(pk=export.pk)
    assert (export.chunks_done, export.rows_written, bool(export.file)) == (0, 0, False)
