from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Devices"

    def ready(self) -> None:
        from console import realtime
        from devices.gateway import GatewayConsumer

        realtime.websocket_route_register("device/v1", GatewayConsumer.as_asgi(), browser=False)
