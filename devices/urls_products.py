"""A product's Devices page and its actions, under /products/<product>/devices/ (``<product>`` is
the product's numeric id or its slug; the API lives in devices/urls_api.py)."""

from django.urls import path

from devices import product_views

app_name = "product_devices"

urlpatterns = [
    path("", product_views.product_device_list, name="list"),
    path("import/", product_views.product_device_import, name="import"),
    path("bulk/", product_views.product_device_bulk, name="bulk"),
    path("<str:device_id>/", product_views.product_device_detail, name="detail"),
    path("<str:device_id>/groups/", product_views.product_device_groups, name="groups"),
    path("<str:device_id>/development/", product_views.product_device_development, name="development"),
    path("<str:device_id>/approve/", product_views.product_device_approve, name="approve"),
    path("<str:device_id>/deny/", product_views.product_device_deny, name="deny"),
    path("<str:device_id>/remove/", product_views.product_device_remove, name="remove"),
]
