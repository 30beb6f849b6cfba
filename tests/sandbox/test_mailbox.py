"""The sandbox mailbox's delivery (sandbox.mailbox), as its SMTP server calls it: one thread per
message, so the first messages to a new mailbox arrive together."""

import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from sandbox.mailbox import _deliver, messages


def raw_message(n: int, *, date: str | None = "now") -> bytes:
    message = EmailMessage()
    if date == "now":
        message["Date"] = format_datetime(datetime.now(tz=UTC))
    elif date is not None:
        message["Date"] = date
    message["From"] = "shop@example.com"
    message["To"] = f"customer{n}@example.com"
    message["Subject"] = f"Order {n} confirmed"
    message["Message-ID"] = f"<order-{n}@example.com>"
    message.set_content(f"Order {n}")
    return message.as_bytes()


def test_a_message_is_delivered_into_a_mailbox_folder_another_delivery_is_still_making(
    tmp_path: Path,
):
    # What a delivery that runs at the same time leaves for a moment: the mailbox's folder is
    # there (made by the stdlib's Maildir, or by the duplicate markers' folder), its tmp/,
    # new/ and cur/ not yet. (Seen in the benchmarks: "sandbox SMTP could not take a
    # message", FileNotFoundError on .../mailbox/tmp/..., and an email job retried.)
    mailbox = tmp_path / "mailbox"
    (mailbox / ".message-ids").mkdir(parents=True)

    _deliver(mailbox, raw_message(1))

    assert [m.subject for m in messages(mailbox)] == ["Order 1 confirmed"]


def test_the_first_messages_to_a_new_mailbox_arriving_together_are_all_delivered(
    tmp_path: Path,
):
    for round_ in range(20):
        mailbox = tmp_path / f"mailbox{round_}"
        start = threading.Barrier(8)
        failures: list[BaseException] = []

        def deliver(
            n: int,
            mailbox: Path = mailbox,
            start: threading.Barrier = start,
            failures: list[BaseException] = failures,
        ) -> None:
            start.wait()
            try:
                _deliver(mailbox, raw_message(n))
            except BaseException as exc:  # reported by the assert below
                failures.append(exc)

        threads = [threading.Thread(target=deliver, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert len(messages(mailbox)) == 8


def test_the_mailbox_lists_messages_without_a_date_or_with_a_date_of_no_zone(
    tmp_path: Path, monkeypatch
):
    # "-0000" is a time in UTC whose sender's zone is unknown (RFC 5322): read as UTC, not
    # as this machine's local time, here a zone 9 hours ahead (POSIX: "JST-9").
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    try:
        mailbox = tmp_path / "mailbox"
        _deliver(mailbox, raw_message(1, date="Mon, 07 Dec 2026 07:00:00 +0100"))  # 06:00 UTC
        _deliver(mailbox, raw_message(2, date=None))
        _deliver(mailbox, raw_message(3, date="Mon, 07 Dec 2026 06:30:00 -0000"))
        listed = [m.subject for m in messages(mailbox)]
    finally:
        monkeypatch.undo()
        time.tzset()

    assert listed == [
        "Order 3 confirmed",
        "Order 1 confirmed",
        "Order 2 confirmed",
    ]
