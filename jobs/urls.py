from django.urls import path

from jobs import views

app_name = "ops"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("stats", views.dashboard_stats, name="stats"),
    path("dead-letters", views.act_on_dead_letters, name="dead_letters"),
    path("dead-letters/matching", views.act_on_matching_dead_letters, name="matching_dead_letters"),
    path("queues/<str:queue>/pause", views.pause_queue, name="pause_queue"),
    path("queues/<str:queue>/resume", views.resume_queue, name="resume_queue"),
    path("jobs/<uuid:job_id>/cancel", views.cancel_job, name="cancel_job"),
]
