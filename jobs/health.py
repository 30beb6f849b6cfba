"""Is the database reachable, does the broker answer, how many workers are alive: each answered
within a second, whatever the broker does (a frozen broker never answers at all)."""

from django.db import connection

from jobs import broker, heartbeat


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return False
    return True


def broker_ok() -> bool:
    return broker.answers()


def workers_online() -> int:
    """From the workers' heartbeats in the database, not a ping through the broker."""
    try:
        return heartbeat.workers_online()
    except Exception:
        return 0
