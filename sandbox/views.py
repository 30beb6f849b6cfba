"""The sandbox third parties, served over real HTTP by the web app under /sandbox/.

Payment gateway, CRM, analytics collector and SMS provider each answer like their real
counterparts would, deduplicate on the same keys, and fail or slow down on demand
(sandbox.switches).
"""

import json
import re
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.db import IntegrityError, router, transaction
from django.db.models import F
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from sandbox import mailbox
from sandbox.models import (
    AnalyticsEvent,
    Charge,
    CrmRecord,
    ReceivedRequest,
    ReceivedWebhook,
    Refund,
    SmsMessage,
    WebhookInbox,
)
from sandbox.switches import SERVICES, get_switch, set_switch, should_fail

# A charge at or above this amount is declined, as a card's limit would.
DECLINE_AMOUNT = Decimal("10000.00")
# The test mode's card tokens (what shop.clients.payments sends as `source`), as payment
# providers document theirs: the outcome is the card's, whatever the amount below the limit.
DECLINED_SOURCES = {
    "tok_chargeDeclined": "card declined",
    "tok_notATestCard": "card declined: not a test card (in test mode, use a test card number)",
}
# Fails the first attempt of each charge with a processing error, then charges.
PROCESSING_ERROR_SOURCE = "tok_chargeDeclinedProcessingError"
# A charge without `source` (clients from before the test cards) is charged as this card.
DEFAULT_SOURCE = "tok_visa"
# What SMS providers take: an E.164 number, and at most ten 160-character segments.
E164 = re.compile(r"^\+[1-9][0-9]{1,14}\Z")  # not \d: every script's digits
# A plain decimal in ASCII digits: Decimal() also reads "NaN", "Infinity", "1e3", "-1" and any
# script's digits, and a NaN made the comparison with the decline limit raise (a 500).
AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
SMS_MAX_LENGTH = 1600
# What the third parties take is flat, or holds one object (analytics' properties). A body
# that parses but nests near Python's recursion limit could not even be stored
# (ReceivedRequest.body): JSON encoding recurses too.
MAX_BODY_DEPTH = 8


def _json_object(request: HttpRequest) -> dict | None:
    """The body as a JSON object (none at all counts as `{}`); None if it is not one: not JSON,
    another JSON value, or nested deeper than MAX_BODY_DEPTH."""
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(body, dict) or _depth(body) > MAX_BODY_DEPTH:
        return None
    return body


def _depth(value: object) -> int:
    """How deep JSON containers nest in `value`; counted without recursion, whatever the depth."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


def _body(request: HttpRequest) -> dict:
    """What the third parties read: anything but a JSON object counts as `{}`, whose missing
    fields they refuse as the real ones would."""
    return _json_object(request) or {}


def _answer(request: HttpRequest, service: str, status: int, payload: dict) -> JsonResponse:
    ReceivedRequest.objects.create(
        service=service,
        method=request.method or "",
        path=request.path,
        idempotency_key=request.headers.get("Idempotency-Key", ""),
        body=_body(request),
        status_code=status,
    )
    return JsonResponse(payload, status=status)


def _unavailable(request: HttpRequest, service: str) -> JsonResponse:
    return _answer(request, service, 503, {"detail": f"{service} sandbox is failing on purpose"})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def charges(request: HttpRequest) -> JsonResponse:
    """POST: charge a card (create_charge). GET ?reference=…: the charges made for a
    reference, as a gateway's list endpoint answers, charging nothing: how a client that
    cannot tell whether an earlier attempt charged finds out without charging again."""
    if request.method == "GET":
        return list_charges(request)
    return create_charge(request)


def list_charges(request: HttpRequest) -> JsonResponse:
    if should_fail("payments"):
        return _unavailable(request, "payments")
    reference = request.GET.get("reference", "")
    if not reference:
        return _answer(request, "payments", 400, {"detail": "reference is required"})
    found = Charge.objects.filter(reference=reference).order_by("pk")
    data = [
        {
            "id": f"ch_{c.pk}",
            "amount": str(c.amount),
            "currency": c.currency,
            "reference": reference,
        }
        for c, ref in ((c, reference) for c in found)
    ]
    return _answer(request, "payments", 200, {"data": data})


def create_charge(request: HttpRequest) -> JsonResponse:
    if should_fail("payments"):
        return _unavailable(request, "payments")
    key = request.headers.get("Idempotency-Key", "")
    body = _body(request)
    if not key:
        return _answer(request, "payments", 400, {"detail": "Idempotency-Key header is required"})
    raw_amount = str(body.get("amount"))
    if not AMOUNT.fullmatch(raw_amount):
        return _answer(request, "payments", 400, {"detail": "amount must be a decimal string"})
    amount = Decimal(raw_amount)
    source = body.get("source", DEFAULT_SOURCE)
    if source in DECLINED_SOURCES:
        return _answer(request, "payments", 402, {"detail": DECLINED_SOURCES[source]})
    if source == PROCESSING_ERROR_SOURCE and not _failed_before(key):
        detail = "processing error: try again with the same Idempotency-Key"
        return _answer(request, "payments", 500, {"detail": detail})
    if amount >= DECLINE_AMOUNT:
        return _answer(request, "payments", 402, {"detail": "card declined: over the limit"})
    try:
        with transaction.atomic(using=router.db_for_write(Charge)):
            charge = Charge.objects.create(
                idempotency_key=key,
                amount=amount,
                currency=body.get("currency", "EUR"),
                reference=str(body.get("reference", "")),
            )
            status = 201
    except IntegrityError:
        # A repeated key: answer with the first charge, charge nothing.
        charge = Charge.objects.get(idempotency_key=key)
        status = 200
    return _answer(
        request,
        "payments",
        status,
        {"id": f"ch_{charge.pk}", "amount": str(charge.amount), "currency": charge.currency},
    )


@csrf_exempt
@require_http_methods(["POST"])
def create_refund(request: HttpRequest) -> JsonResponse:
    """POST {"charge": "ch_…"} with an Idempotency-Key: give the charge's amount back, once.

    201 with the refund the first time; the same key for the same charge again answers 200
    with the first refund and refunds nothing; the same key for another charge is a 409, and
    so is a charge refunded already under another key (a charge is refunded once, in full).
    404 for a charge the gateway never made."""
    if should_fail("payments"):
        return _unavailable(request, "payments")
    key = request.headers.get("Idempotency-Key", "")
    if not 0 < len(key) <= 255:
        return _answer(request, "payments", 400, {"detail": "Idempotency-Key header is required"})
    charge_id = str(_body(request).get("charge", ""))
    charge = None
    number = charge_id.removeprefix("ch_")
    # ASCII digits, as many as a key can have: str.isdigit() alone passes "²", which int()
    # refuses, as it does a str of over 4,300 digits.
    if charge_id.startswith("ch_") and number.isascii() and number.isdigit() and len(number) <= 18:
        charge = Charge.objects.filter(pk=int(number)).first()
    if charge is None:
        return _answer(request, "payments", 404, {"detail": f"no charge {charge_id!r}"})
    first = Refund.objects.filter(idempotency_key=key).first()
    if first is None:
        try:
            with transaction.atomic(using=router.db_for_write(Refund)):
                refund = Refund.objects.create(
                    idempotency_key=key, charge=charge, amount=charge.amount
                )
            return _answer(request, "payments", 201, _refund_out(refund))
        except IntegrityError:
            # The same key raced in, or the charge was refunded under another key.
            first = Refund.objects.filter(idempotency_key=key).first()
            if first is None:
                detail = f"charge {charge_id} is refunded already"
                return _answer(request, "payments", 409, {"detail": detail})
    if first.charge_id != charge.pk:
        detail = "this Idempotency-Key was used to refund another charge"
        return _answer(request, "payments", 409, {"detail": detail})
    # A repeated key: answer with the first refund, refund nothing.
    return _answer(request, "payments", 200, _refund_out(first))


def _refund_out(refund: Refund) -> dict:
    return {
        "id": f"re_{refund.pk}",
        "charge": f"ch_{refund.charge_id}",
        "amount": str(refund.amount),
        "currency": refund.charge.currency,
    }


def _failed_before(idempotency_key: str) -> bool:
    """Whether the gateway answered this charge with a processing error already."""
    return ReceivedRequest.objects.filter(
        service="payments", idempotency_key=idempotency_key, status_code=500
    ).exists()


@csrf_exempt
@require_http_methods(["POST"])
def send_sms(request: HttpRequest) -> JsonResponse:
    """POST {"to", "body"} with an Idempotency-Key: 201 and the message the first time; a
    repeated key answers 200 with the first message and sends nothing."""
    if should_fail("sms"):
        return _unavailable(request, "sms")
    key = request.headers.get("Idempotency-Key", "")
    if not 0 < len(key) <= 255:
        return _answer(request, "sms", 400, {"detail": "Idempotency-Key header is required"})
    body = _body(request)
    to, text = body.get("to"), body.get("body")
    if not isinstance(to, str) or not E164.match(to):
        return _answer(request, "sms", 400, {"detail": "to must be an E.164 number"})
    if not isinstance(text, str) or not text.strip() or len(text) > SMS_MAX_LENGTH:
        return _answer(
            request, "sms", 400, {"detail": f"body must be 1 to {SMS_MAX_LENGTH} characters"}
        )
    try:
        with transaction.atomic(using=router.db_for_write(SmsMessage)):
            message = SmsMessage.objects.create(idempotency_key=key, to=to, body=text)
            status = 201
    except IntegrityError:
        # A repeated key: answer with the first message, send nothing.
        message = SmsMessage.objects.get(idempotency_key=key)
        status = 200
    return _answer(
        request, "sms", status, {"id": f"sms_{message.pk}", "to": message.to, "body": message.body}
    )


def _upsert_crm(request: HttpRequest, kind: str, key: str) -> JsonResponse:
    if should_fail("crm"):
        return _unavailable(request, "crm")
    data = _body(request)
    updated = CrmRecord.objects.filter(kind=kind, external_key=key).update(
        data=data, writes=F("writes") + 1
    )
    if not updated:
        try:
            with transaction.atomic(using=router.db_for_write(CrmRecord)):
                CrmRecord.objects.create(kind=kind, external_key=key, data=data)
        except IntegrityError:
            CrmRecord.objects.filter(kind=kind, external_key=key).update(data=data)
    return _answer(request, "crm", 200, {"kind": kind, "key": key, "created": not updated})


@csrf_exempt
@require_http_methods(["PUT"])
def upsert_contact(request: HttpRequest, key: str) -> JsonResponse:
    return _upsert_crm(request, "contact", key)


@csrf_exempt
@require_http_methods(["PUT"])
def upsert_deal(request: HttpRequest, key: str) -> JsonResponse:
    return _upsert_crm(request, "deal", key)


@csrf_exempt
@require_http_methods(["POST"])
def collect_event(request: HttpRequest) -> JsonResponse:
    if should_fail("analytics"):
        return _unavailable(request, "analytics")
    body = _body(request)
    event_id = str(body.get("event_id", ""))
    if not event_id:
        return _answer(request, "analytics", 400, {"detail": "event_id is required"})
    _, created = AnalyticsEvent.objects.get_or_create(
        event_id=event_id,
        defaults={"name": str(body.get("name", "")), "properties": body.get("properties", {})},
    )
    return _answer(request, "analytics", 202, {"event_id": event_id, "duplicate": not created})


@csrf_exempt
@require_http_methods(["POST"])
def receive_webhook(request: HttpRequest, inbox: str) -> JsonResponse:
    """A webhook receiver as Standard Webhooks asks receivers to be: verify the signature over
    id, timestamp and raw body (401 if wrong), refuse timestamps more than five minutes off
    (replays), and process each webhook-id once."""
    box = WebhookInbox.objects.filter(name=inbox).first()
    if box is None:
        return _answer(request, "webhooks", 404, {"detail": f"no inbox {inbox!r}"})
    if should_fail("webhooks"):
        return _unavailable(request, "webhooks")
    try:
        message = Webhook(box.secret).verify(request.body, dict(request.headers))
    except (WebhookVerificationError, ValueError) as exc:
        return _answer(request, "webhooks", 401, {"detail": f"rejected: {exc}"})
    _, created = ReceivedWebhook.objects.get_or_create(
        webhook_id=request.headers["webhook-id"],
        defaults={"inbox": box, "event": message.get("type", ""), "payload": message},
    )
    return _answer(request, "webhooks", 200, {"duplicate": not created})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def switch_api(request: HttpRequest, service: str) -> JsonResponse:
    """GET or POST {"latency_ms", "failure_rate", "fail_next"}: for scripts and tests."""
    if service not in SERVICES:
        return JsonResponse({"detail": f"unknown service {service!r}"}, status=404)
    if request.method == "POST":
        body = _json_object(request)
        if body is None:
            detail = f"The body must be a JSON object, at most {MAX_BODY_DEPTH} levels deep."
            return JsonResponse({"detail": detail}, status=400)
        errors = _switch_errors(body)
        if errors:
            return JsonResponse({"errors": errors}, status=400)
        set_switch(
            service,
            **{k: body[k] for k in ("latency_ms", "failure_rate", "fail_next") if k in body},
        )
    switch = get_switch(service)
    return JsonResponse(
        {
            "service": service,
            "latency_ms": switch.latency_ms,
            "failure_rate": switch.failure_rate,
            "fail_next": switch.fail_next,
        }
    )


def _switch_errors(values: dict) -> dict[str, list[str]]:
    errors = {}
    for name in ("latency_ms", "fail_next"):
        if name in values and (
            not isinstance(values[name], int) or not 0 <= values[name] <= 600_000
        ):
            errors[name] = ["Must be a whole number from 0 to 600000."]
    rate = values.get("failure_rate", 0)
    if not isinstance(rate, int | float) or not 0 <= rate <= 1:
        errors["failure_rate"] = ["Must be a number from 0 to 1."]
    return errors


@require_http_methods(["GET", "POST"])
def control_panel(request: HttpRequest):
    """The sandbox page: switches per service and the last requests each one answered."""
    if request.method == "POST":
        service = request.POST.get("service", "")
        try:
            values: dict[str, Any] = {
                "latency_ms": int(request.POST.get("latency_ms", 0)),
                "failure_rate": float(request.POST.get("failure_rate_percent", 0)) / 100,
                "fail_next": int(request.POST.get("fail_next", 0)),
            }
        except ValueError:
            values = {"latency_ms": -1}
        errors = _switch_errors(values)
        if service not in SERVICES or errors:
            messages.error(request, f"Not changed: {errors or 'unknown service'}")
        else:
            set_switch(service, **values)
            messages.success(request, f"{service} sandbox updated.")
        return redirect("sandbox:control_panel")
    return render(
        request,
        "sandbox/control_panel.html",
        {
            "switches": [get_switch(service) for service in SERVICES],
            "recent": ReceivedRequest.objects.all()[:30],
            "charges": Charge.objects.count(),
            "refunds": Refund.objects.count(),
            "crm_records": CrmRecord.objects.count(),
            "events": AnalyticsEvent.objects.count(),
            "sms": SmsMessage.objects.count(),
            "webhooks": ReceivedWebhook.objects.count(),
        },
    )


def mailbox_view(request: HttpRequest):
    return render(
        request,
        "sandbox/mailbox.html",
        {"messages_": mailbox.messages(), "duplicates": mailbox.duplicates_suppressed()},
    )


def sms_outbox(request: HttpRequest):
    """Every text message the sandbox SMS provider sent, newest first."""
    return render(
        request,
        "sandbox/sms.html",
        {
            "sms_messages": SmsMessage.objects.all()[:200],
            "total": SmsMessage.objects.count(),
            # Repeated keys answered with the first message (and nothing sent).
            "repeats": ReceivedRequest.objects.filter(service="sms", status_code=200).count(),
        },
    )
