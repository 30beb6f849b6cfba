from django.urls import path, re_path

from shop.api import schema, views  # noqa: F401  (schema: registers the bearer auth scheme)

urlpatterns = [
    path("signup", views.SignupView.as_view(), name="api-signup"),
    path("products", views.ProductsView.as_view(), name="api-products"),
    path("orders", views.OrdersView.as_view(), name="api-orders"),
    path("orders/<int:order_id>", views.OrderDetailView.as_view(), name="api-order"),
    path(
        "orders/<int:order_id>/invoice",
        views.OrderInvoiceView.as_view(),
        name="api-order-invoice",
    ),
    path("orders/<int:order_id>/cancel", views.CancelOrderView.as_view(), name="api-cancel-order"),
    path("jobs/<uuid:job_id>", views.JobDetailView.as_view(), name="api-job"),
    path("health", views.HealthView.as_view(), name="api-health"),
    # Under /api/ops/ with the operations API (jobs.api_urls, mounted before this file), whose
    # patterns this one falls through: the shop's act, in the operators' part of the API.
    path(
        "ops/orders/<int:order_id>/ship", views.ShipOrderView.as_view(), name="api-ops-ship-order"
    ),
    path("ops/exports", views.OrderExportsView.as_view(), name="api-ops-exports"),
    path("openapi.json", views.SchemaView.as_view(), name="api-openapi"),
    # Last: any other /api/ address (including /api/orders/abc) is a JSON 404, not an HTML page.
    # (`^` and not `^.*$`: `.` stops at a newline, and /api/jobs/a%0Ab would get the HTML page.)
    re_path(r"^", views.not_found, name="api-not-found"),
]
