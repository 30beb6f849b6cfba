from collections import Counter

from django.contrib import admin, messages
from django.contrib.contenttypes.admin import GenericTabularInline
from django.db.models import QuerySet
from django.http import HttpRequest

from jobs.models import Job
from jobs.operations import operator
from shop import services
from shop.models import ApiToken, Customer, Order, OrderExport, OrderLine, Payment, Product


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "phone", "created_at")
    list_select_related = ("user",)
    search_fields = ("name", "user__email", "phone")
    raw_id_fields = ("user",)
    # Written by the avatar job; an edit here would point at files that do not exist.
    readonly_fields = ("avatar_thumbnails", "created_at")

    @admin.display(ordering="user__email")
    def email(self, customer: Customer) -> str:
        return customer.email


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "price", "currency", "stock")
    search_fields = ("sku", "name")
    fields = ("sku", "name", "description", "price", "currency", "stock", "image")


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    raw_id_fields = ("product",)


class PaymentInline(admin.StackedInline):
    """Shown, never written here: only the gateway's answer makes a payment."""

    model = Payment
    fields = ("gateway_charge_id", "amount", "currency", "created_at", "refunded")
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0

    @admin.display(description="refund")
    def refunded(self, payment: Payment) -> str:
        refund = getattr(payment, "refund", None)
        return (
            f"{refund.gateway_refund_id}, {refund.created_at:%Y-%m-%d %H:%M:%S}" if refund else "—"
        )


class JobInline(GenericTabularInline):
    model = Job
    ct_field, ct_fk_field = "concerning_type", "concerning_id"
    fields = (
        "name",
        "queue",
        "state",
        "attempts",
        "eta",
        "last_error",
        "created_at",
        "finished_at",
    )
    readonly_fields = fields
    ordering = ("created_at",)
    can_delete = False
    extra = 0
    max_num = 0
    show_change_link = True


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "status", "total", "currency", "created_at", "shipped_at")
    list_filter = ("status",)
    list_select_related = ("customer__user",)
    search_fields = ("=id", "customer__user__email", "idempotency_key")
    date_hierarchy = "created_at"
    raw_id_fields = ("customer",)
    # Totals and keys come from the order service; editing them would break the replay check.
    # The status follows the payment job and the ship action: set here by hand, it would skip
    # the jobs that go with it (the confirmation, the shipping SMS).
    readonly_fields = (
        "status",
        "total",
        "currency",
        "idempotency_key",
        "request_digest",
        "placed_job_ids",
        # The card the customer chose; the payment job charges this token.
        "card_brand",
        "card_last4",
        "payment_token",
        "created_at",
        "shipped_at",
        "shipped_by",
        "cancelled_at",
        "cancelled_by",
        "cancel_reason",
    )
    inlines = (OrderLineInline, PaymentInline, JobInline)
    actions = ("mark_shipped", "cancel_orders")

    @admin.action(description="Mark shipped (sends the SMS)", permissions=["change"])
    def mark_shipped(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        """Each order on its own (shop.services.ship_order): the paid ones ship, the others
        are counted and left as they are."""
        shipped, skipped = 0, Counter[str]()
        for order_id in queryset.values_list("pk", flat=True):
            try:
                services.ship_order(order_id=order_id, by=operator(request.user))
            except services.OrderNotShippable as refused:
                shipped_already = refused.status == Order.Status.SHIPPED
                skipped["shipped already" if shipped_already else "not paid"] += 1
            else:
                shipped += 1
        if shipped:
            self.message_user(
                request,
                f"{shipped} order{'s' if shipped != 1 else ''} shipped; each customer with a "
                "mobile number gets a text message.",
                messages.SUCCESS,
            )
        if skipped:
            reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items()))
            self.message_user(
                request,
                f"{skipped.total()} skipped, left as they were: {reasons}.",
                messages.WARNING,
            )

    @admin.action(description="Cancel (refunds a payment, restocks)", permissions=["change"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        """Each order on its own (shop.services.cancel_order), as the customer's button does;
        those that cannot be cancelled (shipped, failed, cancelled already) are counted."""
        cancelled, refused = 0, Counter[str]()
        for order_id in queryset.values_list("pk", flat=True):
            try:
                services.cancel_order(
                    order_id=order_id, by=operator(request.user), reason="cancelled by staff"
                )
            except services.OrderNotCancellable as exc:
                refused[exc.status] += 1
            else:
                cancelled += 1
        if cancelled:
            self.message_user(
                request,
                f"{cancelled} order{'s' if cancelled != 1 else ''} cancelled; paid ones are "
                "refunded in the background.",
                messages.SUCCESS,
            )
        if refused:
            reasons = ", ".join(f"{count} {status}" for status, count in sorted(refused.items()))
            self.message_user(
                request,
                f"{refused.total()} not cancellable, left as they were: {reasons}.",
                messages.WARNING,
            )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued by the signup service and shown once; here they can only be seen
    (as digests) or revoked."""

    list_display = ("short_digest", "user", "created_at")
    list_select_related = ("user",)
    search_fields = ("user__email", "digest")
    fields = ("user", "digest", "created_at")
    readonly_fields = fields

    @admin.display(description="digest")
    def short_digest(self, token: ApiToken) -> str:
        return f"{token.digest[:12]}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(OrderExport)
class OrderExportAdmin(admin.ModelAdmin):
    """Read-only: exports are made, followed, cancelled and downloaded at /ops/exports."""

    list_display = (
        "pk",
        "start",
        "end",
        "requested_by",
        "rows_written",
        "rows_total",
        "finished_at",
    )
    list_select_related = ("requested_by",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
