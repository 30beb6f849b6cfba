"""The job ledger: one row per unit of background work.

The ledger is at once the outbox (rows recorded in the request's transaction and not yet
published), the status that pages and the API show, and the audit trail.
"""

import functools
import operator
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone


def state_is(*states: str) -> models.Q:
    """`state IN (states)`, written as `state = a OR state = b OR …`: SQLite reads a partial
    index whose condition is such an OR for a query that names one of its states, or the same
    OR, but never for an IN (SQLite 3.40); PostgreSQL reads it either way."""
    return functools.reduce(operator.or_, (models.Q(state=state) for state in states))


class JobQuerySet(models.QuerySet["Job"]):
    def concerning(self, subject: models.Model) -> "JobQuerySet":
        """The jobs recorded about this model instance (`enqueue(..., concerning=...)`)."""
        return self.filter(
            concerning_type=ContentType.objects.get_for_model(subject),
            concerning_id=str(subject.pk),
        )


class Job(models.Model):
    class State(models.TextChoices):
        SCHEDULED = "scheduled"  # recorded with a due time; the relay publishes it when due
        QUEUED = "queued"  # recorded, to be (or already) published
        RUNNING = "running"
        RETRYING = "retrying"  # failed with a transient error, next attempt at next_attempt_at
        SUCCEEDED = "succeeded"
        DEAD = "dead"  # failed for good; a dead letter records why
        # Stopped by an operator before it ran (or between its retries): never runs; a message
        # of it still on the broker is dropped by the claim. Why is in outcome_reason.
        CANCELLED = "cancelled"
        # Ended by its own run without doing its work, because the work no longer applies (a
        # review reminder for an order that was cancelled): jobs.errors.Skip, reason kept.
        SKIPPED = "skipped"
        # Ended by its own run with a business "no" that trying again cannot change (a card
        # the gateway declined): jobs.errors.Decline, reason kept. Not a failure: no retry,
        # no dead letter.
        DECLINED = "declined"

    FINAL_STATES = (State.SUCCEEDED, State.DEAD, State.CANCELLED, State.SKIPPED, State.DECLINED)
    # What an operator may cancel at once: a job no run holds now. A running job ends by itself,
    # unless it is declared `cancellable_while_running`: then it may be asked to stop.
    CANCELLABLE_STATES = (State.SCHEDULED, State.QUEUED, State.RETRYING)

    class Stall(models.TextChoices):
        """Why a job waits to be taken up again (set when it was found so, cleared when a run
        takes it): what the pages, the dashboard and the metrics say instead of "running"."""

        WORKER_LOST = "worker_lost", "its worker stopped"
        MESSAGE_LOST = "message_lost", "its message was lost"
        HANDED_BACK = "handed_back", "its worker was stopped and handed it back"

    # Also the Celery task id, so a publish that is repeated is the same message.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)  # indexed with created_at: job_by_name below
    kwargs = models.JSONField(default=dict)
    queue = models.CharField(max_length=50)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)  # runs started, whatever their end
    # Celery's retry count of the message that holds the job now: a fence, so that a stale or
    # duplicate message can be told apart from the job's current one (jobs.ledger.claim).
    retries = models.PositiveIntegerField(default=0)
    # While RUNNING: until when the current run holds the job. The run's process renews it
    # every JOBS_HEARTBEAT_SECONDS (jobs.heartbeat), so it runs out soon after the process dies.
    lease_until = models.DateTimeField(null=True, blank=True)
    # Which process holds the lease ("node:pid"): a stopping worker hands back exactly the
    # jobs its own processes hold (jobs.shutdown).
    lease_holder = models.CharField(max_length=200, blank=True, db_default="")
    # Runs whose worker died under them (found by an expired lease).
    lost_runs = models.PositiveIntegerField(default=0)
    # Raised by an operator's requeue: messages from before it are stale, whatever they carry.
    epoch = models.PositiveIntegerField(default=0)
    # Messages sent for the job, by the request that recorded it, by retries and by the relay:
    # more than its runs need means the relay published again (docs/guarantees.md).
    # (Database defaults for these three: the release before them inserts rows without them.)
    publishes = models.PositiveIntegerField(default=0, db_default=0)
    stalled_reason = models.CharField(
        max_length=20, blank=True, choices=Stall.choices, db_default=""
    )
    eta = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Why the job ended as it did when no run decided it: an operator's reason for cancelling
    # it, or why its run skipped or declined it (jobs.errors.Skip, jobs.errors.Decline).
    outcome_reason = models.TextField(blank=True, db_default="")
    # How far a long job has come, as its run reports it (LedgerTask.report_progress): units
    # done of the total. NULL until it reports; pages and the API show it as a progress bar.
    progress_done = models.PositiveBigIntegerField(null=True, blank=True)
    progress_total = models.PositiveBigIntegerField(null=True, blank=True)
    # When an operator asked a running job to stop (jobs.operations.cancel), for a job declared
    # `cancellable_while_running`: its run sees it at its next progress report and ends the job
    # `cancelled`, with the operator's reason (kept in the audit, OperatorAction, until then).
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # The X-Request-ID of the web request that recorded the job, for following it in the logs.
    request_id = models.CharField(max_length=64, blank=True)
    # What the job is about, if anything: any model instance of the project (an order, a
    # customer). A text id, so that models with UUID keys can be named too. Pages show a
    # subject's jobs through a GenericRelation on its model (shop.models.Order.jobs).
    # Not indexed alone: job_concerning below leads with it, and serves every lookup by it
    # (a content type's cascade included); a second index would be one more entry per INSERT.
    concerning_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    concerning_id = models.CharField(max_length=64, blank=True)
    concerning = GenericForeignKey("concerning_type", "concerning_id")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    published_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    first_failed_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # A subject's timeline: its jobs, oldest first.
            models.Index(
                fields=["concerning_type", "concerning_id", "created_at"], name="job_concerning"
            ),
            # An index is written each time a job moves in or out of it or changes a column of
            # it, and a run moves its job twice (claimed, finished): four indexes that led
            # with the state, each holding every row, made a no-op job write 16 index entries;
            # these hold only the rows their readers look for, and a no-op job writes 5 (the
            # workers' CPU a job: docs/performance.md, "What limits the machinery").
            # tests/jobs/test_query_plans.py holds the stats, the sweeps, the purge and the
            # dashboard's lists to an index.
            # The live jobs by state (LIVE_STATES below): the relay's sweeps (unpublished,
            # retries due, leases run out: the running rows are as few as the workers'
            # threads), the live counts, the oldest message waiting in each queue. A claim
            # moves its row within it, a finish out of it.
            models.Index(
                fields=["state", "published_at"],
                name="job_live",
                condition=state_is("scheduled", "queued", "running", "retrying"),
            ),
            # Scheduled jobs by due time (the due sweep), which no run writes. The state is in
            # it too, so that the sweep's `state = 'scheduled' AND eta <= now` matches more of
            # it than of the index above: SQLite chooses by that.
            models.Index(
                fields=["state", "eta"], name="job_due", condition=models.Q(state="scheduled")
            ),
            # The purge's batch pick (oldest succeeded first) and the dashboard's "finished in
            # the last minute" (succeeded and dead): range scans of this index alone, whatever
            # the size of the ledger. The finished jobs only: a claim does not write it.
            models.Index(
                fields=["state", "finished_at"],
                name="job_finished",
                condition=models.Q(finished_at__isnull=False),
            ),
            # The dashboard's and the admin's lists of the jobs in a final state, newest first
            # (/ops/?state=dead), and the admin's count of them: read in order, 50 at a time,
            # however many there are. A live state's rows are few, and job_live finds them.
            models.Index(
                fields=["state", "created_at"],
                name="job_ended",
                condition=state_is("succeeded", "dead", "cancelled", "skipped", "declined"),
            ),
            # The newest jobs of a name or of a queue, in order (the dashboard's and the admin's
            # filters, a subject's dead letters by name): read 50 at a time however long the
            # history. Any lookup by name alone uses job_by_name. Neither is written by a run
            # (the name, the queue and the creation never change), only by the INSERT.
            models.Index(fields=["name", "created_at"], name="job_by_name"),
            models.Index(fields=["queue", "created_at"], name="job_by_queue"),
            # Stalled jobs are few: the dashboard and the metrics count them from this.
            models.Index(
                fields=["stalled_reason"],
                name="job_stalled",
                condition=~models.Q(stalled_reason=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.state}] {self.id}"

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def progress(self) -> dict[str, int] | None:
        """{"done": n, "total": m} once the job reported progress; None before (or never)."""
        if self.progress_total is None:
            return None
        return {"done": self.progress_done or 0, "total": self.progress_total}

    @property
    def stopping(self) -> bool:
        """Running, and asked to stop: it ends `cancelled` at its next progress report."""
        return self.state == self.State.RUNNING and self.cancel_requested_at is not None

    @property
    def stall_note(self) -> str:
        """Why the job waits to be taken up again, in words for a page; "" if it does not."""
        now = timezone.now()
        if self.state == self.State.RUNNING and self.lease_until:
            if self.lease_until <= now:
                return "its worker stopped; it is being handed to another worker"
            heard = self.lease_until - timedelta(seconds=settings.JOBS_LEASE_SECONDS)
            if heard < now - timedelta(seconds=2 * settings.JOBS_HEARTBEAT_SECONDS):
                return (
                    f"its worker has not been heard from since {heard:%H:%M:%S}; "
                    f"another takes it up at {self.lease_until:%H:%M:%S} if it stays silent"
                )
        if self.stalled_reason and self.state in (self.State.QUEUED, self.State.RETRYING):
            return f"waiting to be taken up again: {self.get_stalled_reason_display()}"
        return ""


# The states whose rows the ledger keeps piling up: their counts come from JobCount. The
# others are few whatever the ledger's size (a backlog), and are counted through an index.
COUNTED_STATES = tuple(str(state) for state in Job.FINAL_STATES)
LIVE_STATES = tuple(state for state in Job.State.values if state not in COUNTED_STATES)


class JobCount(models.Model):
    """How many jobs are in each final state, kept by triggers on the ledger's table (migration
    0011_flat_counts) in the statement that moves a job, whatever moves it: the ORM, plain SQL,
    the admin, a purge. The dashboard and the metrics read these few rows instead of counting
    a table that grows with every job.

    Counted: a state's count is the sum of its rows. On PostgreSQL each database session adds
    to a row of its own (`shard`, from its backend's pid): workers finishing jobs at once do
    not queue on one row's lock. On SQLite (one writer at a time) there is one row per state.
    The live states (scheduled, queued, running, retrying) are counted through an index on
    state: their rows are few, and keeping them here would add a write to every claim."""

    state = models.CharField(max_length=12)
    shard = models.SmallIntegerField(default=0)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["state", "shard"], name="jobcount_state_shard")
        ]

    def __str__(self) -> str:
        return f"{self.state}[{self.shard}]: {self.n}"


class DeadLetter(models.Model):
    """A job that failed for good: what it was, why, and what an operator did about it."""

    class Status(models.TextChoices):
        OPEN = "open"
        REQUEUED = "requeued"
        DISCARDED = "discarded"

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="dead_letter")
    error = models.TextField()
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField()
    first_failed_at = models.DateTimeField()
    failed_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-failed_at"]
        indexes = [
            # The open letters, newest first (the dashboard) and their count (the stats): a
            # few rows, however many letters were requeued or discarded over the years.
            models.Index(
                fields=["failed_at"],
                name="deadletter_open",
                condition=models.Q(status="open"),
            ),
        ]

    def __str__(self) -> str:
        return f"dead letter for {self.job}"


class OperatorAction(models.Model):
    """The audit of what operators did: who, when, why, and to what (a queue, a job, a dead
    letter). One row per job or letter acted on, also when many were acted on at once."""

    class Action(models.TextChoices):
        PAUSE = "pause"
        RESUME = "resume"
        CANCEL = "cancel"
        REQUEUE = "requeue"
        DISCARD = "discard"

    action = models.CharField(max_length=10, choices=Action.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    reason = models.TextField(blank=True)
    queue = models.CharField(max_length=50, blank=True)
    # The job and its name: the name stays readable if the job's row is purged one day.
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="operator_actions"
    )
    job_name = models.CharField(max_length=100, blank=True)
    letter = models.ForeignKey(
        DeadLetter, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        what = self.job_name or f"queue {self.queue}"
        return f"{self.action} of {what} by {self.by} at {self.at:%Y-%m-%d %H:%M}"


class PausedQueue(models.Model):
    """A queue whose messages workers do not take while its row exists (jobs.pauses): the
    durable truth that a restarted worker reads. Publishing into it goes on; messages wait."""

    queue = models.CharField(max_length=50, unique=True)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    paused_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField()

    class Meta:
        ordering = ["queue"]

    def __str__(self) -> str:
        return f"{self.queue} paused by {self.paused_by} at {self.paused_at:%Y-%m-%d %H:%M}"


class Effect(models.Model):
    """A side effect under a key that names it (for example "welcome-email:42").

    The key is reserved before the effect is performed and marked done after, so a repeated
    delivery of a job finds it done (and skips), or reserved by a run that is still going
    (and waits), or reserved by a run that died before marking it (and performs it again:
    the one case where an effect without receiver-side deduplication can repeat).
    """

    key = models.CharField(max_length=200, unique=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    reserved_until = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key


class WorkerHeartbeat(models.Model):
    """A worker that is alive: each worker's main process writes its row every
    JOBS_HEARTBEAT_SECONDS (jobs.heartbeat). "Workers online" counts the fresh ones, so that
    a health check or a scrape never has to ask the workers through the broker."""

    hostname = models.CharField(max_length=200, unique=True)
    pid = models.PositiveIntegerField()
    queues = models.CharField(max_length=500, blank=True)
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.hostname} (pid {self.pid}) seen at {self.seen_at:%H:%M:%S}"


class ScheduleRun(models.Model):
    """A run of one of beat's schedules, by its name and due time (jobs.schedules.claim_run):
    the unique pair lets a second beat, on another host, see that the run is taken and send
    nothing, so that beat may run on two hosts and every schedule still runs once."""

    name = models.CharField(max_length=200)
    due_at = models.DateTimeField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "due_at"], name="schedule_run_once"),
        ]
        indexes = [models.Index(fields=["sent_at"], name="schedule_run_sent")]

    def __str__(self) -> str:
        return f"{self.name} due {self.due_at:%Y-%m-%d %H:%M:%S}"
