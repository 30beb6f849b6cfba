"""The sandbox third parties keep the promises real ones make: keys deduplicate, switches bite."""

import pytest

from sandbox.models import AnalyticsEvent, Charge, CrmRecord, Refund
from sandbox.switches import set_switch

pytestmark = pytest.mark.django_db


def charge(client, key, amount="10.00"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        "/sandbox/payments/charges",
        {"amount": amount, "currency": "EUR", "reference": "order-1"},
        content_type="application/json",
        **headers,
    )


def test_the_gateway_never_charges_one_idempotency_key_twice(client):
    first = charge(client, "order-1-charge")
    again = charge(client, "order-1-charge")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Charge.objects.count() == 1


def test_the_gateway_wants_a_key_and_declines_big_amounts(client):
    assert charge(client, None).status_code == 400
    assert charge(client, "k-2", amount="12000.00").status_code == 402
    assert not Charge.objects.exists()


def refund(client, key, charge_id):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        "/sandbox/payments/refunds",
        {"charge": charge_id},
        content_type="application/json",
        **headers,
    )


def test_the_gateway_refunds_a_charge_once_per_key_and_replays_the_first_refund(client):
    charge_id = charge(client, "order-1-charge").json()["id"]

    first = refund(client, "order-1-refund", charge_id)
    again = refund(client, "order-1-refund", charge_id)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["charge"] == charge_id
    assert first.json()["amount"] == "10.00"
    assert Refund.objects.count() == 1


def test_the_gateway_refunds_a_charge_once_whatever_the_key(client):
    charge_id = charge(client, "order-1-charge").json()["id"]
    other_id = charge(client, "order-2-charge").json()["id"]
    refund(client, "order-1-refund", charge_id)

    twice = refund(client, "another-key", charge_id)
    key_of_another = refund(client, "order-1-refund", other_id)

    assert twice.status_code == key_of_another.status_code == 409
    assert twice.json() == {"detail": f"charge {charge_id} is refunded already"}
    assert Refund.objects.count() == 1


def test_the_gateway_refuses_a_refund_without_a_key_or_of_no_charge(client):
    assert refund(client, None, "ch_1").status_code == 400
    assert refund(client, "k", "ch_999").status_code == 404
    assert refund(client, "k", "nonsense").status_code == 404
    assert not Refund.objects.exists()


def test_a_failing_gateway_refunds_nothing_until_it_recovers(client):
    charge_id = charge(client, "order-1-charge").json()["id"]
    set_switch("payments", fail_next=1)

    codes = [refund(client, "order-1-refund", charge_id).status_code for _ in range(2)]

    assert codes == [503, 201]
    assert Refund.objects.count() == 1


def test_crm_upserts_by_natural_key_and_analytics_dedupes_by_event_id(client):
    for _ in range(2):
        client.put("/sandbox/crm/contacts/a%40b.c", {"name": "A"}, content_type="application/json")
        client.post(
            "/sandbox/analytics/events",
            {"event_id": "e-1", "name": "x"},
            content_type="application/json",
        )

    assert CrmRecord.objects.get().writes == 2
    assert AnalyticsEvent.objects.count() == 1


def test_fail_next_fails_exactly_that_many_requests(client):
    set_switch("crm", fail_next=2)

    codes = [
        client.put("/sandbox/crm/deals/order-9", {}, content_type="application/json").status_code
        for _ in range(3)
    ]

    assert codes == [503, 503, 200]


def test_switches_are_set_over_http_and_validated(client):
    ok = client.post(
        "/sandbox/switches/payments",
        {"failure_rate": 1.0, "latency_ms": 5},
        content_type="application/json",
    )
    bad = client.post(
        "/sandbox/switches/payments", {"failure_rate": 7}, content_type="application/json"
    )

    assert ok.json() == {
        "service": "payments",
        "latency_ms": 5,
        "failure_rate": 1.0,
        "fail_next": 0,
    }
    assert bad.status_code == 400
    assert "failure_rate" in bad.json()["errors"]
    assert charge(client, "k-3").status_code == 503


def charge_card(client, key, source):
    return client.post(
        "/sandbox/payments/charges",
        {"amount": "10.00", "currency": "EUR", "reference": "order-1", "source": source},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def test_the_gateway_decides_by_the_test_card(client):
    assert charge_card(client, "ok", "tok_visa").status_code == 201
    assert charge_card(client, "mc", "tok_mastercard").status_code == 201
    assert charge_card(client, "no", "tok_chargeDeclined").json() == {"detail": "card declined"}
    assert charge_card(client, "live", "tok_notATestCard").status_code == 402
    # The processing-error card fails its first attempt, retryably, and is charged on the next
    # attempt with the same key; a charge with another key fails once again.
    first = charge_card(client, "flaky", "tok_chargeDeclinedProcessingError")
    retry = charge_card(client, "flaky", "tok_chargeDeclinedProcessingError")
    other = charge_card(client, "flaky-2", "tok_chargeDeclinedProcessingError")

    assert (first.status_code, retry.status_code, other.status_code) == (500, 201, 500)
    assert set(Charge.objects.values_list("idempotency_key", flat=True)) == {"ok", "mc", "flaky"}


def test_a_refund_of_a_charge_id_that_is_no_number_is_a_404(client):
    # "²" is a digit to str.isdigit() and not to int(), and int() refuses a str of over 4,300
    # digits.
    for charge_id in ("ch_²", "ch_" + "9" * 5000):
        response = refund(client, "k", charge_id)

        assert response.status_code == 404, (charge_id, response.status_code)


@pytest.mark.parametrize("amount", ["NaN", "sNaN", "Infinity", "-1", "\u0661\u0660", "1e3", ""])
def test_the_gateway_refuses_an_amount_that_is_not_a_plain_positive_decimal(client, amount):
    response = charge(client, f"k-{amount}", amount=amount)

    assert response.status_code == 400, (amount, response.status_code)
    assert response.json() == {"detail": "amount must be a decimal string"}
    assert not Charge.objects.exists()
