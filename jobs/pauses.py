"""Paused queues, on the workers' side: a worker takes no message from a paused queue.

The truth is the PausedQueue table (jobs.operations.pause and resume write it). Every worker
brings what it consumes in line with that table:

- when its consumer starts (before it takes its first message, and again after a lost
  broker connection): a worker started or restarted while a queue is paused never consumes
  from it;
- every JOBS_HEARTBEAT_SECONDS, on the consumer's own timer: a worker that missed the
  broadcast below (it was partitioned, or busy restarting) catches up within a heartbeat;
- at once, when an operator pauses or resumes a queue: a broadcast asks every worker to look
  again (`tell_workers`).

All three run in the consumer's thread, the only one that may touch its broker channel; that
is why the periodic look is on the consumer's timer and not on jobs.heartbeat's thread. A
resumed queue is consumed again only by the workers started with it: Celery's own
add_consumer broadcast would have every worker consume it.

Messages a worker had already taken from a queue when it was paused (its prefetch) meet the
claim (jobs.ledger.claim), which does not run a job of a paused queue: the message is put back
on its queue, where it waits for the resume. A worker process that meets such a message also
asks the workers to reconcile at once (`ask_again`, at most once a second), so that one that
missed the broadcast does not take the message again and again until its next heartbeat.
"""

import logging
import threading
import time
from typing import Any

from celery import bootsteps, current_app
from celery.worker.control import control_command
from django.conf import settings
from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)

RECONCILE_COMMAND = "jobs_reconcile_pauses"


def paused_queues() -> set[str]:
    from jobs.models import PausedQueue  # this module is named by the Celery app, before Django

    return set(PausedQueue.objects.values_list("queue", flat=True))


def reconcile(consumer: Any, configured: frozenset[str]) -> None:
    """Stop consuming the paused queues among `configured` (those the worker was started
    with) and consume again the ones resumed. Leaves things as they are if the database does
    not answer: the next heartbeat tries again."""
    try:
        paused = paused_queues()
    except DatabaseError as exc:
        logger.warning("paused queues not read: %s", exc)
        return
    finally:
        # Closed each time: this is a prefork worker's main process, which forks its pool
        # processes (see jobs.heartbeat on SQLite connections across fork()).
        connection.close()
    consuming = consumer.app.amqp.queues.consume_from
    for queue in sorted(configured):
        if queue in paused and queue in consuming:
            logger.warning("queue %s is paused: not taking its messages", queue)
            consumer.cancel_task_queue(queue)
        elif queue not in paused and queue not in consuming:
            logger.warning("queue %s is resumed: taking its messages again", queue)
            consumer.add_task_queue(queue)


class HonourPausedQueues(bootsteps.StartStopStep):
    """The consumer's step that reconciles at start and on every heartbeat (see above)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.configured: frozenset[str] | None = None
        self.timer_entry: Any = None
        c.jobs_reconcile_pauses = lambda: None

    def start(self, c: Any) -> None:
        if self.configured is None:  # the queues it was started with, before any pause
            self.configured = frozenset(c.app.amqp.queues.consume_from)
        configured = self.configured
        c.jobs_reconcile_pauses = lambda: reconcile(c, configured)
        c.jobs_reconcile_pauses()
        self.timer_entry = c.timer.call_repeatedly(
            settings.JOBS_HEARTBEAT_SECONDS, c.jobs_reconcile_pauses
        )

    def stop(self, c: Any) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    shutdown = stop


@control_command()
def jobs_reconcile_pauses(state: Any) -> dict[str, str]:
    """Look at the paused queues again now (an operator paused or resumed one)."""
    state.consumer.jobs_reconcile_pauses()
    return {"ok": "reconciled"}


_asked_at = 0.0
_asked_lock = threading.Lock()
ASK_AGAIN_SECONDS = 1.0


def ask_again() -> None:
    """A job of a paused queue reached this process: ask the workers to reconcile now, at most
    once a second per process (a worker's prefetch can hold several such messages)."""
    global _asked_at
    with _asked_lock:
        if time.monotonic() - _asked_at < ASK_AGAIN_SECONDS:
            return
        _asked_at = time.monotonic()
    tell_workers()


def tell_workers() -> None:
    """Ask every worker to reconcile now, from a thread of its own so that no request waits
    for the broker; if the broadcast is lost, each worker's next heartbeat does it."""

    def broadcast() -> None:
        try:
            current_app.control.broadcast(RECONCILE_COMMAND, reply=False)
        except Exception as exc:  # the broker away: the heartbeats catch up
            logger.warning("pause broadcast not sent: %s", exc)

    threading.Thread(target=broadcast, name="pause-broadcast", daemon=True).start()
