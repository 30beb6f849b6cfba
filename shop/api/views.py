"""The public JSON API (docs/api.md). Views validate, call one service, and shape the answer."""

import threading
from typing import Any, NoReturn

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework import permissions, status
from rest_framework.exceptions import NotAuthenticated, PermissionDenied, Throttled
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import health
from jobs.api import STAFF_ONLY
from jobs.operations import operator
from jobs.serializers import (
    BAD_CREDENTIALS_THROTTLED,
    BAD_REQUEST,
    DETAIL,
    FIELD_ERRORS,
    TOO_LARGE,
    DetailOut,
)
from shop import invoices, selectors, services
from shop.api import serializers as s
from shop.api.parsers import JSONParser
from shop.models import IDEMPOTENCY_KEY_MAX_LENGTH, Customer, Order
from shop.throttling import SignupThrottle


def field_errors(errors: dict, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"errors": errors}, status=code)


class SignupView(APIView):
    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [SignupThrottle]

    @extend_schema(
        operation_id="signup",
        request={
            "application/json": s.SignupInput,
            "multipart/form-data": s.SignupWithAvatarInput,
        },
        responses={
            201: s.SignupOut,
            400: BAD_REQUEST,
            409: FIELD_ERRORS,
            413: TOO_LARGE,
            429: OpenApiResponse(
                DetailOut,
                description="Too many signups from this address: wait the seconds of the "
                "Retry-After header.",
            ),
        },
        examples=[
            OpenApiExample(
                "Ada",
                value={
                    "email": "ada@example.com",
                    "name": "Ada",
                    "password": "analytical-engine-1843",
                },
                request_only=True,
                media_type="application/json",
            )
        ],
        summary="Create a customer; its welcome email and other jobs run in the background.",
    )
    def post(self, request: Request) -> Response:
        # (A body far over the limit never gets here: shop.middleware refuses it unread.)
        upload = request.FILES.get("avatar")
        if upload is not None and upload.size > settings.AVATAR_MAX_BYTES:
            return self._too_large()
        form = s.SignupWithAvatarInput(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            result = services.sign_up(**form.validated_data)
        except services.EmailAlreadyRegistered:
            return field_errors(
                {"email": ["This email is already registered."]}, status.HTTP_409_CONFLICT
            )
        body = s.SignupOut(
            {"customer": result.customer, "token": result.token, "jobs": result.jobs},
            context={"request": request},
        ).data
        return Response(body, status=status.HTTP_201_CREATED)

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        raise Throttled(wait, detail=SignupThrottle.message)

    def _too_large(self) -> Response:
        limit_mb = settings.AVATAR_MAX_BYTES // (1024 * 1024)
        return field_errors(
            {"avatar": [f"The avatar is larger than {limit_mb} MB."]},
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )


class ProductsView(APIView):
    # The catalogue is public: a stale or wrong token must not turn it into a 401 (docs/api.md
    # says 200).
    authentication_classes = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="list_products", responses={200: s.ProductsOut}, summary="The catalogue."
    )
    def get(self, request: Request) -> Response:
        return Response(s.ProductsOut({"products": selectors.products()}).data)


class IsCustomer(permissions.BasePermission):
    """A signed-in user with a customer profile (a staff account without one cannot order)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        customer_of(request)
        return True


def customer_of(request: Request) -> Customer:
    """The signed-in customer; 401 without credentials, 403 for an account with no profile."""
    if not (request.user and request.user.is_authenticated):
        raise NotAuthenticated()
    customer = selectors.customer_of(request.user)
    if customer is None:
        raise PermissionDenied("This account has no customer profile.")
    return customer


class OrdersView(APIView):
    permission_classes = [IsCustomer]
    # docs/api.md: the body is JSON. A list of objects has no multipart form, and the schema lists
    # the parsers as the request's content types.
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="place_order",
        request=s.OrderInput,
        examples=[
            OpenApiExample(
                "Two mugs",
                value={"items": [{"sku": "MUG-001", "quantity": 2}]},
                request_only=True,
            )
        ],
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH},
                OpenApiParameter.HEADER,
                description="Repeat the request safely: the same key and body give the same order.",
            )
        ],
        responses={
            201: s.OrderWithJobsOut,
            400: BAD_REQUEST,
            401: DETAIL,
            403: DETAIL,
            422: DETAIL,
            429: BAD_CREDENTIALS_THROTTLED,
        },
        summary="Place an order; payment and the rest happen in the background.",
    )
    def post(self, request: Request) -> Response:
        form = s.OrderInput(data=request.data)
        form.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip() or None
        if key is not None and len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
            detail = f"Idempotency-Key is longer than {IDEMPOTENCY_KEY_MAX_LENGTH} characters."
            return Response({"detail": detail}, status=400)
        try:
            result = services.place_order(
                customer=customer_of(request),
                items=form.validated_data["items"],
                idempotency_key=key,
                card=form.validated_data.get("card_number"),
            )
        except services.OrderRejected as exc:
            return field_errors(exc.errors)
        except services.IdempotencyKeyReused:
            return Response(
                {"detail": "This Idempotency-Key was used with a different request body."},
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        # From what the transaction wrote: a read now could fail, and the order is placed.
        body = s.OrderWithJobsOut({"order": result.order, "jobs": result.jobs}).data
        return Response(body, status=status.HTTP_201_CREATED)


class OrderDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="get_order",
        responses={
            200: s.OrderWithJobsOut,
            401: DETAIL,
            404: DETAIL,
            429: BAD_CREDENTIALS_THROTTLED,
        },
        summary="The order's live status and its jobs.",
        description="Each job's `state` is its business outcome (`declined`, `skipped` and "
        "`cancelled` with their `outcome_reason`). `last_error` is blank for a customer: an "
        "error's text is technical and for staff. The job machinery's own jobs (a dead "
        "letter's record) are not listed.",
    )
    def get(self, request: Request, order_id: int) -> Response:
        order = selectors.order_of_user(order_id, user=request.user)
        if order is None:
            raise Http404
        jobs = selectors.jobs_for_customer(order)
        context = {"request": request}
        return Response(s.OrderWithJobsOut({"order": order, "jobs": jobs}, context=context).data)


class PDFRenderer(BaseRenderer):
    """Lets a client ask for the invoice with `Accept: application/pdf` (not a 406). The view
    answers with the file itself; its errors are JSON whatever was asked (finalize_response)."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        raise AssertionError("the invoice view renders its errors as JSON")


class AnyFileRenderer(PDFRenderer):
    """`Accept: application/octet-stream`, which generated clients may send, gets the PDF too."""

    media_type = "application/octet-stream"
    format = "bin"


class OrderInvoiceView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [JSONRenderer, PDFRenderer, AnyFileRenderer]

    @extend_schema(
        operation_id="get_order_invoice",
        # DRF's ?format= override: the answer's type is the PDF's or, for an error, JSON.
        parameters=[OpenApiParameter("format", exclude=True)],
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The invoice, as a PDF attachment."
            ),
            # The same answer, for client generators that know a file only by this type
            # (openapi-python-client skips the operation otherwise): the bytes are the PDF's,
            # and its Content-Type says application/pdf.
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The invoice, as a PDF attachment."
            ),
            (401, "application/json"): DETAIL,
            (404, "application/json"): OpenApiResponse(
                DetailOut,
                description="No such order of yours, or its invoice is not made yet (the "
                "order's `invoice_url` is null until it is).",
            ),
            (429, "application/json"): BAD_CREDENTIALS_THROTTLED,
        },
        summary="The paid order's invoice PDF, once its job has made it.",
    )
    def get(self, request: Request, order_id: int) -> FileResponse:
        order = selectors.order_of_user(order_id, user=request.user)
        if order is None:
            raise Http404
        pdf = invoices.open_invoice(order)
        if pdf is None:
            raise Http404("The invoice of this order is not made yet.")
        response = FileResponse(
            pdf,
            as_attachment=True,
            filename=invoices.download_name(order),
            content_type="application/pdf",
        )
        response["Cache-Control"] = "private, no-store"
        return response

    # (Typed as DRF's stubs have it; the PDF itself is a FileResponse and passes through.)
    def finalize_response(self, request: Request, response: Response, *args, **kwargs) -> Response:
        if isinstance(response, Response):  # an error, whatever the client accepts
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class CancelOrderView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="cancel_order",
        request=None,
        responses={
            200: s.OrderWithJobsOut,
            401: DETAIL,
            403: DETAIL,
            404: DETAIL,
            409: OpenApiResponse(
                DetailOut, description="Shipped, cancelled already, or its payment failed."
            ),
            429: BAD_CREDENTIALS_THROTTLED,
        },
        summary="Cancel your order until it ships; a payment is refunded in the background.",
        description="The order turns `cancelled` and its items go back to the stock; its "
        "waiting review reminder is cancelled; the refund (if it was paid), the CRM deal, the "
        "analytics event and the `order.cancelled` webhooks are jobs. A second cancel is a "
        "409 and records nothing.",
    )
    def post(self, request: Request, order_id: int) -> Response:
        # Only the owner's: anyone else's order, staff's included, is a 404 (as GET).
        owned = selectors.order_of_user(order_id, user=request.user)
        if owned is None:
            raise Http404
        try:
            result = services.cancel_order(order_id=order_id, by=owned.customer.user)
        except services.OrderNotCancellable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        order = result.order
        jobs = selectors.jobs_for_customer(order)  # as GET answers
        context = {"request": request}
        return Response(s.OrderWithJobsOut({"order": order, "jobs": jobs}, context=context).data)


class JobDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="get_job",
        responses={
            200: s.JobEnvelopeOut,
            401: DETAIL,
            404: DETAIL,
            429: BAD_CREDENTIALS_THROTTLED,
        },
        summary="One job's state.",
        description="`last_error` is blank unless the caller is staff; `outcome_reason` is "
        "business text and shown to all. The job machinery's own jobs are staff's only (404).",
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_for_user(job_id, user=request.user)
        if job is None:
            raise Http404
        return Response(s.JobEnvelopeOut({"job": job}, context={"request": request}).data)


# Staff only, beside the operations API (/api/ops/): shipping is an operator's act.
class ShipOrderView(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        operation_id="ship_order",
        request=None,
        responses={
            200: s.OrderWithJobsOut,
            404: DETAIL,
            409: OpenApiResponse(DetailOut, description="Not paid, or shipped already."),
            **STAFF_ONLY,
        },
        summary="Mark a paid order shipped; the customer's SMS is sent in the background.",
        description="An order ships once, so its customer gets one text message: shipping "
        "an order that is not paid, or is shipped already, is refused with 409.",
    )
    def post(self, request: Request, order_id: int) -> Response:
        try:
            result = services.ship_order(order_id=order_id, by=operator(request.user))
        except Order.DoesNotExist as exc:
            raise Http404 from exc
        except services.OrderNotShippable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        body = s.OrderWithJobsOut(
            {"order": result.order, "jobs": result.jobs}, context={"request": request}
        ).data
        return Response(body)


class OrderExportsView(APIView):
    permission_classes = [permissions.IsAdminUser]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="request_order_export",
        request=s.OrderExportInput,
        responses={
            202: s.OrderExportWithJobOut,
            400: BAD_REQUEST,
            **STAFF_ONLY,
        },
        summary="Export the orders of a range of days as CSV, in the background.",
        description="Records the export and its job, `jobs.export_orders` (queue `bulk`), in "
        "one transaction. Follow the job's `progress` at GET /api/jobs/<id>; cancel it while it "
        "runs with POST /api/ops/jobs/<id>/cancel (202). Staff download the finished file "
        "from the exports page, /ops/exports.",
    )
    def post(self, request: Request) -> Response:
        form = s.OrderExportInput(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            export = services.request_order_export(by=operator(request.user), **form.validated_data)
        except services.ExportRejected as exc:
            return field_errors(exc.errors)
        body = s.OrderExportWithJobOut({"export": export, "job": export.job})
        return Response(body.data, status=status.HTTP_202_ACCEPTED)


class HealthView(APIView):
    authentication_classes = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="get_health",
        responses={200: s.HealthOut, 503: s.HealthOut},
        summary="Database, broker and worker liveness.",
    )
    def get(self, request: Request) -> Response:
        database, broker = health.database_ok(), health.broker_ok()
        body = {
            "database": "ok" if database else "down",
            "broker": "ok" if broker else "down",
            "workers": health.workers_online(),
        }
        return Response(body, status=200 if database and broker else 503)


@csrf_exempt  # writes nothing; without it an unknown POST would get the CSRF failure page
def not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    """Unknown /api/ addresses: errors are JSON, as docs/api.md says of the whole API."""
    return JsonResponse({"detail": "Not found."}, status=404)


class SchemaView(SpectacularJSONAPIView):
    """/api/openapi.json, built by one thread of the process at a time. drf-spectacular loads
    its extensions (its contrib packages, found or not) the first time it builds a schema, and
    threads that did so at once answered 500s (`'NoneType' object has no attribute
    'startswith'`): a burst of first requests after a start (tests/config/test_security.py)."""

    _building = threading.Lock()

    def _get_schema_response(self, request: Request) -> Response:
        with self._building:
            response: Any = super()._get_schema_response(request)
        return response
