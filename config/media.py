"""The media storages on an S3-compatible object store (django-storages), for settings.STORAGES
when AWS_STORAGE_BUCKET_NAME is set. The bucket, endpoint, region and credentials are
django-storages' own AWS_* settings; here is only what differs between the three storages."""

from typing import Any
from urllib.parse import urlsplit

S3_BACKEND = "storages.backends.s3.S3Storage"


def object_storages() -> dict[str, dict[str, Any]]:
    """One bucket, a prefix per storage."""
    private = {
        # Whatever AWS_QUERYSTRING_AUTH says of the public media, a link to a private object
        # (nothing in the app makes one: the views read and serve it) is signed, and the
        # object gets no ACL of its own, so it is the bucket owner's alone.
        "querystring_auth": True,
        "default_acl": None,
        "custom_domain": None,
    }
    return {
        # Avatars, their thumbnails, the weekly reports: what the pages link to.
        "default": {"BACKEND": S3_BACKEND, "OPTIONS": {"location": "media"}},
        # Invoices are replaced in place (shop.invoices deletes, then writes the same name).
        "invoices": {"BACKEND": S3_BACKEND, "OPTIONS": {"location": "invoices", **private}},
        # Exports must not be overwritten: a run that lost its job and writes a chunk or the
        # finished file a moment after the run that holds it gets a name of its own, as on a
        # file system, and so tells (shop.exports._save_as) or deletes only its own file.
        "exports": {
            "BACKEND": S3_BACKEND,
            "OPTIONS": {"location": "exports", "file_overwrite": False, **private},
        },
    }


def media_origins(
    *, bucket: str, endpoint_url: str | None, region: str | None, custom_domain: str | None
) -> list[str]:
    """Where the pages' media links point (the thumbnails), for the Content-Security-Policy's
    img-src: the CDN's domain; else the store's endpoint, addressed by path or with the
    bucket as a subdomain (boto3 picks one); else AWS's own hosts for the bucket."""
    if custom_domain:
        return [f"https://{custom_domain}"]
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        return [f"{parts.scheme}://{parts.netloc}", f"{parts.scheme}://{bucket}.{parts.netloc}"]
    hosts = [f"{bucket}.s3.amazonaws.com"]
    if region:
        hosts.append(f"{bucket}.s3.{region}.amazonaws.com")
    return [f"https://{host}" for host in hosts]
