"""The operations API (`/api/ops/`, docs/api.md): staff only, by session or bearer token."""

from dataclasses import asdict
from typing import Any, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from jobs import operations
from jobs.models import DeadLetter
from jobs.serializers import BAD_CREDENTIALS_THROTTLED, BAD_REQUEST, DetailOut, JobOut


class QueueOut(serializers.Serializer[Any]):
    queue = serializers.CharField()
    depth = serializers.IntegerField(allow_null=True)
    oldest_age_s = serializers.FloatField(allow_null=True)


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


class DeadLettersOut(serializers.Serializer[Any]):
    dead_letters = DeadLetterOut(many=True)


class ReasonIn(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)


class RequeueIn(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class RequeuedOut(serializers.Serializer[Any]):
    job = JobOut()


def json_parsers() -> list[type[BaseParser]]:
    """The project's JSON parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES), without the
    multipart one beside it. (The stubs type the setting as the dotted names settings.py holds;
    DRF has imported them.)"""
    parsers = cast(list[type[BaseParser]], api_settings.DEFAULT_PARSER_CLASSES)
    return [parser for parser in parsers if parser.media_type == "application/json"]


class StaffAPIView(APIView):
    permission_classes = [permissions.IsAdminUser]
    # JSON bodies only (docs/api.md): the schema then lists one content type per body, and a
    # generated client gets one way to send it.
    parser_classes = json_parsers()


NOT_OPEN = OpenApiResponse(DetailOut, description="The dead letter is not open any more.")
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
        return Response(DeadLettersOut({"dead_letters": letters[:500]}).data)


class DeadLetterActionView(StaffAPIView):
    """POST to one dead letter: validate the body, act, or 409 if someone acted first."""

    body: type[serializers.Serializer[Any]] = serializers.Serializer

    def post(self, request: Request, letter_id: int) -> Response:
        letter = get_object_or_404(DeadLetter, pk=letter_id)
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
        return Response(RequeuedOut({"job": job}).data)


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
