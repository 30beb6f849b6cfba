"""The app's addresses, and the benchmarks' variants of its signup and order endpoints under
/bench/ (bench/views.py). Only the benchmarks' processes use this URLconf (bench.settings)."""

from django.urls import path

from bench.views import OrderVariant, SignupVariant
from config.urls import urlpatterns as app_urlpatterns

urlpatterns = [
    *app_urlpatterns,
    *(
        path(
            f"bench/{variant}/{endpoint}",
            view.as_view(variant=variant),
            name=f"bench-{variant}-{endpoint}",
        )
        for variant in ("bare", "sync", "common")
        for endpoint, view in (("signup", SignupVariant), ("orders", OrderVariant))
    ),
]
