"""The media's storages come from the environment: the file system without a bucket (the
demo's), an S3-compatible object store with one (config/media.py), whose origin the pages'
Content-Security-Policy then allows for images."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SHOW = """
import json, django
django.setup()
from django.conf import settings
names = ("default", "invoices", "exports")
storages = {name: settings.STORAGES[name] for name in names}
print(json.dumps({
    "backends": {name: storages[name]["BACKEND"] for name in names},
    "locations": {name: str(storages[name].get("OPTIONS", {}).get("location")) for name in names},
    "img_src": settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"],
    "endpoint": settings.AWS_S3_ENDPOINT_URL,
}))
"""


def _settings_with(**environment: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(environment, DJANGO_SETTINGS_MODULE="config.settings")
    shown = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(shown.stdout.splitlines()[-1])


def test_without_a_bucket_the_media_are_files_as_in_the_demo():
    shown = _settings_with()

    assert set(shown["backends"].values()) == {"django.core.files.storage.FileSystemStorage"}
    assert shown["img_src"] == ["'self'"]


def test_a_bucket_puts_every_media_storage_on_the_object_store_under_its_own_prefix():
    shown = _settings_with(
        AWS_STORAGE_BUCKET_NAME="shop-media",
        AWS_S3_ENDPOINT_URL="http://10.0.0.7:9000",
        AWS_S3_REGION_NAME="eu-central-1",
    )

    assert set(shown["backends"].values()) == {"storages.backends.s3.S3Storage"}
    assert shown["locations"] == {"default": "media", "invoices": "invoices", "exports": "exports"}
    assert shown["endpoint"] == "http://10.0.0.7:9000"
    assert "http://10.0.0.7:9000" in shown["img_src"]
    assert "'self'" in shown["img_src"]


def test_a_cdn_domain_is_the_origin_the_pages_allow_for_images():
    shown = _settings_with(
        AWS_STORAGE_BUCKET_NAME="shop-media", AWS_S3_CUSTOM_DOMAIN="media.example.com"
    )

    assert shown["img_src"] == ["'self'", "https://media.example.com"]
