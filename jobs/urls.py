from django.urls import path

from jobs import views

app_name = "ops"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("stats", views.dashboard_stats, name="stats"),
    path("dead-letters", views.act_on_dead_letters, name="dead_letters"),
]
