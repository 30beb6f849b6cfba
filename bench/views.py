"""The signup and order endpoints three other ways, for the benchmarks' side-by-side runs.

Mounted at /bench/ only in the benchmarks' own processes (bench.settings, bench.urls); the
app never imports them. Each variant validates its input with the API's own serializers and
writes the same domain rows through the same services as /api/signup and /api/orders; they
differ only in what follows the write:

- bare:   no jobs at all; the floor that the queued request is measured against;
- sync:   every job runs inside the request, as in a project without workers;
- common: one `.delay()` per job on a Celery app set up the common way (bench.common_way).
"""

from django.contrib.auth.hashers import make_password
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench import common_tasks
from jobs import dispatch
from shop import selectors, services
from shop.api import serializers as s
from shop.api.views import IsCustomer, customer_of


@extend_schema(exclude=True)
class SignupVariant(APIView):
    authentication_classes = []
    permission_classes = []
    parser_classes = [JSONParser]
    variant = ""

    def post(self, request: Request) -> Response:
        form = s.SignupInput(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if self.variant == "sync":
            with dispatch.jobs_run_in_process():
                result = services.sign_up(**data)
            customer, token, jobs = result.customer, result.token, result.customer.jobs.all()
        else:
            # The same hashing as sign_up, outside the transaction as there.
            password_hash = make_password(data["password"])
            with transaction.atomic():
                customer, token = services.create_customer(
                    email=data["email"], name=data["name"], password_hash=password_hash
                )
            jobs = []
            if self.variant == "common":
                common_tasks.after_signup(customer)
        body = s.SignupOut({"customer": customer, "token": token, "jobs": jobs}).data
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(exclude=True)
class OrderVariant(APIView):
    permission_classes = [IsCustomer]
    parser_classes = [JSONParser]
    variant = ""

    def post(self, request: Request) -> Response:
        form = s.OrderInput(data=request.data)
        form.is_valid(raise_exception=True)
        items = form.validated_data["items"]
        customer = customer_of(request)
        if self.variant == "sync":
            with dispatch.jobs_run_in_process():
                result = services.place_order(customer=customer, items=items)
            order_id = result.order.pk
        else:
            with transaction.atomic():
                order = services.create_order(customer=customer, items=items)
            order_id = order.pk
            if self.variant == "common":
                common_tasks.after_order(order)
        order = selectors.order_for_display(order_id)
        # sync: the jobs ran already, and the order's show their final states.
        jobs = order.jobs.all() if self.variant == "sync" else []
        body = s.OrderWithJobsOut({"order": order, "jobs": jobs}).data
        return Response(body, status=status.HTTP_201_CREATED)
