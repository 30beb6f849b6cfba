"""Reads, shaped for pages and the API (with the joins they need, and no more)."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, QuerySet, prefetch_related_objects

from jobs.base import HOUSEKEEPING_JOBS
from jobs.models import Job
from shop.models import Customer, Order, OrderExport, OrderLine, Product


def products() -> QuerySet[Product]:
    return Product.objects.order_by("sku")


def product_by_sku(sku: str) -> Product | None:
    return Product.objects.filter(sku=sku).first()


def avatar_job(customer: Customer) -> Job | None:
    """The latest thumbnail job of the customer's avatar, if one was recorded."""
    return customer.jobs.filter(name="jobs.make_avatar_thumbnails").order_by("-created_at").first()


def _lines_with_products() -> Prefetch:
    return Prefetch("lines", queryset=OrderLine.objects.select_related("product"))


def _orders_with_lines() -> QuerySet[Order]:
    return Order.objects.prefetch_related(_lines_with_products())


def order_for_display(order_id: int) -> Order:
    """The order and its lines (the benchmarks' variants read their order so)."""
    return _orders_with_lines().get(pk=order_id)


def with_lines(order: Order) -> Order:
    """The order, its lines and their products loaded: what the answer to the request that
    wrote it shows. Services call it inside their transaction, so that nothing is read after
    the commit: a database gone by then cannot turn a committed request into an error."""
    prefetch_related_objects([order], _lines_with_products())
    return order


def with_jobs(order: Order) -> Order:
    """The order's jobs loaded (`order.jobs.all()` then reads no more), as `with_lines`."""
    prefetch_related_objects([order], "jobs")
    return order


def order_by_idempotency_key(customer: Customer, key: str) -> Order | None:
    """The customer's order placed with this Idempotency-Key, with its lines and jobs."""
    return (
        _orders_with_lines()
        .prefetch_related("jobs")
        .filter(customer=customer, idempotency_key=key)
        .first()
    )


User = AbstractBaseUser | AnonymousUser


def customer_of(user: User) -> Customer | None:
    """The user's customer profile; None for anonymous visitors and for accounts without one
    (a staff account made with createsuperuser)."""
    # The reverse one-to-one raises an AttributeError subclass when there is none.
    customer: Customer | None = getattr(user, "customer", None)
    return customer


def order_of_user(order_id: int, *, user: User) -> Order | None:
    """The order with its lines and jobs if this user placed it; None for anyone else, staff
    included (docs/api.md)."""
    customer = customer_of(user)
    if customer is None:
        return None
    return (
        _orders_with_lines().prefetch_related("jobs").filter(pk=order_id, customer=customer).first()
    )


def jobs_for_customer(order: Order) -> list[Job]:
    """The order's jobs as its customer's API answers show them: not the machinery's own (a
    dead letter's record), which are staff's."""
    return [job for job in order.jobs.all() if job.name not in HOUSEKEEPING_JOBS]


def recent_orders(customer: Customer, *, limit: int = 10) -> QuerySet[Order]:
    return Order.objects.filter(customer=customer).order_by("-created_at")[:limit]


def job_for_user(job_id: str, *, user: User) -> Job | None:
    """The job if this user may see it: staff see every job, a customer those about their
    account or their orders (docs/api.md); None otherwise."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or getattr(user, "is_staff", False):
        return job
    if job.name in HOUSEKEEPING_JOBS:
        return None  # the machinery's own (a dead letter's record): staff's, not the customer's
    subject = job.concerning
    customer = subject.customer if isinstance(subject, Order) else subject
    if isinstance(customer, Customer) and customer.user_id == user.pk:
        return job
    return None


def recent_exports(*, limit: int = 20) -> list[OrderExport]:
    """Staff's latest order exports, with their jobs (progress, state) and who asked."""
    return list(OrderExport.objects.select_related("job", "requested_by")[:limit])


def finished_export(export_id: int) -> OrderExport | None:
    """The export if its file is written (and so offered); None otherwise."""
    return (
        OrderExport.objects.filter(pk=export_id, finished_at__isnull=False).exclude(file="").first()
    )
