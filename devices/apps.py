from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Devices"

    def ready(self) -> None:
        from console import nav, realtime
        from devices.gateway import GatewayConsumer

        realtime.websocket_route_register("device/v1", GatewayConsumer.as_asgi(), browser=False)
        nav.nav_register(
            nav.NavItem(
                key="devices",
                label="Devices",
                url_name="devices:list",
                icon="cpu",
                order=10,
                active_for=("devices:detail",),
            )
        )
        # A product's Devices page, in the sidebar's product context (see products/apps.py).
        nav.nav_register(
            nav.NavItem(
                key="product-devices",
                label="Devices",
                url_name="product_devices:list",
                icon="cpu",
                order=20,
                section=nav.Section.PRODUCT,
                active_for=("product_devices:detail",),
            )
        )
