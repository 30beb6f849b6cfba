from django.urls import path

from bench.views import OrderVariant, SignupVariant

urlpatterns = [
    path(f"{variant}/{endpoint}", view.as_view(variant=variant), name=f"bench-{variant}-{endpoint}")
    for variant in ("bare", "sync", "common")
    for endpoint, view in (("signup", SignupVariant), ("orders", OrderVariant))
]
