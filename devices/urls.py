"""Console pages for devices (the API lives in devices/urls_api.py)."""

from django.urls import path

from devices import views

app_name = "devices"

urlpatterns = [
    path("", views.device_list, name="list"),
    path("claim/", views.device_claim, name="claim"),
    path("claim-code/", views.claim_code_create, name="claim-code"),
    path("<str:device_id>/", views.device_detail, name="detail"),
    path("<str:device_id>/rename/", views.device_rename, name="rename"),
    path("<str:device_id>/notes/", views.device_notes, name="notes"),
    path("<str:device_id>/unclaim/", views.device_unclaim, name="unclaim"),
    path("<str:device_id>/call/", views.device_call, name="call"),
    path("<str:device_id>/variable/", views.device_variable, name="variable"),
    path("<str:device_id>/ping/", views.device_ping, name="ping"),
    path("<str:device_id>/signal/", views.device_signal, name="signal"),
]
