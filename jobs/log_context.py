"""The request id, from the web request into every job it caused, on every log line.

The web side takes the caller's X-Request-ID (or makes one) and keeps it in a context
variable; `enqueue` stores it on the job and sends it as a message header; the worker puts it
back into the context variable for the run. A logging filter adds `request_id` and `job_id`
to every record, so `LOG_FORMAT=json` lines of a signup and of its welcome email share an id.
"""

import logging
import re
from contextvars import ContextVar
from typing import Any

from celery.signals import task_postrun, task_prerun

request_id: ContextVar[str] = ContextVar("request_id", default="")
job_id: ContextVar[str] = ContextVar("job_id", default="")

# What a caller may pass as X-Request-ID: a short token of safe characters, nothing else.
ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HEADER = "request_id"


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        record.job_id = job_id.get() or "-"
        return True


@task_prerun.connect
def _enter_job(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    task.request.log_tokens = (
        request_id.set(getattr(task.request, HEADER, None) or ""),
        job_id.set(task_id or ""),
    )


@task_postrun.connect
def _leave_job(task: Any = None, **kwargs: Any) -> None:
    tokens = getattr(task.request, "log_tokens", None)
    if tokens:
        request_id.reset(tokens[0])
        job_id.reset(tokens[1])
