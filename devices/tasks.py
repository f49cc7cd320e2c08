from celery import shared_task

from devices.services import devices_sweep_stale
from events.hub import hub
from events.services import device_status_event


@shared_task
def sweep_stale_sessions() -> int:
    """Devices whose gateway process died show offline within two heartbeat periods."""
    stale = devices_sweep_stale()
    for device in stale:
        hub.publish(
            device_status_event(
                device_id=device.id, owner_id=device.owner_id, product_id=device.product_id, online=False
            )
        )
    return len(stale)
