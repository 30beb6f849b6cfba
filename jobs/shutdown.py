"""A stopping worker hands its running jobs back at once (a deploy: SIGTERM).

With REMAP_SIGTERM=SIGQUIT in its environment (the Procfile, docker-compose.yml and the image
set it), Celery answers SIGTERM with its soft shutdown: running jobs get
WORKER_SOFT_SHUTDOWN_TIMEOUT to finish, then the worker stops them and their messages go back
to the broker. Their ledger rows would still say `running`, leased to processes that are
gone: the next delivery would wait the lease out and count a lost run. So a moment before the
soft shutdown ends (HAND_BACK_MARGIN_SECONDS):

- every job this worker's processes still hold is handed back in the ledger: `queued` again,
  its lease released, with the reason on the row (Job.Stall.HANDED_BACK). A prefork child is
  stopped right after; another worker takes the job up at once, and it is not a lost run;
- `handing_back` is set: a job running on a thread, which nothing can stop, hands itself back
  at its next safe point (`checkpoint()`: before each third-party call, effect and rate-limit
  wait), and a delivery that arrives now is put back unstarted. Between safe points a thread
  finishes what it is doing: each call is bounded by its timeout, which jobs.checks keeps
  below the soft shutdown timeout.
"""

import logging
import signal
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from billiard.common import REMAP_SIGTERM
from celery.signals import worker_init, worker_ready
from django.conf import settings

from jobs import ledger
from jobs.connections import no_fork_meanwhile

logger = logging.getLogger(__name__)

HAND_BACK_MARGIN_SECONDS = 1.0
handing_back = threading.Event()


class HandedBack(BaseException):
    """Raised at a safe point once this worker hands its jobs back. A BaseException, so that
    a job's own `except Exception` does not swallow it."""


def checkpoint() -> None:
    """A safe point: stop here if the worker is handing its jobs back."""
    if handing_back.is_set():
        raise HandedBack


@worker_ready.connect
def _hand_back_when_stopped_for_a_deploy(sender: Any = None, **kwargs: Any) -> None:
    """Put a hand-back in front of Celery's own handlers of the signals that start a cold
    shutdown. Celery waits the soft shutdown out inside its handler and only then says so
    (worker_shutting_down): too late to hand anything back."""
    if threading.current_thread() is not threading.main_thread():
        return  # a worker run inside another program's thread (the tests'): no signals here
    node = str(sender.hostname)
    cold = ["SIGQUIT", *(["SIGTERM"] if REMAP_SIGTERM == "SIGQUIT" else [])]
    for name in cold:
        number = getattr(signal, name)
        celery_handler = signal.getsignal(number)
        if callable(celery_handler):
            signal.signal(number, partial(_then_celery, celery_handler, node))


_scheduled = threading.Event()


def _then_celery(
    celery_handler: Callable[[int, Any], Any], node: str, signum: int, frame: Any
) -> None:
    if not _scheduled.is_set():
        _scheduled.set()
        delay = max(0.0, settings.CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT - HAND_BACK_MARGIN_SECONDS)
        timer = threading.Timer(delay, _hand_back, kwargs={"node": node})
        timer.daemon = True
        timer.start()
    celery_handler(signum, frame)


def _hand_back(*, node: str) -> None:
    handing_back.set()
    # A timer's thread in the main process, which may still fork a pool process meanwhile.
    with no_fork_meanwhile():
        handed = ledger.hand_back_held_by(node=node)
    logger.warning("stopping: %d running job(s) handed back for other workers", handed)


@worker_init.connect
def _warn_without_soft_shutdown_on_sigterm(**kwargs: Any) -> None:
    if REMAP_SIGTERM != "SIGQUIT":
        logger.warning(
            "REMAP_SIGTERM is not SIGQUIT: SIGTERM (a deploy) makes this worker wait for every "
            "running job instead of handing it back after WORKER_SOFT_SHUTDOWN_TIMEOUT"
        )
