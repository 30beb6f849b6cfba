"""Is the database reachable, does the broker answer, how many workers reply."""

from celery import current_app
from django.db import connection

WORKER_PING_TIMEOUT_SECONDS = 0.3


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return False
    return True


def broker_ok() -> bool:
    try:
        with current_app.connection_for_write() as conn:
            conn.connect()
    except Exception:
        return False
    return True


def workers_online() -> int:
    try:
        return len(current_app.control.ping(timeout=WORKER_PING_TIMEOUT_SECONDS) or [])
    except Exception:
        return 0
