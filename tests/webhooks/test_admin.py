import pytest

from webhooks.admin import WebhookEndpointForm


@pytest.mark.django_db
def test_staff_cannot_register_an_endpoint_on_a_private_address_outside_the_demo(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False
    data = {"events": '["order.paid"]', "active": True, "secret": "whsec_c2VjcmV0"}

    private = WebhookEndpointForm(data={**data, "url": "http://192.168.1.10/hook"})
    unknown_event = WebhookEndpointForm(
        data={**data, "url": "https://93.184.216.34/", "events": '["order.refunded"]'}
    )
    fine = WebhookEndpointForm(data={**data, "url": "https://93.184.216.34/hook"})

    assert "url" in private.errors
    assert "events" in unknown_event.errors
    assert fine.is_valid(), fine.errors
