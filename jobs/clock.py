"""The one clock: the database's.

Workers, relays and beats run on hosts whose clocks drift apart; a lease written by one host's
clock and compared by another's would be stolen from a live run by a host whose clock is
ahead, or left to sit after its run died by one whose clock is behind. So every time that a
lease, a due time or a lag is written or compared against is the database's: `DbNow(seconds)`
is "the database's now, plus seconds" as an SQL expression, so that the comparison happens in
the statement that needs it, with no extra round trip; `db_now()` asks for it where Python
needs the value itself.

SQLite keeps a datetime as text, 'YYYY-MM-DD HH:MM:SS.ffffff' as Django writes it (without the
fraction when it is zero). Django's own Now() gives three digits there; DbNow gives Django's
form exactly, so that a value it wrote compares equal, and in order, with one Django wrote.
"""

from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.models import DateTimeField, Expression
from django.utils import timezone
from django.utils.dateparse import parse_datetime

# SQLite's 'now' is fixed for the whole statement; milliseconds padded to microseconds, and
# the fraction dropped when it is zero, as Django's str(datetime) does.
_SQLITE = "REPLACE(STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'now', %s) || '000', '.000000', '')"


class DbNow(Expression):
    """The database's clock now, plus `seconds` (negative: ago), as a datetime expression."""

    output_field = DateTimeField()

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__(output_field=DateTimeField())
        self.seconds = float(seconds)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        # STATEMENT_TIMESTAMP(), not now(): not the start of a long transaction.
        return "(STATEMENT_TIMESTAMP() + %s * INTERVAL '1 second')", [self.seconds]

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return _SQLITE, [f"{self.seconds:+.6f} seconds"]

    def __repr__(self) -> str:
        return f"DbNow({self.seconds})"


def sql(seconds: float = 0.0) -> tuple[str, list[Any]]:
    """DbNow's SQL and parameters, for a statement written by hand (jobs.ledger's claim)."""
    if connection.vendor == "sqlite":
        return _SQLITE, [f"{float(seconds):+.6f} seconds"]
    return "(STATEMENT_TIMESTAMP() + %s * INTERVAL '1 second')", [float(seconds)]


def from_db(value: datetime | str | None) -> datetime | None:
    """A datetime read by plain SQL: SQLite gives text in UTC, PostgreSQL an aware datetime."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def db_now() -> datetime:
    """The database's clock now (one round trip: where Python needs the value itself)."""
    text, params = sql()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {text}", params)
        value = from_db(cursor.fetchone()[0])
    assert value is not None
    return value
