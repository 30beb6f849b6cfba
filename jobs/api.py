"""The operations API (`/api/ops/`, docs/api.md): staff only, by session or bearer token."""

from dataclasses import asdict
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from jobs import operations
from jobs.models import DeadLetter, Job
from jobs.serializers import (
    BAD_CREDENTIALS_THROTTLED,
    BAD_REQUEST,
    DetailOut,
    JobOut,
    StrictCharField,
)


class QueueOut(serializers.Serializer[Any]):
    queue = serializers.CharField()
    depth = serializers.IntegerField(allow_null=True)
    oldest_age_s = serializers.FloatField(allow_null=True)
    paused = serializers.BooleanField(help_text="Workers take none of its messages.")
    paused_at = serializers.DateTimeField(allow_null=True)
    pause_reason = serializers.CharField(allow_blank=True)


class StatsOut(serializers.Serializer[Any]):
    queues = QueueOut(many=True)
    jobs = serializers.DictField(child=serializers.IntegerField())
    dead_letters_open = serializers.IntegerField()
    finished_last_minute = serializers.IntegerField()
    failed_last_minute = serializers.IntegerField()
    workers = serializers.IntegerField()
    stalled = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Jobs waiting to be taken up again, by why: worker_lost, message_lost, "
        "handed_back.",
    )


class DeadLetterOut(serializers.ModelSerializer[DeadLetter]):
    job = JobOut()

    class Meta:
        model = DeadLetter
        fields = ["id", "job", "error", "attempts", "failed_at", "status"]
        # Always in the answer: the model's default would make it optional in the schema.
        extra_kwargs = {"status": {"required": True}}


class DeadLettersOut(serializers.Serializer[Any]):
    dead_letters = DeadLetterOut(many=True)


class ReasonIn(serializers.Serializer[Any]):
    reason = StrictCharField(max_length=2000)


class RequeueIn(serializers.Serializer[Any]):
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True)


class RequeuedOut(serializers.Serializer[Any]):
    job = JobOut()


def json_parsers() -> list[type[BaseParser]]:
    """The project's JSON parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES), without the
    multipart one beside it. (The stubs type the setting as the dotted names settings.py holds;
    DRF has imported them.)"""
    parsers = cast(list[type[BaseParser]], api_settings.DEFAULT_PARSER_CLASSES)
    return [parser for parser in parsers if parser.media_type == "application/json"]


class PauseIn(serializers.Serializer[Any]):
    reason = StrictCharField(max_length=2000, help_text="Why: for the audit.")


class PausedOut(serializers.Serializer[Any]):
    queue = serializers.CharField()
    paused = serializers.BooleanField()


class CancelIn(serializers.Serializer[Any]):
    reason = StrictCharField(
        max_length=2000, help_text="Why: for the audit, and kept on the job (outcome_reason)."
    )


class CancelledOut(serializers.Serializer[Any]):
    job = JobOut()
    outcome_reason = serializers.CharField()
    stopping = serializers.BooleanField(
        help_text="True (with 202): the job was running and is declared cancellable while "
        "running; it stops at its next progress report and ends `cancelled` with this reason."
    )


class LetterFilterIn(serializers.Serializer[Any]):
    job_name = StrictCharField(
        max_length=100, required=False, allow_blank=True, help_text="The job's name, exactly."
    )
    error_contains = StrictCharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="Text the letter's error contains (any case).",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not (data.get("job_name", "").strip() or data.get("error_contains", "").strip()):
            raise serializers.ValidationError(
                {"job_name": ["Give a job name or an error text: a filter names what to act on."]}
            )
        return data


class RequeueMatchingIn(LetterFilterIn):
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True)


class DiscardMatchingIn(LetterFilterIn):
    reason = StrictCharField(max_length=2000, help_text="Why: for the audit.")


class ActedOnOut(serializers.Serializer[Any]):
    acted_on = serializers.IntegerField(help_text="Open dead letters requeued or discarded.")
    left = serializers.IntegerField(
        help_text=f"Open dead letters that still match: a call acts on at most "
        f"{operations.MATCHING_AT_A_TIME}, the longest failed first; call again for these."
    )


class StaffAPIView(APIView):
    permission_classes = [permissions.IsAdminUser]
    # JSON bodies only (docs/api.md): the schema then lists one content type per body, and a
    # generated client gets one way to send it.
    parser_classes = json_parsers()


NOT_OPEN = OpenApiResponse(DetailOut, description="The dead letter is not open any more.")
UNKNOWN_QUEUE = OpenApiResponse(DetailOut, description="No queue of that name.")
# Every operation here answers 401 without credentials, 403 to non-staff, and 429 to an
# address that sent too many bad ones.
STAFF_ONLY = {
    401: OpenApiResponse(DetailOut, description="No or bad credentials."),
    403: OpenApiResponse(DetailOut, description="Not a staff account."),
    429: BAD_CREDENTIALS_THROTTLED,
}


class StatsView(StaffAPIView):
    @extend_schema(
        operation_id="get_ops_stats",
        responses={200: StatsOut, **STAFF_ONLY},
        summary="Queues, lag, throughput, dead letters.",
    )
    def get(self, request: Request) -> Response:
        return Response(StatsOut(asdict(operations.stats())).data)


class DeadLettersView(StaffAPIView):
    @extend_schema(
        operation_id="list_dead_letters",
        responses={200: DeadLettersOut, **STAFF_ONLY},
        summary="Open dead letters, newest first.",
    )
    def get(self, request: Request) -> Response:
        letters = DeadLetter.objects.filter(status=DeadLetter.Status.OPEN).select_related("job")
        return Response(
            DeadLettersOut({"dead_letters": letters[:500]}, context={"request": request}).data
        )


class DeadLetterActionView(StaffAPIView):
    """POST to one dead letter: validate the body, act, or 409 if someone acted first."""

    body: type[serializers.Serializer[Any]] = serializers.Serializer

    def post(self, request: Request, letter_id: int) -> Response:
        # Said in the API's words, not get_object_or_404's (which names the model).
        letter = DeadLetter.objects.filter(pk=letter_id).first()
        if letter is None:
            raise Http404("No such dead letter.")
        form = self.body(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            return self.act(letter, operations.operator(request.user), form.validated_data)
        except operations.NotOpen as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)

    def act(self, letter: DeadLetter, user: AbstractBaseUser, data: dict[str, Any]) -> Response:
        raise NotImplementedError


@extend_schema_view(
    post=extend_schema(
        operation_id="requeue_dead_letter",
        request=RequeueIn,
        responses={200: RequeuedOut, 400: BAD_REQUEST, 404: DetailOut, 409: NOT_OPEN, **STAFF_ONLY},
        summary="Run the dead job again (same id, same idempotency keys).",
    )
)
class RequeueView(DeadLetterActionView):
    body = RequeueIn

    def act(self, letter: DeadLetter, user: AbstractBaseUser, data: dict[str, Any]) -> Response:
        job = operations.requeue(letter, by=user, reason=data.get("reason", ""))
        return Response(RequeuedOut({"job": job}, context={"request": self.request}).data)


@extend_schema_view(
    post=extend_schema(
        operation_id="discard_dead_letter",
        request=ReasonIn,
        responses={204: None, 400: BAD_REQUEST, 404: DetailOut, 409: NOT_OPEN, **STAFF_ONLY},
        summary="Close the dead letter for good, with a reason.",
    )
)
class DiscardView(DeadLetterActionView):
    body = ReasonIn

    def act(self, letter: DeadLetter, user: AbstractBaseUser, data: dict[str, Any]) -> Response:
        operations.discard(letter, by=user, reason=data["reason"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class QueueActionView(StaffAPIView):
    """POST to a queue by name: 404 if there is none, 409 if it is paused (or not) already."""

    body: type[serializers.Serializer[Any]] = serializers.Serializer
    pauses = True  # what the answer says the queue is after the action

    def post(self, request: Request, queue: str) -> Response:
        if queue not in settings.QUEUES:
            raise Http404(f"There is no queue {queue!r}.")
        form = self.body(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            self.act(queue, operations.operator(request.user), form.validated_data)
        except operations.Conflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(PausedOut({"queue": queue, "paused": self.pauses}).data)

    def act(self, queue: str, user: AbstractBaseUser, data: dict[str, Any]) -> None:
        raise NotImplementedError


@extend_schema_view(
    post=extend_schema(
        operation_id="pause_queue",
        request=PauseIn,
        responses={
            200: PausedOut,
            400: BAD_REQUEST,
            404: UNKNOWN_QUEUE,
            409: OpenApiResponse(DetailOut, description="Paused already: since when, by whom."),
            **STAFF_ONLY,
        },
        summary="Pause a queue: workers take none of its messages until it is resumed.",
    )
)
class PauseQueueView(QueueActionView):
    body = PauseIn

    def act(self, queue: str, user: AbstractBaseUser, data: dict[str, Any]) -> None:
        operations.pause(queue, by=user, reason=data["reason"])


@extend_schema_view(
    post=extend_schema(
        operation_id="resume_queue",
        request=RequeueIn,
        responses={
            200: PausedOut,
            400: BAD_REQUEST,
            404: UNKNOWN_QUEUE,
            409: OpenApiResponse(DetailOut, description="The queue is not paused."),
            **STAFF_ONLY,
        },
        summary="Resume a paused queue.",
    )
)
class ResumeQueueView(QueueActionView):
    body = RequeueIn
    pauses = False

    def act(self, queue: str, user: AbstractBaseUser, data: dict[str, Any]) -> None:
        operations.resume(queue, by=user, reason=data.get("reason", ""))


class CancelJobView(StaffAPIView):
    @extend_schema(
        operation_id="cancel_job",
        request=CancelIn,
        responses={
            200: CancelledOut,
            202: OpenApiResponse(
                CancelledOut,
                description="Asked to stop: a running job that can stop when asked (an "
                "export) ends `cancelled` at its next progress report.",
            ),
            400: BAD_REQUEST,
            404: DetailOut,
            409: OpenApiResponse(
                DetailOut,
                description="Not cancellable: running (and not a job that can stop when "
                "asked), asked to stop already, or ended already (says which).",
            ),
            **STAFF_ONLY,
        },
        summary="Cancel a scheduled, queued or retrying job; it never runs (again). A running "
        "job that can stop when asked is asked to stop.",
    )
    def post(self, request: Request, job_id: str) -> Response:
        form = CancelIn(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            # cancel() reads the job after its conditional UPDATE: no lookup before it.
            job = operations.cancel(
                str(job_id),
                by=operations.operator(request.user),
                reason=form.validated_data["reason"],
            )
        except Job.DoesNotExist as exc:
            raise Http404("No such job.") from exc
        except operations.Conflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        reason = form.validated_data["reason"].strip()
        body = CancelledOut(
            {"job": job, "outcome_reason": reason, "stopping": job.stopping},
            context={"request": request},
        ).data
        return Response(body, status=status.HTTP_202_ACCEPTED if job.stopping else 200)


class MatchingLettersView(StaffAPIView):
    body: type[LetterFilterIn] = LetterFilterIn

    def post(self, request: Request) -> Response:
        form = self.body(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        acted = self.act(
            job_name=data.get("job_name", "").strip(),
            error_contains=data.get("error_contains", "").strip(),
            by=operations.operator(request.user),
            reason=data.get("reason", ""),
        )
        return Response(ActedOnOut({"acted_on": acted.done, "left": acted.left}).data)

    def act(
        self, *, job_name: str, error_contains: str, by: AbstractBaseUser, reason: str
    ) -> operations.ActedOn:
        raise NotImplementedError


@extend_schema_view(
    post=extend_schema(
        request=RequeueMatchingIn,
        responses={200: ActedOnOut, 400: BAD_REQUEST, **STAFF_ONLY},
        operation_id="requeue_matching_dead_letters",
        summary="Requeue the open dead letters matching the filter, 500 at a time, each audited.",
    )
)
class RequeueMatchingView(MatchingLettersView):
    body = RequeueMatchingIn

    def act(
        self, *, job_name: str, error_contains: str, by: AbstractBaseUser, reason: str
    ) -> operations.ActedOn:
        return operations.requeue_matching(
            job_name=job_name, error_contains=error_contains, by=by, reason=reason
        )


@extend_schema_view(
    post=extend_schema(
        request=DiscardMatchingIn,
        responses={200: ActedOnOut, 400: BAD_REQUEST, **STAFF_ONLY},
        operation_id="discard_matching_dead_letters",
        summary="Discard the open dead letters matching the filter, 500 at a time, with a "
        "reason, each audited.",
    )
)
class DiscardMatchingView(MatchingLettersView):
    body = DiscardMatchingIn

    def act(
        self, *, job_name: str, error_contains: str, by: AbstractBaseUser, reason: str
    ) -> operations.ActedOn:
        return operations.discard_matching(
            job_name=job_name, error_contains=error_contains, by=by, reason=reason
        )
