from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from jobs import views as jobs_views
from shop import views as shop_views

urlpatterns = [
    path("", include("shop.urls")),
    # Before the shop's API, whose last pattern answers every other /api/ address with a 404.
    path("api/ops/", include("jobs.api_urls")),
    path("api/", include("shop.api.urls")),
    path("ops/", include("jobs.urls")),
    path("metrics", jobs_views.metrics, name="metrics"),
    # The admin's login under the same throttles as the shop's (shop.views.admin_login).
    path("admin/login/", shop_views.admin_login),
    path("admin/", admin.site.urls),
]
if settings.SANDBOX_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

# A 400 that Django answers itself (a Host header it does not serve) is JSON on the API too.
handler400 = "shop.api.errors.bad_request"
