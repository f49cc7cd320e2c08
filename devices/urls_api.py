from django.urls import path

from devices import api, api_products, streams

urlpatterns = [
    path("devices", api.DeviceListView.as_view(), name="devices"),
    path("device_claims", api.ClaimCodeView.as_view(), name="device-claims"),
    path("devices/<str:device>", api.DeviceView.as_view(), name="device"),
    path("devices/<str:device>/events", streams.device_events, name="device-events"),
    path("devices/<str:device>/events/<path:prefix>", streams.device_events, name="device-events-prefix"),
    path("devices/<str:device>/ping", api.DevicePingView.as_view(), name="device-ping"),
    path("devices/<str:device>/<str:member>", api.DeviceMemberView.as_view(), name="device-member"),
]

# A product's devices (products is the tenancy; devices changes devices).
urlpatterns += [
    path(
        "products/<str:product>/devices", api_products.ProductDeviceListView.as_view(), name="product-devices"
    ),
    path(
        "products/<str:product>/devices/<str:device>",
        api_products.ProductDeviceView.as_view(),
        name="product-device",
    ),
]
