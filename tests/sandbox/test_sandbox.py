"""The sandbox third parties keep the promises real ones make: keys deduplicate, switches bite."""

import pytest

from sandbox.models import AnalyticsEvent, Charge, CrmRecord
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
