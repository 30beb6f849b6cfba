"""Reads, shaped for pages and the API (with the joins they need, and no more)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from shop.models import Customer, Order, OrderLine, Product


def products() -> QuerySet[Product]:
    return Product.objects.order_by("sku")


def _orders_with_lines() -> QuerySet[Order]:
    return Order.objects.prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("product"))
    )


def order_for_display(order_id: int) -> Order:
    """The order and its lines, for the answer to the request that placed it (which has its
    jobs at hand already)."""
    return _orders_with_lines().get(pk=order_id)


def order_of_user(order_id: int, *, user: AbstractBaseUser) -> Order | None:
    """The order with its lines and jobs if this user placed it; None for anyone else, staff
    included (api.md)."""
    return (
        _orders_with_lines()
        .prefetch_related("jobs")
        .filter(pk=order_id, customer__user=user)
        .first()
    )


def recent_orders(customer: Customer, *, limit: int = 10) -> QuerySet[Order]:
    return Order.objects.filter(customer=customer).order_by("-created_at")[:limit]
