from django.urls import path

from sandbox import views

app_name = "sandbox"
urlpatterns = [
    path("", views.control_panel, name="control_panel"),
    path("mailbox/", views.mailbox_view, name="mailbox"),
    path("switches/<str:service>", views.switch_api, name="switch_api"),
    path("payments/charges", views.charges, name="charges"),
    path("payments/refunds", views.create_refund, name="create_refund"),
    # A CRM keys contacts by email, and an email may hold a slash: the client escapes it
    # (%2F), and a real CRM reads the escaped slash as part of the key. Django decodes %2F
    # before routing, so the key is matched as a path here.
    path("crm/contacts/<path:key>", views.upsert_contact, name="crm_contact"),
    path("crm/deals/<path:key>", views.upsert_deal, name="crm_deal"),
    path("analytics/events", views.collect_event, name="analytics_events"),
    path("sms/", views.sms_outbox, name="sms_outbox"),
    path("sms/messages", views.send_sms, name="sms_messages"),
    path("webhooks/<slug:inbox>", views.receive_webhook, name="webhooks"),
]
