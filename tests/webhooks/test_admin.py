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


@pytest.mark.django_db
def test_a_deliverys_admin_page_shows_its_subject_without_a_list_of_every_model(admin_client):
    from shop.models import Order
    from tests.factories import OrderFactory
    from webhooks.models import WebhookDelivery, WebhookEndpoint

    order: Order = OrderFactory()
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook", secret="whsec_x")
    delivery = WebhookDelivery(endpoint=endpoint, event="order.placed", payload={})
    delivery.subject = order
    delivery.save()

    page = admin_client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert str(order) in html
    # The generic relation's two columns were a form's fields: a list of every model.
    assert 'name="subject_type"' not in html
    assert 'name="subject_id"' not in html
