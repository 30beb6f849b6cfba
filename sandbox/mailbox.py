"""The sandbox SMTP server and the mailbox it fills (a Maildir under var/)."""

import asyncio
import email
import email.policy
import hashlib
import logging
import mailbox as stdlib_mailbox
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    key: str
    sender: str
    to: str
    subject: str
    date: datetime | None
    body: str


def _maildir(path: Path | None = None) -> stdlib_mailbox.Maildir:
    folder = Path(path or settings.SANDBOX_MAILDIR)
    # Not Maildir(create=True): it makes tmp/, new/ and cur/ only if the folder itself is not
    # there yet, so a delivery running beside the one that made the folder found no tmp/ and
    # failed (the SMTP server delivers each message in a thread of its own).
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(mode=0o700, parents=True, exist_ok=True)  # the stdlib's mode
    return stdlib_mailbox.Maildir(folder, create=False)


def messages(path: Path | None = None) -> list[Message]:
    """Every message in the mailbox, newest first."""
    found = []
    for key, raw in _maildir(path).iteritems():
        parsed = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain", "html"))
        found.append(
            Message(
                key=key,
                sender=str(parsed["From"] or ""),
                to=str(parsed["To"] or ""),
                subject=str(parsed["Subject"] or ""),
                date=parsedate_to_datetime(parsed["Date"]) if parsed["Date"] else None,
                body=body.get_content() if body else "",
            )
        )
    return sorted(found, key=_sent_at, reverse=True)


def _sent_at(message: Message) -> float:
    """When the message says it was sent, for sorting; one without a Date header last. A
    Date of "-0000" (UTC, the sender's zone unknown: RFC 5322) parses as a naive datetime,
    which is UTC, not this machine's local time."""
    if message.date is None:
        return float("-inf")
    date = message.date if message.date.tzinfo else message.date.replace(tzinfo=UTC)
    return date.timestamp()


def _seen_before(path: Path, raw: bytes) -> bool:
    """Remember the message's Message-ID; True if a message with it was delivered already.

    Creating a marker file with O_EXCL is atomic, so two deliveries at once cannot both
    pass. A repeat is kept under .duplicates/, where the mailbox page counts it.
    """
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    message_id = str(parsed["Message-ID"] or "").strip()
    if not message_id:
        return False
    markers = Path(path) / ".message-ids"
    markers.mkdir(parents=True, exist_ok=True)
    marker = markers / hashlib.sha256(message_id.encode()).hexdigest()
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        duplicates = Path(path) / ".duplicates"
        duplicates.mkdir(exist_ok=True)
        (duplicates / f"{marker.name}-{time.time_ns()}").write_bytes(raw)
        return True
    return False


def _deliver(path: Path, raw: bytes) -> None:
    box = _maildir(path)  # first: it creates the Maildir's folders
    if _seen_before(path, raw):
        return
    try:
        box.add(raw)
    except BaseException:
        _forget(path, raw)  # not delivered: the client's retry must not count as a repeat
        raise


def _forget(path: Path, raw: bytes) -> None:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    message_id = str(parsed["Message-ID"] or "").strip()
    marker = Path(path) / ".message-ids" / hashlib.sha256(message_id.encode()).hexdigest()
    marker.unlink(missing_ok=True)


def duplicates_suppressed(path: Path | None = None) -> int:
    duplicates = Path(path or settings.SANDBOX_MAILDIR) / ".duplicates"
    return sum(1 for _ in duplicates.iterdir()) if duplicates.exists() else 0


def _smtp_latency_and_failure() -> tuple[float, bool]:
    from sandbox.switches import latency_and_failure

    # An executor thread that lives on: start from a fresh connection (the database may have
    # gone away since the last message) and don't leave it open.
    close_old_connections()
    try:
        return latency_and_failure("smtp")
    finally:
        connections.close_all()


class MaildirHandler:
    """aiosmtpd handler: accept each message into the Maildir, or refuse it when the sandbox's
    `smtp` switch says so (451, which clients treat as try-again-later). A message whose
    Message-ID was delivered before is accepted and not shown again, as mail clients do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook name
        try:
            latency, fail = await asyncio.to_thread(_smtp_latency_and_failure)
            # Waited here, not in the thread: the executor's few threads would otherwise
            # limit the server to a few messages per latency period.
            await asyncio.sleep(latency)
            if fail:
                return "451 4.3.0 sandbox SMTP is failing on purpose"
            await asyncio.to_thread(_deliver, self.path, envelope.original_content)
        except Exception as exc:
            # Trouble on our side is temporary, as a real mail server would say: 4xx, not 5xx.
            logger.exception("sandbox SMTP could not take a message")
            return f"451 4.3.0 sandbox SMTP error, try again later ({type(exc).__name__})"
        return "250 OK"
