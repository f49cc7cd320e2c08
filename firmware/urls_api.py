"""/v1/products/:p/firmware routes (included by console/api/urls.py)."""

from django.urls import path

from firmware import api

urlpatterns = [
    path("products/<str:product>/firmware", api.FirmwareListView.as_view(), name="product-firmware-list"),
    # Before <version>: "release" is not a version.
    path(
        "products/<str:product>/firmware/release",
        api.FirmwareReleaseView.as_view(),
        name="product-firmware-release",
    ),
    path("products/<str:product>/impact", api.ImpactView.as_view(), name="product-firmware-impact"),
    path(
        "products/<str:product>/firmware/<str:version>", api.FirmwareView.as_view(), name="product-firmware"
    ),
    path(
        "products/<str:product>/firmware/<str:version>/binary",
        api.FirmwareBinaryView.as_view(),
        name="product-firmware-binary",
    ),
]
