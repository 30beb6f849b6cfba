"""How the API shows a job, and the error shapes of the operations API.

The project's API answers errors as `{"errors": {field: [messages]}}` for invalid fields and
`{"detail": "..."}` otherwise (docs/api.md, "Errors"); the shop's API uses these components
too, so that each shape is one component of the schema.
"""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

from jobs.models import Job

_DATETIME = serializers.DateTimeField()


class StrictCharField(serializers.CharField):
    """A JSON string, as the schema says; DRF would turn `"name": 0` into the name "0"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


def _datetime(value: Any) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


class JobProgressOut(serializers.Serializer[dict[str, int]]):
    done = serializers.IntegerField(min_value=0)
    total = serializers.IntegerField(min_value=0)


def shows_errors(context: dict[str, Any]) -> bool:
    """Whether the caller may read a job's error: staff only. An error's text is technical
    and may name internal hosts ("PUT http://…/deals/order-3 answered 503"); a customer gets
    the job's state and its outcome_reason, which is business text. Without a request in the
    serializer's context, nothing is shown: a view that forgets it leaks nothing."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return bool(getattr(user, "is_staff", False))


class JobOut(serializers.Serializer[Job]):
    """A job of the ledger: every field is always present."""

    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(max_length=100)
    queue = serializers.CharField(max_length=50)
    state = serializers.ChoiceField(choices=Job.State.choices)
    attempts = serializers.IntegerField(min_value=0, max_value=2**63 - 1)
    eta = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(
        allow_blank=True,
        help_text="The last failure's technical text, for staff; always blank for customers.",
    )
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    # Why it ended as it did when that is not a run's success or failure: an operator's
    # cancel, or its run's skip or decline. Blank otherwise.
    outcome_reason = serializers.CharField(
        allow_blank=True,
        help_text='Why it ended cancelled, skipped or declined, in business words ("card '
        'declined: over the limit", "the order was not paid"); blank otherwise.',
    )
    progress = JobProgressOut(
        allow_null=True, help_text="How far a long job has come; null until it reports."
    )

    def to_representation(self, job: Job) -> dict[str, Any]:
        # Written out: an order's answer carries five jobs, and DRF's walk through the fields
        # of each cost more than the order's own queries (docs/performance.md). The fields
        # above still describe it for the schema; a test holds the two together.
        return {
            "id": str(job.id),
            "name": job.name,
            "queue": job.queue,
            "state": job.state,
            "attempts": job.attempts,
            "eta": _datetime(job.eta),
            "last_error": job.last_error if shows_errors(self.context) else "",
            "created_at": _datetime(job.created_at),
            "finished_at": _datetime(job.finished_at),
            "outcome_reason": job.outcome_reason,
            "progress": job.progress,
        }


class FieldErrorsOut(serializers.Serializer[dict[str, Any]]):
    # A field named like the serializer's own `errors` property: DRF collects declared fields
    # away from the class, so the property still works; the type checker cannot know that.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField())
    )


class DetailOut(serializers.Serializer[dict[str, Any]]):
    detail = serializers.CharField()


FIELD_ERRORS = OpenApiResponse(FieldErrorsOut, description="Invalid fields; nothing written.")
# A field error, or {"detail"} when there are no fields to blame. One component for both uses
# below (its name is the 400's, which came first): a generated client has one type for it.
FIELD_ERRORS_OR_DETAIL = PolymorphicProxySerializer(
    component_name="BadRequestOut",
    serializers=[FieldErrorsOut, DetailOut],
    resource_type_field_name=None,
)
# A 400: invalid fields, or a body that is not JSON at all, a bad header.
BAD_REQUEST = OpenApiResponse(
    FIELD_ERRORS_OR_DETAIL,
    description="Invalid fields, or a body that cannot be read; nothing written.",
)
# Signup's 413: its avatar over the avatar's limit (a field error), or the whole body over the
# request's (`{"detail"}`).
TOO_LARGE = OpenApiResponse(
    FIELD_ERRORS_OR_DETAIL,
    description="A file, or the whole body, over its size limit; nothing written.",
)
DETAIL = OpenApiResponse(DetailOut)
# Credentials are checked against a throttle: too many bad ones from one address, and every
# credential from there is refused for a while.
BAD_CREDENTIALS_THROTTLED = OpenApiResponse(
    DetailOut,
    description="Too many invalid credentials from this address: wait the seconds of the "
    "Retry-After header.",
)
