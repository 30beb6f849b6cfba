"""State of the sandbox third parties, kept in the database so that every process sees it."""

from django.db import models


class ServiceSwitch(models.Model):
    """Latency and failures of one sandbox service, changeable at run time from /sandbox/."""

    service = models.CharField(max_length=20, unique=True)
    latency_ms = models.PositiveIntegerField(default=0)
    failure_rate = models.FloatField(default=0.0)  # 0.0 … 1.0: share of requests answered 503
    fail_next = models.PositiveIntegerField(default=0)  # the next N requests fail, then recover

    class Meta:
        verbose_name_plural = "service switches"

    def __str__(self) -> str:
        return f"{self.service}: {self.latency_ms} ms, {self.failure_rate:.0%} failing"


class ReceivedRequest(models.Model):
    """Every request a sandbox service answered, for the sandbox page and for the tests."""

    service = models.CharField(max_length=20, db_index=True)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    idempotency_key = models.CharField(max_length=255, blank=True)
    body = models.JSONField(default=dict)
    status_code = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.service} {self.method} {self.path} → {self.status_code}"


class Charge(models.Model):
    """A payment the sandbox gateway made. The Idempotency-Key never charges twice."""

    idempotency_key = models.CharField(max_length=255, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"charge {self.pk}: {self.amount} {self.currency} ({self.reference})"


class Refund(models.Model):
    """Money the sandbox gateway gave back for a charge. The Idempotency-Key never refunds
    twice, and a charge is refunded at most once (in full)."""

    idempotency_key = models.CharField(max_length=255, unique=True)
    charge = models.OneToOneField(Charge, on_delete=models.CASCADE, related_name="refund")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"refund {self.pk} of charge {self.charge_id}: {self.amount}"


class SmsMessage(models.Model):
    """A text message the sandbox SMS provider sent. The Idempotency-Key never sends twice."""

    idempotency_key = models.CharField(max_length=255, unique=True)
    to = models.CharField(max_length=16)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"sms {self.pk} to {self.to}"


class CrmRecord(models.Model):
    """A contact or deal in the sandbox CRM, upserted by its natural key."""

    kind = models.CharField(max_length=10)  # "contact" | "deal"
    external_key = models.CharField(max_length=255)
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)
    writes = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "external_key"], name="unique_crm_record")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.external_key}"


class AnalyticsEvent(models.Model):
    """An event the sandbox collector received, deduplicated by its event id."""

    event_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    properties = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} {self.event_id}"


class WebhookInbox(models.Model):
    """A sandbox webhook receiver at /sandbox/webhooks/<name>, with the secret it verifies."""

    name = models.SlugField(unique=True)
    secret = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class ReceivedWebhook(models.Model):
    """A webhook the sandbox receiver accepted: signed right, fresh, and new (by its id)."""

    webhook_id = models.CharField(max_length=100, unique=True)
    inbox = models.ForeignKey(WebhookInbox, on_delete=models.CASCADE, related_name="received")
    event = models.CharField(max_length=50)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.event} {self.webhook_id}"
