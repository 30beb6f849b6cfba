from django.urls import path

from shop import views

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    # What a browser asks for on a page that names no icon (the admin's, the API's schema).
    path("favicon.ico", views.favicon),
    path("products/<str:sku>", views.product_detail, name="product_detail"),
    path("account", views.account, name="account"),
    path("account/avatar", views.account_avatar, name="account_avatar"),
    path("signup", views.signup, name="signup"),
    path("login", views.EmailLoginView.as_view(), name="login"),
    path("logout", views.logout_view, name="logout"),
    path("orders", views.place_order, name="place_order"),
    path("orders/<int:order_id>", views.order_detail, name="order_detail"),
    path("orders/<int:order_id>/cancel", views.cancel_order, name="cancel_order"),
    path("orders/<int:order_id>/timeline", views.order_timeline, name="order_timeline"),
    path("orders/<int:order_id>/invoice.pdf", views.order_invoice, name="order_invoice"),
    # Staff's order exports, beside the operations dashboard (/ops/, jobs.urls), which knows
    # nothing of the shop.
    path("ops/exports", views.order_exports, name="order_exports"),
    path("ops/exports/list", views.order_exports_list, name="order_exports_list"),
    path(
        "ops/exports/<int:export_id>/cancel", views.cancel_order_export, name="cancel_order_export"
    ),
    path(
        "ops/exports/<int:export_id>/download",
        views.download_order_export,
        name="download_order_export",
    ),
]
