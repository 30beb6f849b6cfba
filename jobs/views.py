"""The operations dashboard (/ops/): queues and lag, throughput, workers, recent jobs with
filters, and the dead letters with requeue and discard, one or many, audited."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from jobs import dispatch, operations
from jobs.base import HOUSEKEEPING_JOBS
from jobs.metrics import exposition
from jobs.models import DeadLetter, DeadLetterAction, Job

RECENT_JOBS = 50


def _stats_context() -> dict[str, Any]:
    return {"stats": operations.stats(), "flower_url": settings.FLOWER_URL}


@staff_member_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    filters = {key: request.GET[key] for key in ("state", "queue", "name") if request.GET.get(key)}
    housekeeping = bool(request.GET.get("housekeeping"))
    jobs = Job.objects.filter(**filters)
    if not (housekeeping or "name" in filters):
        jobs = jobs.exclude(name__in=HOUSEKEEPING_JOBS)
    jobs = (
        jobs.order_by("-created_at")
        .select_related("concerning_type")
        .prefetch_related("concerning")
    )[:RECENT_JOBS]
    letters = (
        DeadLetter.objects.filter(status=DeadLetter.Status.OPEN)
        .select_related("job__concerning_type")
        .prefetch_related("job__concerning")
    )
    return render(
        request,
        "jobs/ops.html",
        {
            **_stats_context(),
            "jobs": jobs,
            "filters": filters,
            "housekeeping": housekeeping,
            "states": Job.State.values,
            "queues": settings.QUEUES,
            "names": sorted(dispatch.ledger_job_names()),
            "letters": letters[:200],
            "actions": DeadLetterAction.objects.select_related("by", "letter__job")[:20],
        },
    )


@never_cache
@staff_member_required
@require_GET
def dashboard_stats(request: HttpRequest) -> HttpResponse:
    return render(request, "jobs/_ops_stats.html", _stats_context())


@staff_member_required
@require_POST
def act_on_dead_letters(request: HttpRequest) -> HttpResponse:
    """Requeue or discard the dead letters ticked on the dashboard."""
    action = request.POST.get("action")
    reason = request.POST.get("reason", "").strip()
    ids = [value for value in request.POST.getlist("letter") if value.isdigit()]
    if action not in ("requeue", "discard") or not ids:
        messages.error(request, "Tick one or more dead letters, then requeue or discard them.")
        return redirect("ops:dashboard")
    if action == "discard" and not reason:
        messages.error(request, "Say why: a discard needs a reason, for the audit.")
        return redirect("ops:dashboard")
    operator = operations.operator(request.user)
    done, skipped = 0, 0
    for letter in DeadLetter.objects.filter(pk__in=ids).select_related("job"):
        try:
            if action == "requeue":
                operations.requeue(letter, by=operator, reason=reason)
            else:
                operations.discard(letter, by=operator, reason=reason)
            done += 1
        except operations.NotOpen:
            skipped += 1
    verb = "Requeued" if action == "requeue" else "Discarded"
    messages.success(request, f"{verb} {done} dead letter{'s' if done != 1 else ''}.")
    if skipped:
        messages.warning(request, f"{skipped} were no longer open (someone acted first).")
    return redirect("ops:dashboard")


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape endpoint. With METRICS_TOKEN set it wants that bearer token; without,
    it answers only in debug mode (set a token in production, or keep it off the network)."""
    expected = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if (expected and not constant_time_compare(given, expected)) or (
        not expected and not settings.DEBUG
    ):
        return HttpResponse("metrics need the METRICS_TOKEN bearer token\n", status=403)
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)
