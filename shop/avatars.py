"""Avatar uploads: strict checks at the door, thumbnails on the `media` workers."""

import uuid
from io import BytesIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageCms, ImageOps

from jobs import effects
from jobs.errors import PermanentError, TransientError
from shop.files import replace_file
from shop.models import STORAGE_ERRORS, Customer

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


class AvatarTooLarge(ValidationError):
    """The upload is over AVATAR_MAX_BYTES: the API answers 413, not 400."""


def clean_avatar(upload: UploadedFile) -> ContentFile:
    """Check an upload and return it re-encoded, under a name the server chose.

    Refuses anything that is not a whole PNG, JPEG or WebP image of a sane size. The header
    is read first (no decoding), so a decompression bomb is refused by its declared size before
    a single pixel is allocated; only then is the image decoded in full, which catches
    truncated files. What is stored is the pixels and nothing else (`pixels_only`), and the
    server-chosen name with the detected format's extension means a file uploaded as `x.html`
    is never served as HTML.
    """
    if upload.size is not None and upload.size > settings.AVATAR_MAX_BYTES:
        raise AvatarTooLarge(
            f"The avatar is larger than {settings.AVATAR_MAX_BYTES // (1024 * 1024)} MB."
        )
    try:
        upload.seek(0)
        with Image.open(upload, formats=ACCEPTED_FORMATS) as image:
            width, height = image.size
            if width * height > settings.AVATAR_MAX_PIXELS:
                raise ValidationError(
                    f"The avatar has too many pixels ({width}x{height}); "
                    f"the limit is {settings.AVATAR_MAX_PIXELS:,}."
                )
            image.load()
            image_format = image.format
            clean = pixels_only(image)
    except ValidationError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError("The avatar must be a complete PNG, JPEG or WebP image.") from exc
    finally:
        upload.seek(0)
    if image_format not in EXTENSIONS:  # Pillow read it as one of ACCEPTED_FORMATS, or raised
        raise ValidationError("The avatar must be a complete PNG, JPEG or WebP image.")
    if image_format == "JPEG" and clean.mode not in ("RGB", "L"):
        clean = clean.convert("RGB")
    buffer = BytesIO()
    clean.save(buffer, format=image_format)
    return ContentFile(buffer.getvalue(), name=f"{uuid.uuid4().hex}.{EXTENSIONS[image_format]}")


def pixels_only(image: Image.Image) -> Image.Image:
    """The image as it is meant to be seen, without anything else its file carried.

    Kept: the pixels, turned upright as the EXIF orientation says (phones store photos
    sideways and say so there), their colours and their transparency. Dropped, as metadata:
    EXIF (GPS position, camera, time), XMP, JPEG comments, PNG text chunks and everything else
    Pillow reads into `info`, and the ICC colour profile too: it can carry text of its own, so
    its colours are applied to the pixels first, in sRGB, which is what browsers assume of an
    image without one.
    """
    upright = ImageOps.exif_transpose(image)
    profile = upright.info.get("icc_profile")
    if profile:
        upright = _in_srgb(upright, profile)
    # Transparency is the pixels' own (a palette index or colour that stands for "none").
    transparency = upright.info.get("transparency")
    upright.info = {} if transparency is None else {"transparency": transparency}
    return upright


SRGB = ImageCms.createProfile("sRGB")


def _in_srgb(image: Image.Image, profile: bytes) -> Image.Image:
    if image.mode not in ("RGB", "RGBA", "CMYK", "L"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    try:
        source = ImageCms.ImageCmsProfile(BytesIO(profile))
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        return ImageCms.buildTransform(source, SRGB, image.mode, output_mode).apply(image)
    except (OSError, ImageCms.PyCMSError):
        # A profile that cannot be read or does not fit the pixels: browsers show such an
        # image as if it had none, and so will the avatar.
        return image


def thumbnail_url(customer: Customer, size: int) -> str | None:
    """Where the avatar's thumbnail of this size is served; None until the job made it."""
    name = customer.avatar_thumbnails.get(str(size))
    return default_storage.url(name) if name else None


def make_thumbnails(*, customer_id: int, job_id: str | None = None) -> dict[str, str]:
    """Write one PNG thumbnail per configured size, once per uploaded avatar.

    The effect key names the upload, so a repeated job does nothing; the file names are fixed,
    so even a run cut short and done again leaves one set.
    """
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise PermanentError(f"customer {customer_id} is gone")
    if not customer.avatar:
        return {}
    with effects.once(f"thumbnails:{customer.avatar.name}", job_id=job_id) as go:
        return _write_thumbnails(customer) if go else customer.avatar_thumbnails


def _write_thumbnails(customer: Customer) -> dict[str, str]:
    customer_id = customer.pk
    # Read, then decoded: a storage that does not answer now (an object store's hiccup) may
    # later, an avatar that is gone or not an image never will.
    try:
        with customer.avatar.open("rb") as source:
            content = source.read()
    except FileNotFoundError as exc:
        raise PermanentError(f"avatar of customer {customer_id} is gone") from exc
    except STORAGE_ERRORS as exc:
        raise TransientError(f"avatar storage: {exc}") from exc
    try:
        with Image.open(BytesIO(content), formats=ACCEPTED_FORMATS) as image:
            image.load()
            original = image.convert("RGBA")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise PermanentError(f"avatar of customer {customer_id} is not a readable image") from exc

    thumbnails = {}
    for size in settings.AVATAR_THUMBNAIL_SIZES:
        thumbnail = original.copy()
        thumbnail.thumbnail((size, size))
        buffer = BytesIO()
        thumbnail.save(buffer, format="PNG")  # re-encoding also drops any metadata
        name = f"avatars/thumbs/{customer_id}-{size}.png"
        thumbnails[str(size)] = replace_file(
            default_storage, name, buffer.getvalue(), what="thumbnail"
        )
    Customer.objects.filter(pk=customer_id).update(avatar_thumbnails=thumbnails)
    return thumbnails
