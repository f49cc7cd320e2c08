from django.urls import path

from events import api

# Before the devices routes: "devices/events" is not a device named "events".
urlpatterns = [
    path("devices/events", api.devices_events, name="devices-events"),
    path("devices/events/<path:prefix>", api.devices_events, name="devices-events-prefix"),
    path("products/<str:product>/events", api.product_events, name="product-events"),
    path("products/<str:product>/events/<path:prefix>", api.product_events, name="product-events-prefix"),
    path("events", api.events_stream, name="events"),
    path("events/<path:prefix>", api.events_stream, name="events-prefix"),
]
