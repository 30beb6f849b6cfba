"""The media on an S3-compatible object store (config.media), end to end with a real worker on
the real broker: moto's S3 server runs as a process of its own, reached over HTTP, and the
app's settings name one bucket of it. Avatars and their thumbnails, invoices and exports are
objects in that bucket, served from it; nothing lands on the local disk, which worker hosts on
other machines would not share."""

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from config.media import object_storages
from jobs.models import Job
from shop import avatars, exports, services
from shop.models import Order, OrderExport
from stack.waiting import wait_until
from tests.factories import ProductFactory, customer_with_token, many_orders
from tests.helpers import place_order, sign_up_with_avatar
from tests.object_store import ObjectStore, moto_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def object_store() -> Iterator[ObjectStore]:
    with moto_server() as store:
        yield store


def _local_files(*roots: Path) -> set[Path]:
    return {path for root in roots if root.exists() for path in root.rglob("*") if path.is_file()}


@pytest.fixture
def bucket(object_store, settings, tmp_path) -> Iterator[str]:
    """A new bucket, and this process's settings (its in-process worker's too) as
    config/settings.py makes them when AWS_STORAGE_BUCKET_NAME names it. The local media
    directories must stay as they were: a file written there is a file another host's
    worker would not find."""
    name = object_store.new_bucket()
    for key, value in object_store.environment(name).items():
        setattr(settings, key, value)
    # A fresh MEDIA_ROOT: the file system's default storage would write here.
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES, **object_storages()}
    roots = (
        Path(django_settings.MEDIA_ROOT),
        Path(django_settings.PRIVATE_MEDIA_ROOT),
        Path(django_settings.EXPORTS_ROOT),
    )
    before = _local_files(*roots)
    yield name
    assert not (tmp_path / "media").exists()
    assert _local_files(*roots) - before == set()


def test_an_avatar_and_its_thumbnails_are_objects_linked_from_the_account_page(
    celery_worker, object_store, bucket
):
    browser = Client()
    customer = sign_up_with_avatar(browser)
    wait_until(
        lambda: Job.objects.get(name="jobs.make_avatar_thumbnails").state == "succeeded",
        message="the thumbnails job",
    )

    customer.refresh_from_db()
    thumbnails = customer.avatar_thumbnails
    assert object_store.keys(bucket) == sorted(
        [
            f"media/{customer.avatar.name}",
            f"media/{thumbnails['64']}",
            f"media/{thumbnails['256']}",
        ]
    )
    # The page links the thumbnail where the store serves it (a signed URL), and it is there.
    url = avatars.thumbnail_url(customer, 256)
    assert url is not None
    assert url.startswith(f"{object_store.endpoint_url}/{bucket}/media/{thumbnails['256']}?")
    html = browser.get("/account").content.decode()
    assert f'<img src="{url.replace("&", "&amp;")}"' in html
    served = requests.get(url, timeout=10)
    assert served.status_code == 200
    image = served.content
    assert image == object_store.read(bucket, f"media/{thumbnails['256']}")
    assert image.startswith(b"\x89PNG")


def test_an_invoice_is_an_object_served_to_its_customer_by_the_app(
    celery_worker, api_client, object_store, bucket
):
    customer, token = customer_with_token()
    ProductFactory(sku="MUG-001", name="Mug", price="14.00", stock=10)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    order_id = place_order(api_client, card_number="4242 4242 4242 4242")
    wait_until(
        lambda: Order.objects.get(pk=order_id).invoice,
        message="the invoice",
    )

    key = f"invoices/invoice-{order_id:06d}.pdf"
    assert object_store.keys(bucket, "invoices/") == [key]
    stored = object_store.read(bucket, key)
    browser = Client()
    browser.force_login(customer.user)
    download = browser.get(f"/orders/{order_id}/invoice.pdf")
    assert download.status_code == 200
    served = b"".join(download.streaming_content)
    assert served == stored
    assert f"Invoice INV-{order_id:06d}" in PdfReader(io.BytesIO(served)).pages[0].extract_text()
    assert Client().get(f"/orders/{order_id}/invoice.pdf").status_code == 302  # not to anyone


def test_an_export_is_written_in_chunk_objects_joined_into_one_and_downloaded(
    celery_worker, object_store, bucket, settings
):
    settings.EXPORT_CHUNK_ROWS = 5
    order_ids = many_orders(23)
    staff = get_user_model().objects.create_user(
        username="ops@example.com", email="ops@example.com", password="x-ops-1", is_staff=True
    )
    today = timezone.now().date()

    export = services.request_order_export(by=staff, start=today, end=today)
    wait_until(lambda: Job.objects.get(pk=str(export.job_id)).is_final, message="the export job")

    job = Job.objects.get(pk=str(export.job_id))
    assert job.state == "succeeded", job.last_error
    export = OrderExport.objects.get(pk=export.pk)
    # One object, the finished file: the five chunks were joined and deleted.
    assert object_store.keys(bucket, "exports/") == [f"exports/{export.file.name}"]
    browser = Client()
    browser.force_login(staff)
    download = browser.get(f"/ops/exports/{export.pk}/download")
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[0] == exports.COLUMNS
    assert [int(row[0]) for row in rows[1:]] == order_ids
