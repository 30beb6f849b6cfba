"""POST /api/signup: what clients get for good and bad input, and that bad input writes nothing."""

import os
import struct
from io import BytesIO

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from PIL import Image, ImageCms, PngImagePlugin

from jobs.models import Job
from shop.middleware import MULTIPART_OVERHEAD_BYTES
from shop.models import ApiToken, Customer
from shop.tokens import digest
from tests.factories import customer_with_token
from tests.helpers import png_bytes

pytestmark = pytest.mark.django_db

VALID = {"email": "Grace@Example.com", "name": "Grace Hopper", "password": "compile-the-cobol-1959"}


def nothing_written() -> bool:
    return not (
        get_user_model().objects.exists() or Customer.objects.exists() or Job.objects.exists()
    )


def test_json_signup_creates_customer_token_and_jobs(api_client):
    response = api_client.post("/api/signup", VALID, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["customer"]["email"] == "grace@example.com"
    assert body["customer"]["avatar_url"] is None
    assert {job["state"] for job in body["jobs"]} == {"queued"}
    assert {job["name"] for job in body["jobs"]} == {
        "jobs.send_welcome_email",
        "jobs.track_analytics_event",
        "jobs.sync_crm_contact",
    }
    # The token works, and only its digest is stored.
    assert ApiToken.objects.filter(digest=digest(body["token"])).exists()
    assert not ApiToken.objects.filter(digest=body["token"]).exists()
    user = get_user_model().objects.get()
    assert user.password.startswith("argon2")


def test_multipart_signup_with_avatar_records_the_thumbnail_job(api_client):
    avatar = SimpleUploadedFile("me.png", png_bytes(), content_type="image/png")
    response = api_client.post("/api/signup", {**VALID, "avatar": avatar}, format="multipart")

    assert response.status_code == 201
    body = response.json()
    assert body["customer"]["avatar_url"].endswith(".png")
    assert "jobs.make_avatar_thumbnails" in {job["name"] for job in body["jobs"]}
    media_job = next(j for j in body["jobs"] if j["name"] == "jobs.make_avatar_thumbnails")
    assert media_job["queue"] == "media"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),
        ({"name": ""}, "name"),
        ({"email": None}, "email"),
        ({"email": "a@" + "b" * 150 + ".com"}, "email"),  # a domain label over 63 characters
        # A valid address (196 characters, no label over 63) longer than the username column.
        ({"email": "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + ".com"}, "email"),
    ],
)
def test_invalid_fields_are_refused_with_messages_and_nothing_is_written(
    api_client, changes, field
):
    response = api_client.post("/api/signup", {**VALID, **changes}, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert all(isinstance(message, str) and message for message in errors[field])
    assert nothing_written()


def _upload(content: bytes, name: str = "avatar.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="image/png")


def _bomb() -> bytes:
    buffer = BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")  # a few KB, 400 megapixels
    return buffer.getvalue()


def _encoded(image: Image.Image, image_format: str) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


# Over AVATAR_MAX_PIXELS (4096 x 4096) and under Pillow's own bomb limit (about 89 megapixels):
# only the avatar's limit refuses it.
OVER_THE_PIXEL_LIMIT = _encoded(Image.new("1", (4097, 4097)), "PNG")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"<html><body>not an image</body></html>", id="html-named-png"),
        pytest.param(png_bytes()[:200], id="truncated-png"),
        pytest.param(_bomb(), id="decompression-bomb"),
        pytest.param(OVER_THE_PIXEL_LIMIT, id="over-the-pixel-limit"),
        pytest.param(_encoded(Image.new("RGB", (8, 8), "red"), "GIF"), id="gif"),
    ],
)
def test_bad_avatars_are_refused_and_nothing_is_written(api_client, content):
    response = api_client.post(
        "/api/signup", {**VALID, "avatar": _upload(content)}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["errors"]["avatar"]
    assert nothing_written()


@override_settings(AVATAR_MAX_BYTES=50_000)
def test_an_avatar_over_the_size_limit_is_413(api_client):
    noisy = Image.frombytes("RGB", (150, 150), os.urandom(150 * 150 * 3))  # noise: no compression
    buffer = BytesIO()
    noisy.save(buffer, format="PNG")
    big = buffer.getvalue()
    # Over the limit, and by less than the multipart allowance of shop.middleware's early
    # refusal: what refuses it is the view's own check.
    assert 50_000 < len(big) < 50_000 + MULTIPART_OVERHEAD_BYTES

    response = api_client.post("/api/signup", {**VALID, "avatar": _upload(big)}, format="multipart")

    assert response.status_code == 413
    assert response.json()["errors"]["avatar"]
    assert nothing_written()


def test_an_email_already_registered_is_409_and_writes_nothing_more(api_client):
    assert api_client.post("/api/signup", VALID, format="json").status_code == 201
    jobs_before = Job.objects.count()

    again = api_client.post("/api/signup", {**VALID, "email": "grace@example.COM"}, format="json")

    assert again.status_code == 409
    assert again.json()["errors"]["email"]
    assert get_user_model().objects.count() == 1
    assert Job.objects.count() == jobs_before


def test_an_avatar_is_stored_re_encoded_under_a_server_chosen_name(api_client):
    """A valid PNG named .html carrying markup must not come back as an HTML page."""
    image = Image.new("RGB", (40, 40), "red")
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "<script>alert(1)</script>")
    buffer = BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    upload = SimpleUploadedFile("x.html", buffer.getvalue(), content_type="text/html")

    response = api_client.post("/api/signup", {**VALID, "avatar": upload}, format="multipart")

    assert response.status_code == 201
    customer = Customer.objects.get()
    assert customer.avatar.name.endswith(".png")
    assert "x.html" not in customer.avatar.name
    assert b"<script>" not in customer.avatar.read()


def test_jpeg_metadata_such_as_gps_is_dropped(api_client):
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0)}  # GPSInfo
    buffer = BytesIO()
    Image.new("RGB", (40, 40), "blue").save(buffer, format="JPEG", exif=exif)
    assert Image.open(BytesIO(buffer.getvalue())).getexif()  # the upload does carry it
    upload = SimpleUploadedFile("me.jpg", buffer.getvalue(), content_type="image/jpeg")

    response = api_client.post("/api/signup", {**VALID, "avatar": upload}, format="multipart")

    assert response.status_code == 201
    with Image.open(Customer.objects.get().avatar) as stored:
        assert stored.format == "JPEG"
        assert not stored.getexif()


def _signed_up_with(avatar: SimpleUploadedFile, through: str, api_client, client) -> Customer:
    """Sign up with the avatar through the API or the signup page; the new customer."""
    if through == "api":
        response = api_client.post("/api/signup", {**VALID, "avatar": avatar}, format="multipart")
        assert response.status_code == 201, response.content
    else:
        response = client.post("/signup", {**VALID, "avatar": avatar})
        assert response.status_code == 302, response.content
    return Customer.objects.get()


def _srgb_with_red_and_blue_swapped() -> bytes:
    """An ICC profile in which an image's red channel means blue and its blue channel red:
    the built-in sRGB profile with its rXYZ and bXYZ tags pointing at each other's data."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack_from(">I", profile, 128)
    entries = {}
    for n in range(count):
        signature, offset, size = struct.unpack_from(">4sII", profile, 132 + 12 * n)
        entries[signature] = (132 + 12 * n, offset, size)
    (red_at, *red), (blue_at, *blue) = entries[b"rXYZ"], entries[b"bXYZ"]
    struct.pack_into(">4sII", profile, red_at, b"rXYZ", *blue)
    struct.pack_into(">4sII", profile, blue_at, b"bXYZ", *red)
    return bytes(profile)


SECRETS = (b"secret comment", b"PhoneCo", b"x:xmpmeta", b"Ada's house")


def _phone_photo() -> bytes:
    """A JPEG as a phone writes it: stored sideways (60x30) with EXIF orientation 6 ("rotate
    90 degrees clockwise to show"), a red top-left corner, GPS and camera EXIF, XMP, an ICC
    profile and a comment."""
    sideways = Image.new("RGB", (60, 30), "blue")
    sideways.paste("red", (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "PhoneCo"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0)}  # GPSInfo
    buffer = BytesIO()
    sideways.save(
        buffer,
        format="JPEG",
        quality=95,
        exif=exif,
        comment=b"secret comment",
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">Ada\'s house</x:xmpmeta>',
        icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
    )
    photo = buffer.getvalue()
    assert all(secret in photo for secret in SECRETS)  # the upload does carry them
    return photo


@pytest.mark.parametrize("through", ["api", "page"])
def test_a_phone_photo_is_stored_upright_with_its_pixels_and_nothing_else(
    api_client, client, through
):
    avatar = SimpleUploadedFile("me.jpg", _phone_photo(), content_type="image/jpeg")

    customer = _signed_up_with(avatar, through, api_client, client)

    stored_bytes = customer.avatar.read()
    assert not [secret for secret in SECRETS if secret in stored_bytes]
    with Image.open(BytesIO(stored_bytes)) as stored:
        assert stored.format == "JPEG"
        assert stored.size == (30, 60)  # upright: turned a quarter clockwise
        assert not stored.getexif()
        assert not {"comment", "exif", "xmp", "icc_profile"} & set(stored.info)
        red, _, blue = stored.convert("RGB").getpixel((26, 3))
        assert red > 200  # the red corner, now top right
        assert blue < 60


@pytest.mark.parametrize("through", ["api", "page"])
def test_png_text_chunks_exif_and_colour_profile_are_dropped_and_the_colours_kept(
    api_client, client, through
):
    """Text chunks (tEXt, zTXt, iTXt) and eXIf are dropped; the colour profile is applied to
    the pixels, then dropped: what was shown as blue is stored as blue, in sRGB."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Ada's house")
    info.add_text("Comment", "secret comment", zip=True)
    info.add_itxt("Description", "PhoneCo", lang="en")
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0)}  # GPSInfo
    buffer = BytesIO()
    Image.new("RGBA", (40, 40), (255, 0, 0, 128)).save(  # red pixels, read as blue
        buffer, format="PNG", pnginfo=info, exif=exif, icc_profile=_srgb_with_red_and_blue_swapped()
    )
    avatar = SimpleUploadedFile("me.png", buffer.getvalue(), content_type="image/png")

    customer = _signed_up_with(avatar, through, api_client, client)

    with Image.open(customer.avatar) as stored:
        assert stored.format == "PNG"
        assert stored.text == {}
        assert not stored.getexif()
        assert not {"exif", "icc_profile", "Author", "Comment", "Description"} & set(stored.info)
        red, green, blue, alpha = stored.getpixel((20, 20))
        assert (red, green, alpha) == (0, 0, 128)
        assert blue > 250


def test_a_colour_profile_that_cannot_be_read_is_dropped_and_the_pixels_kept(api_client):
    """As a browser does: it shows such an image as if it had no profile."""
    buffer = BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 90)).save(buffer, format="PNG", icc_profile=b"junk" * 40)
    avatar = SimpleUploadedFile("me.png", buffer.getvalue(), content_type="image/png")

    customer = _signed_up_with(avatar, "api", api_client, client=None)

    with Image.open(customer.avatar) as stored:
        assert "icc_profile" not in stored.info
        assert stored.getpixel((20, 20)) == (200, 30, 90)


@override_settings(AVATAR_MAX_BYTES=10_000)
def test_a_body_far_over_the_limit_is_refused_unread_with_413(api_client, client):
    huge = SimpleUploadedFile("big.png", b"\0" * 200_000, content_type="image/png")

    api = api_client.post("/api/signup", {**VALID, "avatar": huge}, format="multipart")
    huge.seek(0)
    page = client.post("/signup", {**VALID, "avatar": huge})

    assert api.status_code == page.status_code == 413
    assert api.json()["errors"]["avatar"]
    assert nothing_written()


def test_a_mobile_number_is_optional_and_shown_when_given(api_client):
    with_phone = api_client.post("/api/signup", {**VALID, "phone": "+4915112345678"}, format="json")
    without = api_client.post("/api/signup", {**VALID, "email": "ada@example.com"}, format="json")
    blank = api_client.post(
        "/api/signup", {**VALID, "email": "lin@example.com", "phone": ""}, format="json"
    )

    assert (with_phone.status_code, without.status_code, blank.status_code) == (201, 201, 201)
    assert with_phone.json()["customer"]["phone"] == "+4915112345678"
    assert without.json()["customer"]["phone"] is None
    assert blank.json()["customer"]["phone"] is None
    assert Customer.objects.get(user__email="grace@example.com").phone == "+4915112345678"


@pytest.mark.parametrize(
    "phone",
    [
        "015112345678",
        "+49 151 12345678",
        "+0123456",
        "+4915112345678901",
        4915112345678,
        "+49\u0661\u0665\u0661\u0661\u0662\u0663\u0664\u0665",  # Arabic-Indic digits
    ],
)
def test_a_mobile_number_not_in_international_format_is_refused(api_client, phone):
    response = api_client.post("/api/signup", {**VALID, "phone": phone}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["phone"]
    assert nothing_written()


@override_settings(AVATAR_MAX_BYTES=10_000)
def test_a_multipart_body_far_over_the_limit_elsewhere_on_the_api_is_a_detail_413(api_client):
    """Only signup takes an avatar: elsewhere the refusal names none (the schema says
    `{"detail"}` for a 413 there)."""
    _, token = customer_with_token()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    huge = SimpleUploadedFile("big.png", b"\0" * 200_000, content_type="image/png")

    response = api_client.post("/api/orders", {"file": huge}, format="multipart")

    assert response.status_code == 413
    assert set(response.json()) == {"detail"}
    assert "larger than" in response.json()["detail"]
