"""Card numbers at checkout: what is accepted, and what the shop keeps of one."""

import pytest
from django.core.exceptions import ValidationError
from django.views.debug import SafeExceptionReporterFilter

from shop import views
from shop.cards import TEST_CARDS, luhn_valid, read_card
from tests.factories import CustomerFactory


@pytest.mark.parametrize(
    ("number", "brand", "last4", "token"),
    [
        ("4242424242424242", "visa", "4242", "tok_visa"),
        ("4242 4242 4242 4242", "visa", "4242", "tok_visa"),
        ("4000-0000-0000-0002", "visa", "0002", "tok_chargeDeclined"),
        ("4000000000000119", "visa", "0119", "tok_chargeDeclinedProcessingError"),
        ("5555555555554444", "mastercard", "4444", "tok_mastercard"),
        # Luhn-valid but no test card: accepted here, declined by the gateway in test mode.
        ("4111111111111111", "visa", "1111", "tok_notATestCard"),
    ],
)
def test_a_card_is_kept_as_brand_last_four_and_the_gateways_token(number, brand, last4, token):
    card = read_card(number)

    assert (card.brand, card.last4, card.token) == (brand, last4, token)
    digits = number.replace(" ", "").replace("-", "")
    assert digits not in repr(card)


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("", "Enter a card number."),
        ("4242 4242 4242 424x", "digits only"),
        ("\uff14\uff12" * 8, "digits only"),  # full-width digits: isdigit(), not ASCII
        ("4242", "12 to 19 digits"),
        ("4242424242424241", "not valid"),
    ],
)
def test_a_number_that_is_no_card_number_is_refused_with_a_message(number, message):
    with pytest.raises(ValidationError) as refused:
        read_card(number)

    assert message in " ".join(refused.value.messages)


def test_the_luhn_check_catches_a_single_wrong_digit():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert all(luhn_valid(card.number) for card in TEST_CARDS)


def test_every_card_the_checkout_page_offers_is_one_the_gateway_knows():
    tokens = [read_card(card.number).token for card in TEST_CARDS]

    assert tokens == ["tok_visa", "tok_chargeDeclined", "tok_chargeDeclinedProcessingError"]


@pytest.mark.django_db
def test_a_card_number_is_masked_in_error_reports_of_the_checkout(rf, monkeypatch):
    """Django's error reports (and error trackers that use its filter) show the checkout's
    POST data: the card number must be masked there."""
    seen = {}

    def fail(request, **kwargs):
        seen["post"] = SafeExceptionReporterFilter().get_post_parameters(request)
        raise RuntimeError("a bug in checkout")

    monkeypatch.setattr(views, "_customer_of", fail)
    request = rf.post("/orders", {"card_number": "4242424242424242", "quantity_MUG-001": "1"})
    request.user = CustomerFactory().user
    with pytest.raises(RuntimeError):
        views.place_order(request)

    assert seen["post"]["card_number"] != "4242424242424242"
    assert "4242424242424242" not in str(seen["post"])
    assert seen["post"]["quantity_MUG-001"] == "1"
