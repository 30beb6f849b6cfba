from django import forms
from django.conf import settings
from django.contrib import admin

from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.services import check_address


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events", "active", "description", "secret"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        check_address(url)  # no private or loopback targets outside the demo
        return url

    def clean_events(self) -> list:
        events = self.cleaned_data["events"] or []
        if not isinstance(events, list) or set(events) - set(settings.WEBHOOK_EVENTS):
            raise forms.ValidationError(
                f"A list of event types from {', '.join(settings.WEBHOOK_EVENTS)}."
            )
        return events


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "active", "events", "created_by", "created_at"]
    list_filter = ["active"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["at", "status_code", "latency_ms", "response_snippet", "error"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "event", "endpoint", "subject", "created_at", "delivered_at"]
    list_filter = ["event", "endpoint"]
    readonly_fields = [
        "id",
        "endpoint",
        "event",
        "payload",
        "subject",
        "created_at",
        "delivered_at",
    ]
    # `subject` above shows them; as fields they were a list of every model to pick from.
    exclude = ["subject_type", "subject_id"]
    inlines = [WebhookAttemptInline]

    def has_add_permission(self, request) -> bool:
        return False
