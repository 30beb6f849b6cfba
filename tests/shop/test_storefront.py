"""The customer's side: product cards with pictures, the product page, the account page with
its avatar and orders, checkout with a test card, and the error pages."""

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from shop import selectors
from shop.models import Order, Product
from tests.factories import CustomerFactory, OrderFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper(client):
    customer = CustomerFactory(name="Kim Park")
    client.force_login(customer.user)
    return customer


def image_sources(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


def test_the_seeded_catalogue_shows_a_card_with_its_own_picture_for_every_product(client):
    call_command("seed_demo", quiet=True)

    html = client.get("/").content.decode()

    products = list(Product.objects.all())
    sources = image_sources(html)
    assert len(sources) == len(products) == 8
    assert len(set(sources)) == 8  # a picture each, no placeholder among them
    for product in products:
        assert f'href="/products/{product.sku}"' in html
        assert f"{product.price} EUR" in html
        # The picture is a static file the project ships.
        assert finders.find(product.image), product.image
        assert f"/static/{product.image}" in sources
    assert "declined" not in html.lower()  # no product exists to fail


def test_a_product_without_a_picture_shows_the_placeholder(client):
    ProductFactory(sku="NEW-001", name="New thing", image="")

    [source] = image_sources(client.get("/").content.decode())

    assert source == f"/static/{Product.PLACEHOLDER_IMAGE}"
    assert finders.find(Product.PLACEHOLDER_IMAGE)


def test_the_catalogue_has_a_quantity_per_card_and_the_test_cards_for_a_customer(client, shopper):
    ProductFactory(sku="MUG-001", stock=3)
    ProductFactory(sku="CAP-003", stock=0)

    html = client.get("/").content.decode()

    assert 'name="quantity_MUG-001"' in html
    assert 'name="quantity_CAP-003"' not in html  # sold out
    assert "sold out" in html
    assert 'name="card_number" value="4242 4242 4242 4242"' in html
    for number in ("4242 4242 4242 4242", "4000 0000 0000 0002", "4000 0000 0000 0119"):
        assert f"<code>{number}</code>" in html


def test_the_product_page_shows_the_product_and_orders_it(client, shopper):
    ProductFactory(sku="MUG-001", name="Enamel camping mug", description="Holds 350 ml.", image="")

    page = client.get("/products/MUG-001")
    html = page.content.decode()
    placed = client.post("/orders", {"quantity_MUG-001": "2", "card_number": "4242 4242 4242 4242"})

    assert page.status_code == 200
    assert "<h1>Enamel camping mug</h1>" in html
    assert "Holds 350 ml." in html
    assert image_sources(html) == [f"/static/{Product.PLACEHOLDER_IMAGE}"]
    assert 'name="quantity_MUG-001"' in html
    assert 'name="card_number"' in html
    order = Order.objects.get()
    assert placed["Location"] == f"/orders/{order.pk}"
    assert (order.card_brand, order.card_last4) == ("visa", "4242")


def test_an_unknown_product_is_a_friendly_404(client):
    response = client.get("/products/NOPE-404")

    assert response.status_code == 404
    html = response.content.decode()
    assert "We can't find that page" in html
    assert 'href="/"' in html


def test_a_bad_card_number_on_the_page_places_nothing_and_says_why(client, shopper):
    ProductFactory(sku="MUG-001", stock=3)

    response = client.post(
        "/orders", {"quantity_MUG-001": "1", "card_number": "4242 4242 4242 4241"}, follow=True
    )

    assert not Order.objects.exists()
    assert Product.objects.get(sku="MUG-001").stock == 3
    [message] = [str(m) for m in response.context["messages"]]
    assert "Card number: This card number is not valid" in message


def test_the_account_page_lists_the_customers_orders_newest_first(client, shopper):
    older = OrderFactory(customer=shopper, card_brand="visa", card_last4="4242")
    newer = OrderFactory(customer=shopper, status=Order.Status.PAYMENT_FAILED)
    someone_elses = OrderFactory()

    html = client.get("/account").content.decode()

    assert "Kim Park" in html
    assert shopper.email in html
    assert html.index(f"Order #{newer.pk}") < html.index(f"Order #{older.pk}")
    assert f'href="/orders/{older.pk}"' in html
    assert "payment failed" in html
    assert "visa •••• 4242" in html
    assert f"Order #{someone_elses.pk}<" not in html


def test_the_account_page_shows_a_placeholder_until_the_thumbnail_exists(client, shopper):
    shopper.avatar = "avatars/kim.png"
    shopper.save()

    preparing = client.get("/account").content.decode()
    shopper.avatar_thumbnails = {"64": "avatars/thumbs/1-64.png", "256": "avatars/thumbs/1-256.png"}
    shopper.save()
    fragment = client.get("/account/avatar").content.decode()

    assert "being prepared" in preparing
    assert 'data-final="false"' in preparing  # the page polls the fragment
    assert "/static/shop/avatar-placeholder.svg" in preparing
    assert 'data-final="true"' in fragment
    assert '<img src="/media/avatars/thumbs/1-256.png"' in fragment


def test_the_account_page_needs_a_login(client):
    assert client.get("/account")["Location"].startswith("/login")


def test_a_server_error_is_a_friendly_500_page_made_without_the_database(monkeypatch):
    """Django renders 500.html with an empty context (no user, no messages): the page needs
    neither, nor a query, since the database may be what failed. (Tests run with DEBUG off.)"""

    def broken():
        raise RuntimeError("the catalogue broke")

    monkeypatch.setattr(selectors, "products", broken)
    visitor = Client(raise_request_exception=False)

    with CaptureQueriesContext(connection) as queries:
        response = visitor.get("/")

    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "/static/shop/site.css" in html
    assert "the catalogue broke" not in html
    assert not queries.captured_queries


def test_a_products_picture_must_be_one_of_the_shops_static_files():
    product = ProductFactory(sku="NEW-001", image="shop/products/nope.svg")

    with pytest.raises(ValidationError) as refused:
        product.full_clean()
    product.image = "shop/products/mug-001.svg"
    product.full_clean()

    assert "No static picture at 'shop/products/nope.svg'" in str(refused.value)


def test_the_site_has_an_icon_where_browsers_look_for_one(client):
    # Chromium asks every page without a <link rel="icon"> (the admin's) for /favicon.ico, and
    # reports a 404 as a console error; the shop's pages name the icon themselves.
    from django.contrib.staticfiles import finders
    from django.templatetags.static import static

    redirect = client.get("/favicon.ico")
    catalogue = client.get("/")

    assert redirect.status_code == 302
    assert redirect["Location"] == static("shop/favicon.svg")
    assert "<svg" in Path(finders.find("shop/favicon.svg")).read_text()
    assert f'<link rel="icon" href="{redirect["Location"]}"'.encode() in catalogue.content
