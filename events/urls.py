"""Console pages for events (the API lives in events/urls_api.py)."""

from django.urls import path

from events import views

app_name = "events"

urlpatterns = [
    path("", views.event_logs, name="logs"),
    path("publish/", views.event_publish, name="publish"),
    path("export/", views.event_export, name="export"),
]
