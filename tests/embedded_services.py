"""Real services for the test session (loaded with `-p tests.embedded_services`).

Imported by pytest before Django reads its settings, so the addresses chosen here are the
ones every part of the app sees, including subprocess workers, which inherit the environment:

- the broker: an embedded Valkey server on a free port, unless CELERY_BROKER_URL or REDIS_URL
  points the suite at a running one (CI does, for the machine's Redis);
- the sandbox SMTP server's port (started by the `mail_server` fixture) and its mailbox;
- the port of pytest-django's live server, which serves the sandbox third parties;
- a temporary MEDIA_ROOT, PRIVATE_MEDIA_ROOT, EXPORTS_ROOT and SQLite test database;
- throttling off (every client is 127.0.0.1; tests/shop/test_throttling.py turns it on).
"""

import os
import tempfile
from pathlib import Path

import pytest

from stack.waiting import free_port

_scratch = Path(tempfile.mkdtemp(prefix="shop-jobs-tests-"))
_embedded_broker_wanted = not (os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL"))
_broker_port = free_port()
LIVE_SERVER_PORT = free_port()

os.environ.setdefault("MEDIA_ROOT", str(_scratch / "media"))
os.environ.setdefault("PRIVATE_MEDIA_ROOT", str(_scratch / "private"))
os.environ.setdefault("EXPORTS_ROOT", str(_scratch / "exports"))
# Two runs at once (a developer's and an agent's, say) must not share one SQLite test file.
os.environ.setdefault("SQLITE_TEST_DATABASE", str(_scratch / "test.sqlite3"))
os.environ.setdefault("SANDBOX_MAILDIR", str(_scratch / "mailbox"))
os.environ.setdefault("THROTTLING_ENABLED", "false")
os.environ["EMAIL_URL"] = f"smtp://127.0.0.1:{free_port()}"
os.environ["SANDBOX_BASE_URL"] = f"http://127.0.0.1:{LIVE_SERVER_PORT}/sandbox"
os.environ["SITE_URL"] = f"http://127.0.0.1:{LIVE_SERVER_PORT}"
if _embedded_broker_wanted:
    os.environ["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{_broker_port}/0"

_broker = None


def pytest_configure(config: pytest.Config) -> None:
    global _broker
    config.option.liveserver = f"127.0.0.1:{LIVE_SERVER_PORT}"
    if _embedded_broker_wanted and _broker is None:
        from jobs import embedded_broker

        _broker = embedded_broker.start(port=_broker_port, data_dir=None, durable=False)


def pytest_report_header(config: pytest.Config) -> str:
    where = "embedded Valkey" if _embedded_broker_wanted else "from the environment"
    return f"broker: {os.environ.get('CELERY_BROKER_URL') or os.environ.get('REDIS_URL')} ({where})"


def pytest_unconfigure(config: pytest.Config) -> None:
    global _broker
    if _broker is not None:
        _broker.stop()
        _broker = None
