"""Console pages for a product's firmware, under ``/products/<product>/firmware/``."""

from django.urls import path

from firmware import device_views, views

app_name = "firmware"

urlpatterns = [
    path("", views.firmware_list, name="list"),
    path("upload/", views.firmware_upload, name="upload"),
    path("<int:version>/", views.firmware_detail, name="detail"),
    path("<int:version>/download/", views.firmware_download, name="download"),
    path("<int:version>/edit/", views.firmware_edit, name="edit"),
    path("<int:version>/delete/", views.firmware_delete, name="delete"),
    path("<int:version>/release/", views.firmware_release, name="release"),
    path("<int:version>/release/impact/", views.firmware_release_impact, name="release-impact"),
    # A product device's firmware card (devices renders it through its panel registry).
    path("devices/<str:device_id>/", device_views.device_panel, name="device-panel"),
    path("devices/<str:device_id>/lock/", device_views.device_lock, name="device-lock"),
]
