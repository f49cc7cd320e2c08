"""Console pages for products (the API lives in products/urls_api.py). ``<product>`` is a
product's numeric id or its slug."""

from django.urls import path

from products import views

app_name = "products"

urlpatterns = [
    path("", views.product_list, name="list"),
    path("new/", views.product_new, name="new"),
    path("<str:product>/", views.product_overview, name="overview"),
    path("<str:product>/events/", views.product_events, name="events"),
]
