"""The two kinds of failure the retry policy tells apart, the two ends a job's body may choose
that are not failures (Skip, Decline), and the end an operator asks of a running job
(CancelRequested)."""


class TransientError(Exception):
    """Worth trying again later: a timeout, a refused connection, a 5xx, a 429.

    `retry_after` (seconds) is the third party's own hint, from a Retry-After header; the
    backoff never waits less than it.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Trying again cannot help: a 4xx, an image that is not an image, a record that is gone."""


class Ended(Exception):
    """Raised by a job's body to end its job for good in a state of its own, with a reason the
    ledger keeps (Job.outcome_reason): no retry, no dead letter. Use the ones below."""

    state = ""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Skip(Ended):
    """The work no longer applies (the order it was for was cancelled): the job is `skipped`."""

    state = "skipped"


class Decline(Ended):
    """A business "no" that is the answer, not an error (the card was declined): the job is
    `declined`, and whoever watches it sees that, not "succeeded"."""

    state = "declined"


class CancelRequested(Ended):
    """Raised by `LedgerTask.report_progress` in the run of a job declared
    `cancellable_while_running` once an operator asked it to stop: the job ends `cancelled`
    with the operator's reason. A body may catch it to clean up (a partial file), then must
    raise it again."""

    state = "cancelled"
