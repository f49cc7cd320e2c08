from django.apps import AppConfig


class FirmwareConfig(AppConfig):
    name = "firmware"
    verbose_name = "Firmware"

    def ready(self) -> None:
        from console import nav
        from devices.product_fields import ProductDeviceField, product_device_field_register
        from firmware.locks import desired_firmware_version_apply

        # A product's Firmware page, after Devices (20) and before Groups (25).
        nav.nav_register(
            nav.NavItem(
                key="product-firmware",
                label="Firmware",
                url_name="firmware:list",
                icon="code",
                order=22,
                section=nav.Section.PRODUCT,
                active_for=("firmware:*",),
            )
        )

        # The gateway drives transfers with what firmware hands it, and tells it of handshakes.
        from devices.ota import flash_handler_register, handshake_hook_register, ota_backend_register
        from firmware.ota import UpdateBackend, device_flash, handshakes_observed

        ota_backend_register(UpdateBackend())
        handshake_hook_register(handshakes_observed)
        flash_handler_register(device_flash)

        # The "Why this firmware" card on a product device's page.
        from devices.product_fields import ProductDevicePanel, product_device_panel_register
        from firmware.device_views import PANEL_TEMPLATE, device_panel_context

        product_device_panel_register(
            ProductDevicePanel(key="firmware", template=PANEL_TEMPLATE, context=device_panel_context)
        )

        # PUT /v1/products/:p/devices/:id with desired_firmware_version locks or unlocks.
        product_device_field_register(
            ProductDeviceField(
                fields=("desired_firmware_version", "flash"),
                action="firmware.lock",
                apply=desired_firmware_version_apply,
            )
        )
