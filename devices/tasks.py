from celery import shared_task

from devices.services import devices_sweep_stale, online_samples_take
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


@shared_task
def sample_online_devices() -> int:
    """The product overview's history of devices online; safe to run twice (one sample a period)."""
    return online_samples_take()
