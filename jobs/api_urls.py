"""The operations API, mounted by the project under /api/ops/ (config/urls.py)."""

from django.urls import path

from jobs import api

urlpatterns = [
    path("stats", api.StatsView.as_view(), name="api-ops-stats"),
    path("dead-letters", api.DeadLettersView.as_view(), name="api-ops-dead-letters"),
    path("dead-letters/<int:letter_id>/requeue", api.RequeueView.as_view(), name="api-ops-requeue"),
    path("dead-letters/<int:letter_id>/discard", api.DiscardView.as_view(), name="api-ops-discard"),
    path(
        "dead-letters/requeue",
        api.RequeueMatchingView.as_view(),
        name="api-ops-requeue-matching",
    ),
    path(
        "dead-letters/discard",
        api.DiscardMatchingView.as_view(),
        name="api-ops-discard-matching",
    ),
    path("queues/<str:queue>/pause", api.PauseQueueView.as_view(), name="api-ops-pause"),
    path("queues/<str:queue>/resume", api.ResumeQueueView.as_view(), name="api-ops-resume"),
    path("jobs/<uuid:job_id>/cancel", api.CancelJobView.as_view(), name="api-ops-cancel"),
]
