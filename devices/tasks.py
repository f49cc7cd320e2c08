from celery import shared_task

from devices.services import devices_sweep_stale
from events.services import device_status_event, event_publish


@shared_task
def sweep_stale_sessions() -> int:
    """Devices whose gateway process died show offline within two heartbeat periods."""
    stale = devices_sweep_stale()
    for device in stale:
        event_publish(
            device_status_event(
                device_id=device.id,
                owner_id=device.owner_id,
                product_id=device.product_id,
                online=False,
                device_name=device.name,
            )
        )
    return len(stale)
