"""The operations dashboard (/ops/): queues and lag, throughput, workers, recent jobs with
filters; pausing and resuming a queue, cancelling a job that has not run, and the dead letters
with requeue and discard, ticked or by a filter, all audited. Staff only, through the shop's
login."""

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from jobs import dispatch, operations
from jobs.base import HOUSEKEEPING_JOBS
from jobs.metrics import exposition
from jobs.models import DeadLetter, Job, OperatorAction

RECENT_JOBS = 50
# The most digits that always fit a dead letter's id (a 64-bit integer).
MAX_ID_DIGITS = 18

View = Callable[..., HttpResponse]


def staff_only(view: View) -> View:
    """Anonymous visitors go to the site's login page (settings.LOGIN_URL) and come back;
    a signed-in account that is not staff is refused (403), not sent to log in again."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return checked


def _stats_context() -> dict[str, Any]:
    return {"stats": operations.stats(), "flower_url": settings.FLOWER_URL}


@staff_only
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
    # The bulk form's preview: how many open letters its filter matches now.
    letter_filter = {
        "job_name": request.GET.get("letter_name", "").strip(),
        "error_contains": request.GET.get("letter_error", "").strip(),
    }
    matching = (
        operations.open_letters(**letter_filter).count() if any(letter_filter.values()) else None
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
            "cancellable": Job.CANCELLABLE_STATES,
            "stoppable": operations.stoppable_job_names(),
            "queues": settings.QUEUES,
            "names": sorted(dispatch.ledger_job_names()),
            "letters": letters[:200],
            "letter_filter": letter_filter,
            "matching": matching,
            "at_a_time": operations.MATCHING_AT_A_TIME,
            "actions": OperatorAction.objects.select_related("by")[:30],
        },
    )


@never_cache
@staff_only
@require_GET
def dashboard_stats(request: HttpRequest) -> HttpResponse:
    return render(request, "jobs/_ops_stats.html", _stats_context())


@staff_only
@require_POST
def act_on_dead_letters(request: HttpRequest) -> HttpResponse:
    """Requeue or discard the dead letters ticked on the dashboard."""
    action = request.POST.get("action")
    reason = request.POST.get("reason", "").strip()
    # Ids as the form sends them: ASCII digits that fit the key (str.isdigit() alone passes
    # "²", which int() refuses, and any length, which the database does).
    ids = [
        int(value)
        for value in request.POST.getlist("letter")
        if value.isascii() and value.isdigit() and len(value) <= MAX_ID_DIGITS
    ]
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


@staff_only
@require_POST
def act_on_matching_dead_letters(request: HttpRequest) -> HttpResponse:
    """Requeue or discard the open dead letters that the filter matches, 500 at a time."""
    action = request.POST.get("action")
    reason = request.POST.get("reason", "").strip()
    job_name = request.POST.get("job_name", "").strip()
    error_contains = request.POST.get("error_contains", "").strip()
    back = (
        reverse("ops:dashboard")
        + "?"
        + urlencode({"letter_name": job_name, "letter_error": error_contains})
        + "#matching"
    )
    if action not in ("requeue", "discard"):
        messages.error(request, "Choose requeue or discard.")
        return redirect(back)
    operator = operations.operator(request.user)
    act = operations.requeue_matching if action == "requeue" else operations.discard_matching
    try:
        acted = act(job_name=job_name, error_contains=error_contains, by=operator, reason=reason)
    except ValueError as exc:  # no filter, or no reason for a discard
        messages.error(request, str(exc))
        return redirect(back)
    verb = "Requeued" if action == "requeue" else "Discarded"
    done = f"{verb} {acted.done} dead letter{'s' if acted.done != 1 else ''}."
    if acted.left:
        done += f" {acted.left} more match: {action} again to act on them."
        messages.warning(request, done)
    else:
        messages.success(request, done)
    return redirect(back)


@staff_only
@require_POST
def pause_queue(request: HttpRequest, queue: str) -> HttpResponse:
    return _queue_action(request, queue, pause=True)


@staff_only
@require_POST
def resume_queue(request: HttpRequest, queue: str) -> HttpResponse:
    return _queue_action(request, queue, pause=False)


def _queue_action(request: HttpRequest, queue: str, *, pause: bool) -> HttpResponse:
    operator = operations.operator(request.user)
    reason = request.POST.get("reason", "")
    try:
        if pause:
            operations.pause(queue, by=operator, reason=reason)
        else:
            operations.resume(queue, by=operator, reason=reason)
    except (operations.UnknownQueue, operations.ReasonRequired, operations.Conflict) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Queue {queue} {'paused' if pause else 'resumed'}.")
    return redirect(reverse("ops:dashboard") + "#queues")


@staff_only
@require_POST
def cancel_job(request: HttpRequest, job_id: UUID) -> HttpResponse:
    operator = operations.operator(request.user)
    try:
        job = operations.cancel(str(job_id), by=operator, reason=request.POST.get("reason", ""))
    except Job.DoesNotExist:
        messages.error(request, "There is no such job.")
    except (operations.ReasonRequired, operations.Conflict) as exc:
        messages.error(request, str(exc))
    else:
        if job.stopping:
            messages.success(
                request,
                f"Asked {job.name} ({job.pk}) to stop: it ends at its next progress report.",
            )
        else:
            messages.success(request, f"Cancelled {job.name} ({job.pk}).")
    return redirect(reverse("ops:dashboard") + "#jobs")


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
