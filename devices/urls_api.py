from django.urls import path

from devices import api, streams

urlpatterns = [
    path("devices", api.DeviceListView.as_view(), name="devices"),
    path("device_claims", api.ClaimCodeView.as_view(), name="device-claims"),
    path("devices/<str:device>", api.DeviceView.as_view(), name="device"),
    path("devices/<str:device>/events", streams.device_events, name="device-events"),
    path("devices/<str:device>/events/<path:prefix>", streams.device_events, name="device-events-prefix"),
    path("devices/<str:device>/ping", api.DevicePingView.as_view(), name="device-ping"),
    path("devices/<str:device>/<str:member>", api.DeviceMemberView.as_view(), name="device-member"),
]
