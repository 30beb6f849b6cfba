"""The operations API, mounted by the project under /api/ops/ (config/urls.py)."""

from django.urls import path

from jobs import api

urlpatterns = [
    path("stats", api.StatsView.as_view(), name="api-ops-stats"),
    path("dead-letters", api.DeadLettersView.as_view(), name="api-ops-dead-letters"),
    path("dead-letters/<int:letter_id>/requeue", api.RequeueView.as_view(), name="api-ops-requeue"),
    path("dead-letters/<int:letter_id>/discard", api.DiscardView.as_view(), name="api-ops-discard"),
]
