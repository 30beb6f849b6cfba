import gc
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis
from aiosmtpd.controller import Controller
from celery.concurrency.thread import TaskPool as ThreadTaskPool
from celery.contrib.testing.worker import start_worker
from celery.worker import WorkController
from django.conf import settings
from django.db import close_old_connections
from rest_framework.test import APIClient

from config.celery import app as celery_app
from jobs import broker as broker_module
from jobs import relay
from sandbox import mailbox as sandbox_mailbox
from sandbox.mailbox import MaildirHandler
from webhooks import services as webhook_services


@pytest.fixture(autouse=True)
def _fresh_webhook_endpoints() -> None:
    """Each process keeps the active webhook endpoints for a few seconds; a test's database is
    emptied between tests without the signals that would tell it."""
    webhook_services.forget_cached_endpoints()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    """A plain client of the test broker (its primary, behind Sentinel), to look at queues as
    Celery left them."""
    client = broker_module.redis_client()
    yield client
    client.close()


@pytest.fixture
def empty_queues(broker: redis.Redis) -> redis.Redis:
    """Start from empty queues, whatever an earlier test (or run) left on the broker."""
    for queue in settings.QUEUES:
        broker.delete(queue, *broker.keys(f"{queue}\x06\x16*"))
    broker.delete("unacked", "unacked_index")
    return broker


@pytest.fixture(scope="session")
def mail_server() -> Iterator[Controller]:
    """The sandbox SMTP server, on the port the settings send mail to."""
    controller = Controller(
        MaildirHandler(settings.SANDBOX_MAILDIR), hostname="127.0.0.1", port=settings.EMAIL_PORT
    )
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def mailbox(mail_server: Controller, settings) -> Callable[[], list[sandbox_mailbox.Message]]:
    """Empty the sandbox mailbox; return a function that lists what arrived since.

    Mail goes over real SMTP: Django's test set-up swaps in the in-memory backend, and this
    puts the configured one back.
    """
    settings.EMAIL_BACKEND = settings.EMAIL_CONFIG["EMAIL_BACKEND"]
    shutil.rmtree(settings.SANDBOX_MAILDIR, ignore_errors=True)
    return sandbox_mailbox.messages


@contextmanager
def running_worker() -> Iterator[WorkController]:
    """A real Celery worker, in this process, consuming every queue from the real broker, on a
    pool of threads so that jobs run side by side as they do in production; and the outbox
    relay beside it, as a deployment runs it (retries fall due from the ledger through it)."""
    stop = threading.Event()

    def relay_twice_a_second() -> None:
        while not stop.wait(0.5):
            try:
                relay.relay()
            except Exception:  # the test's database or broker going away between tests
                logging.getLogger(__name__).warning("test relay: next round", exc_info=True)
            finally:
                close_old_connections()

    relay_thread = threading.Thread(target=relay_twice_a_second, name="test-relay")
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=4,
        queues=list(settings.QUEUES),
        perform_ping_check=False,
        shutdown_timeout=30,
    ) as worker:
        relay_thread.start()
        try:
            yield worker
        finally:
            stop.set()
            relay_thread.join()
    # Celery's testing worker stops with a cold shutdown, which leaves the pool's running jobs
    # running: wait for them, or the test's database is flushed under them (on PostgreSQL the
    # flush's TRUNCATE and a job's transaction deadlocked).
    assert isinstance(worker.pool, ThreadTaskPool)
    worker.pool.executor.shutdown(wait=True, cancel_futures=True)
    # The pool's threads have ended, but their database connections wait for the garbage
    # collector: on PostgreSQL a suite's worth of them used up max_connections (100).
    gc.collect()


@pytest.fixture
def celery_worker(transactional_db, live_server, mailbox, empty_queues):
    """A running worker (`running_worker`); the sandboxes answer from pytest-django's live
    server, over real HTTP."""
    with running_worker() as worker:
        yield worker


@pytest.fixture(scope="session", autouse=True)
def _close_other_sessions_before_teardown(django_db_setup, django_db_blocker):
    """Let pytest-django drop the PostgreSQL test database at the end.

    Threads of the in-process worker keep their database connection until the thread is
    collected, and PostgreSQL refuses to drop a database that has sessions.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
