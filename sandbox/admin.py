from django.contrib import admin

from sandbox.models import (
    AnalyticsEvent,
    Charge,
    CrmRecord,
    ReceivedRequest,
    Refund,
    ServiceSwitch,
    SmsMessage,
)


@admin.register(ServiceSwitch)
class ServiceSwitchAdmin(admin.ModelAdmin):
    list_display = ("service", "latency_ms", "failure_rate", "fail_next")
    list_editable = ("latency_ms", "failure_rate", "fail_next")


@admin.register(ReceivedRequest)
class ReceivedRequestAdmin(admin.ModelAdmin):
    list_display = ("created_at", "service", "method", "path", "idempotency_key", "status_code")
    list_filter = ("service", "status_code", "method")
    search_fields = ("path", "idempotency_key")
    readonly_fields = (
        "service",
        "method",
        "path",
        "idempotency_key",
        "body",
        "status_code",
        "created_at",
    )


@admin.register(Charge)
class ChargeAdmin(admin.ModelAdmin):
    list_display = ("id", "idempotency_key", "amount", "currency", "reference", "created_at")
    search_fields = ("idempotency_key", "reference")


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ("id", "idempotency_key", "charge", "amount", "created_at")
    search_fields = ("idempotency_key",)


@admin.register(SmsMessage)
class SmsMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "to", "body", "idempotency_key", "created_at")
    search_fields = ("to", "idempotency_key")


@admin.register(CrmRecord)
class CrmRecordAdmin(admin.ModelAdmin):
    list_display = ("kind", "external_key", "writes", "updated_at")
    list_filter = ("kind",)
    search_fields = ("external_key",)


@admin.register(AnalyticsEvent)
class AnalyticsEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "name", "received_at")
    list_filter = ("name",)
    search_fields = ("event_id",)
