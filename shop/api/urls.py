from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView

from shop.api import views

urlpatterns = [
    path("signup", views.SignupView.as_view(), name="api-signup"),
    path("products", views.ProductsView.as_view(), name="api-products"),
    path("orders", views.OrdersView.as_view(), name="api-orders"),
    path("orders/<int:order_id>", views.OrderDetailView.as_view(), name="api-order"),
    path("jobs/<uuid:job_id>", views.JobDetailView.as_view(), name="api-job"),
    path("health", views.HealthView.as_view(), name="api-health"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="api-openapi"),
]
