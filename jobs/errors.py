"""The two kinds of failure the retry policy tells apart."""


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
