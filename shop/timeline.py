"""An order's jobs told to its customer: each step in words a customer understands, with its
business outcome ("Payment: Declined: …", "Review request, in 1 hour: Planned").

The job machinery stays generic (jobs/ names jobs and states); what a job means to a
customer is the shop's to say, here. What never reaches a customer from here: an error's
text (it may hold internal URLs), a queue's name, a job's id, or the machinery's own jobs
(jobs.base.HOUSEKEEPING_JOBS). Staff see those in the order page's technical table.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from jobs.base import HOUSEKEEPING_JOBS
from jobs.models import Job

# What each of the order's jobs is, to its customer. Jobs of the same label are one step.
# Analytics is the shop's own business: a customer would not care, so it is left out.
LABELS: dict[str, str | None] = {
    "jobs.charge_payment": "Payment",
    "jobs.send_order_confirmation": "Order confirmation email",
    "jobs.sync_crm_deal": "Shop records updated",
    "jobs.track_analytics_event": None,
    "jobs.send_shipping_notification": "Shipping text message",
    "jobs.send_review_reminder": "Review request",
    # The page links the PDF itself once it is made (shop/templates/shop/_invoice.html).
    "jobs.make_invoice": "Invoice",
    "jobs.refund_payment": "Refund",
}
# A job about the order that has no label yet (a new one): shown, in plain words.
OTHER_LABEL = "Order processing"

# What a finished job did, per job, when "Done" says less.
DONE_WORDS = {
    "jobs.charge_payment": "Paid",
    "jobs.send_order_confirmation": "Sent",
    "jobs.send_shipping_notification": "Sent",
    "jobs.send_review_reminder": "Sent",
    "jobs.make_invoice": "Ready",
    "jobs.refund_payment": "Refunded",
}

_LONG_AGO = datetime.min.replace(tzinfo=UTC)

# Which job of a step speaks for it: the one furthest from done, so that a step is "Done"
# only when each of its jobs is. Lower comes first.
_URGENCY = {
    Job.State.RUNNING: 0,
    Job.State.RETRYING: 1,
    Job.State.QUEUED: 2,
    Job.State.SCHEDULED: 3,
    Job.State.DEAD: 4,
    Job.State.DECLINED: 5,
    Job.State.CANCELLED: 6,
    Job.State.SKIPPED: 7,
    Job.State.SUCCEEDED: 8,
}


@dataclass(frozen=True)
class Step:
    label: str  # "Payment"
    due: str  # "in 1 hour" for a job that waits for its time; "" otherwise
    outcome: str  # "Declined: your card was declined — over the limit"
    tone: str  # done, waiting, working, delayed, stopped, declined, not-needed: for the badge
    final: bool


def order_steps(*, jobs: Iterable[Job], now: datetime | None = None) -> list[Step]:
    """The order's jobs (oldest first) as its customer's timeline: one step per label, in the
    order its first job was due (a job's due time, else when it was recorded), so that the
    review request, recorded with the order but due in an hour, comes last."""
    now = now or timezone.now()
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        if job.name in HOUSEKEEPING_JOBS:
            continue
        label = LABELS.get(job.name, OTHER_LABEL)
        if label is not None:
            groups.setdefault(label, []).append(job)
    ordered = sorted(groups.items(), key=lambda item: _due(item[1][0]))
    return [_step(label, _speaker(group), now=now) for label, group in ordered]


def _due(job: Job) -> datetime:
    return job.eta or job.created_at or _LONG_AGO


def _speaker(group: list[Job]) -> Job:
    # Among equals, the latest recorded: the job that is about the order's newest state.
    return min(reversed(group), key=lambda job: _URGENCY.get(Job.State(job.state), 9))


def _step(label: str, job: Job, *, now: datetime) -> Step:
    outcome, tone = _outcome(job, now=now)
    due = ""
    if job.state == Job.State.SCHEDULED and job.eta is not None:
        due = in_words(job.eta - now)
    return Step(label=label, due=due, outcome=outcome, tone=tone, final=job.is_final)


def _outcome(job: Job, *, now: datetime) -> tuple[str, str]:
    state = job.state
    if state == Job.State.SUCCEEDED:
        return DONE_WORDS.get(job.name, "Done"), "done"
    if state == Job.State.DECLINED:
        return f"Declined: {declined_reason(job)}", "declined"
    if state == Job.State.SKIPPED:
        return _with_reason("Not needed", job.outcome_reason), "not-needed"
    if state == Job.State.CANCELLED:
        return _with_reason("Cancelled", job.outcome_reason), "not-needed"
    if state == Job.State.DEAD:
        # Its error is for staff, who were told (a dead letter); they may still run it again,
        # and the page follows it if they do.
        return "Could not be completed; the shop's staff have been told", "stopped"
    if job.stall_note:
        # Its worker died or stopped: another takes it up once the lease runs out.
        if state == Job.State.RUNNING and job.lease_until is not None and job.lease_until > now:
            return f"Waiting to be picked up again, by {_clock(job.lease_until)}", "delayed"
        return "Waiting to be picked up again, any moment now", "delayed"
    if state == Job.State.RETRYING:
        if job.next_attempt_at is not None:
            return f"Delayed, trying again at {_clock(job.next_attempt_at)}", "delayed"
        return "Delayed, trying again shortly", "delayed"
    if state == Job.State.RUNNING:
        return "In progress", "working"
    if state == Job.State.SCHEDULED:
        return "Planned", "waiting"
    return "Waiting to start", "waiting"


def declined_reason(job: Job) -> str:
    """The gateway's "card declined: over the limit" as a customer reads it."""
    reason = job.outcome_reason.strip()
    if job.name == "jobs.charge_payment":
        _, _, why = reason.partition("card declined")
        why = why.lstrip(": ").strip()
        return f"your card was declined — {why}" if why else "your card was declined"
    return reason or "the answer was no"


def _with_reason(word: str, reason: str) -> str:
    return f"{word}: {reason.strip()}" if reason.strip() else word


def _clock(moment: datetime) -> str:
    # With its zone, as the page's "Placed" shows it: a bare time reads as the reader's own.
    return f"{timezone.localtime(moment):%H:%M:%S %Z}"


def in_words(left: timedelta) -> str:
    """A due time relative to now, rounded up to the minute: "in 1 hour", "in 5 minutes"."""
    minutes = math.ceil(left.total_seconds() / 60)
    if minutes <= 1:
        return "in a minute" if minutes == 1 else "any moment now"
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"in {minutes} minutes"
    hour_words = "1 hour" if hours == 1 else f"{hours} hours"
    return f"in {hour_words}" if not rest else f"in {hour_words} {rest} min"
