"""The HTML pages. Thin: a form checks the input, one service writes, the page answers."""

import math
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, redirect_to_login
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from jobs import operations
from jobs.models import Job
from jobs.views import staff_only
from shop import avatars, exports, invoices, selectors, services, timeline
from shop.cards import TEST_CARDS
from shop.forms import (
    EmailAuthenticationForm,
    OrderExportForm,
    SignupForm,
    card_from,
    idempotency_key_from,
    order_items_from,
)
from shop.models import Customer, Order, OrderExport, Payment
from shop.throttling import (
    LoginThrottle,
    SignupThrottle,
    seconds_to_wait,
    seconds_to_wait_for_login,
)


def _customer_of(request: HttpRequest) -> Customer | None:
    return selectors.customer_of(request.user)


def _checkout_context() -> dict:
    """What the order forms (catalogue and product page) are rendered with."""
    return {
        "max_quantity": settings.ORDER_MAX_QUANTITY,
        # A fresh key per rendering: submitting this form twice places one order.
        "idempotency_key": uuid.uuid4().hex,
        "test_cards": TEST_CARDS,
        "default_card": TEST_CARDS[0].spaced,
    }


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    return redirect(static("shop/favicon.svg"))


@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    customer = _customer_of(request)
    return render(
        request,
        "shop/catalogue.html",
        {
            "products": selectors.products(),
            "customer": customer,
            "recent_orders": selectors.recent_orders(customer, limit=5) if customer else [],
            **_checkout_context(),
        },
    )


@require_GET
def product_detail(request: HttpRequest, sku: str) -> HttpResponse:
    product = selectors.product_by_sku(sku)
    if product is None:
        raise Http404("No product with this SKU.")
    return render(
        request,
        "shop/product_detail.html",
        {"product": product, "customer": _customer_of(request), **_checkout_context()},
    )


def _avatar(customer: Customer) -> dict:
    """The account page's avatar: its thumbnail once the media job made it."""
    job = selectors.avatar_job(customer) if customer.avatar else None
    url = avatars.thumbnail_url(customer, max(settings.AVATAR_THUMBNAIL_SIZES))
    failed = job is not None and job.state == Job.State.DEAD
    return {
        "customer": customer,
        "thumbnail_url": url,
        "preparing": bool(customer.avatar) and url is None and not failed,
        "avatar_failed": failed and url is None,
    }


@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    customer = _customer_of(request)
    if customer is None:
        messages.info(request, "This account has no customer profile, so it has no orders.")
        return redirect("catalogue")
    return render(
        request,
        "shop/account.html",
        {**_avatar(customer), "orders": selectors.recent_orders(customer, limit=50)},
    )


@never_cache
@login_required
@require_GET
def account_avatar(request: HttpRequest) -> HttpResponse:
    """The avatar fragment the account page polls while the thumbnail is being made."""
    customer = _customer_of(request)
    if customer is None:
        raise Http404
    return render(request, "shop/_avatar.html", _avatar(customer))


def _throttled(
    request: HttpRequest, template: str, context: dict, *, wait: float, message: str
) -> HttpResponse:
    """The page again, unsubmitted, with the throttle's message: 429 and Retry-After."""
    minutes = math.ceil(wait / 60)
    messages.error(request, f"{message} Try again in {minutes} minute{pluralize(minutes)}.")
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(math.ceil(wait))
    return response


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        wait = seconds_to_wait(request, SignupThrottle())
        if wait is not None:
            form = SignupForm(initial=request.POST.dict())
            context = {"form": form}
            return _throttled(
                request, "shop/signup.html", context, wait=wait, message=SignupThrottle.message
            )
    form = SignupForm(request.POST, request.FILES) if request.method == "POST" else SignupForm()
    if form.is_bound and form.is_valid():
        try:
            result = services.sign_up(
                email=form.cleaned_data["email"],
                name=form.cleaned_data["name"],
                password=form.cleaned_data["password"],
                phone=form.cleaned_data["phone"],
                avatar=form.cleaned_data["avatar"],
            )
        except services.EmailAlreadyRegistered:
            form.add_error("email", "An account with this email already exists.")
        else:
            login(request, result.customer.user)
            messages.success(
                request,
                f"Welcome, {result.customer.name}! Your account is ready; "
                "a welcome email is on its way.",
            )
            return redirect("catalogue")
    status = 400 if form.errors else 200
    return render(request, "shop/signup.html", {"form": form}, status=status)


class EmailLoginView(LoginView):
    form_class = EmailAuthenticationForm
    template_name = "shop/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # Before the form: its check of the password is the costly part (an Argon2 hash).
        wait = seconds_to_wait_for_login(request)
        if wait is None:
            return super().post(request, *args, **kwargs)
        form = self.form_class(request, initial={"username": request.POST.get("username", "")})
        context = self.get_context_data(form=form)
        return _throttled(
            request, self.template_name, context, wait=wait, message=LoginThrottle.message
        )


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login page, under the shop's login limits: one count per address and per
    account, whichever of the two pages an attempt came from (config/urls.py routes
    /admin/login/ here, before the admin's own)."""
    if request.method == "POST":
        wait = seconds_to_wait_for_login(request)
        if wait is not None:
            form = AdminAuthenticationForm(
                request, initial={"username": request.POST.get("username", "")}
            )
            context = {
                **admin.site.each_context(request),
                "form": form,
                "title": "Log in",
                "app_path": request.get_full_path(),
            }
            return _throttled(
                request, "admin/login.html", context, wait=wait, message=LoginThrottle.message
            )
    return admin.site.login(request)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are logged out.")
    return redirect("catalogue")


# A card number never reaches an error report (Django's filtered reports, Sentry's Django
# integration): a team that swaps the sandbox for a real gateway must not have to remember.
@sensitive_post_parameters("card_number")
@login_required
@require_POST
def place_order(request: HttpRequest) -> HttpResponse:
    customer = _customer_of(request)
    if customer is None:
        messages.error(
            request,
            "This account has no customer profile (a staff account, for example), so it cannot "
            "place orders. Sign up with another email to shop.",
        )
        return redirect("catalogue")
    problems = []
    try:
        items = order_items_from(request.POST)
    except ValidationError as exc:
        problems += exc.messages
    try:
        card = card_from(request.POST)
    except ValidationError as exc:
        problems += [f"Card number: {message}" for message in exc.messages]
    try:
        idempotency_key = idempotency_key_from(request.POST)
    except ValidationError as exc:
        problems += exc.messages
    if problems:
        messages.error(request, "Order not placed: " + " ".join(problems))
        return redirect("catalogue")
    try:
        result = services.place_order(
            customer=customer,
            items=items,
            idempotency_key=idempotency_key,
            card=card,
        )
    except services.OrderRejected as exc:
        problems = [message for field in exc.errors.values() for message in field]
        messages.error(request, "Order not placed: " + " ".join(problems))
        return redirect("catalogue")
    except services.IdempotencyKeyReused:
        messages.error(
            request,
            "That form was already submitted with other quantities. "
            "Choose them again on this fresh page.",
        )
        return redirect("catalogue")
    if result.replayed:
        messages.info(request, f"Order #{result.order.pk} was already placed; here it is.")
    else:
        messages.success(
            request, f"Order #{result.order.pk} placed. Payment and the rest follow below."
        )
    return redirect("order_detail", order_id=result.order.pk)


@login_required
@require_POST
def cancel_order(request: HttpRequest, order_id: int) -> HttpResponse:
    """The order page's "Cancel order" button: the customer's own order only (404 otherwise,
    staff too: staff cancel in the admin)."""
    order = get_object_or_404(
        Order.objects.select_related("customer__user"), pk=order_id, customer=_customer_of(request)
    )
    try:
        result = services.cancel_order(order_id=order.pk, by=order.customer.user)
    except services.OrderNotCancellable as exc:
        messages.error(request, str(exc))
    else:
        paid = any(job.name == "jobs.refund_payment" for job in result.jobs)
        refund = " Your payment will be refunded." if paid else ""
        messages.success(
            request, f"Order #{order.pk} is cancelled and its items are back in stock.{refund}"
        )
    return redirect("order_detail", order_id=order.pk)


def _visible_order(request: HttpRequest, order_id: int) -> Order:
    """The order if this user may see it; a 404 otherwise, so ids of others leak nothing."""
    orders = Order.objects.select_related("customer__user")
    if not request.user.is_staff:
        orders = orders.filter(customer=_customer_of(request))
    return get_object_or_404(orders, pk=order_id)


def _timeline(order: Order, *, staff: bool) -> dict:
    jobs: list[Job] = list(order.jobs.order_by("created_at"))
    # A scheduled job (the review reminder, due in an hour) must not keep the page polling.
    waiting = [job for job in jobs if job.state != Job.State.SCHEDULED]
    all_final = order.status != Order.Status.PENDING_PAYMENT and all(
        job.is_final for job in waiting
    )
    payment = Payment.objects.filter(order=order).select_related("refund").first()
    return {
        "order": order,
        # The customer's steps, in business words; the jobs themselves only for staff.
        "steps": timeline.order_steps(jobs=jobs),
        "jobs": jobs if staff else [],
        "staff": staff,
        "all_final": all_final,
        "scheduled": len(waiting) < len(jobs),
        "payment": payment,
        "invoice": _invoice_state(order, jobs),
        "refund": getattr(payment, "refund", None) if payment else None,
    }


def _invoice_state(order: Order, jobs: Iterable[Job]) -> str | None:
    """What the order's page says of its invoice: "ready", "preparing", "failed" (its job gave
    up: staff see the dead letter), or None for an order that gets none (not paid)."""
    if order.invoice:
        return "ready"
    if order.status not in Order.PAID_STATUSES:
        return None
    job = next((job for job in jobs if job.name == "jobs.make_invoice"), None)
    return "failed" if job is not None and job.state == Job.State.DEAD else "preparing"


@login_required
@require_GET
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _visible_order(request, order_id)
    return render(
        request,
        "shop/order_detail.html",
        {
            **_timeline(order, staff=request.user.is_staff),
            "lines": order.lines.select_related("product"),
            "can_cancel": _can_cancel(request, order),
            "own_order": _is_own(request, order),
        },
    )


def _is_own(request: HttpRequest, order: Order) -> bool:
    """The order is the visitor's own (not a staff member's look at a customer's)."""
    return order.customer.user_id == request.user.pk


def _can_cancel(request: HttpRequest, order: Order) -> bool:
    # Customers cancel their own orders; staff do it in the admin.
    return order.is_cancellable and _is_own(request, order)


@never_cache
@login_required
@require_GET
def order_timeline(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _visible_order(request, order_id)
    context = {
        **_timeline(order, staff=request.user.is_staff),
        "can_cancel": _can_cancel(request, order),
    }
    return render(request, "shop/_timeline.html", context)


# never_cache: an invoice is personal, and no cache between the shop and its customer keeps it.
@never_cache
@login_required
@require_GET
def order_invoice(request: HttpRequest, order_id: int) -> HttpResponseBase:
    """The order's invoice PDF, to its customer and to staff; before it is made (or for an order
    that gets none) a page that says so, with a 404: there is no PDF at this address yet."""
    order = _visible_order(request, order_id)
    pdf = invoices.open_invoice(order)
    if pdf is None:
        state = _invoice_state(order, order.jobs.all())
        if state == "ready":  # the file is being replaced by a second run, this instant
            state = "preparing"
        return render(
            request, "shop/invoice_pending.html", {"order": order, "invoice": state}, status=404
        )
    return FileResponse(
        pdf,
        as_attachment=True,
        filename=invoices.download_name(order),
        content_type="application/pdf",
    )


# --- staff's order exports (/ops/exports, beside the operations dashboard) -------------------


def _exports_context() -> dict:
    exports = selectors.recent_exports()
    return {"exports": exports, "all_final": all(e.job is None or e.job.is_final for e in exports)}


@staff_only
@require_http_methods(["GET", "POST"])
def order_exports(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    form = OrderExportForm(
        request.POST or None, initial={"start": today - timedelta(days=30), "end": today}
    )
    if form.is_bound and form.is_valid():
        try:
            export = services.request_order_export(
                by=operations.operator(request.user),
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
            )
        except services.ExportRejected as exc:
            for field, problems in exc.errors.items():
                for problem in problems:
                    form.add_error(field, problem)
        else:
            messages.success(
                request, f"Export #{export.pk} of {export.start} to {export.end} started."
            )
            return redirect("order_exports")
    status = 400 if form.errors else 200
    context = {
        "form": form,
        "chunk_rows": settings.EXPORT_CHUNK_ROWS,
        "chunk_delay": settings.EXPORT_CHUNK_DELAY_SECONDS,
        **_exports_context(),
    }
    return render(request, "shop/exports.html", context, status=status)


@never_cache
@staff_only
@require_GET
def order_exports_list(request: HttpRequest) -> HttpResponse:
    """The list the exports page polls while an export runs."""
    return render(request, "shop/_exports.html", _exports_context())


@staff_only
@require_POST
def cancel_order_export(request: HttpRequest, export_id: int) -> HttpResponse:
    export = get_object_or_404(OrderExport, pk=export_id, job__isnull=False)
    try:
        job = operations.cancel(
            str(export.job_id),
            by=operations.operator(request.user),
            reason=request.POST.get("reason", ""),
        )
    except (Job.DoesNotExist, operations.ReasonRequired, operations.Conflict) as exc:
        messages.error(request, str(exc) or "There is no such job.")
    else:
        what = "is stopping" if job.stopping else "is cancelled"
        messages.success(request, f"Export #{export.pk} {what}.")
    return redirect("order_exports")


@require_GET
def download_order_export(request: HttpRequest, export_id: int) -> HttpResponseBase:
    """The finished CSV, to staff; a 404 to anyone else signed in (as for an export that is
    not finished), and the login page to a visitor."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    export = selectors.finished_export(export_id) if request.user.is_staff else None
    if export is None:
        raise Http404("No such export, or not finished.")
    return FileResponse(
        exports.open_export(export),
        as_attachment=True,
        filename=export.download_name,
        content_type="text/csv",
    )
