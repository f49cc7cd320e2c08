"""Cloud-to-device requests: function calls, variable reads, pings and signals.

The request goes through the channel layer to the consumer holding the device's connection,
wherever it runs, and the answer comes back on a fresh reply channel.
"""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from console.errors import ApplicationError, NotFound
from devices.models import Device

MAX_CALL_NAME_LENGTH = 64
MAX_ARGUMENT_BYTES = 1024
PING_TIMEOUT_SECONDS = 5


class DeviceOffline(ApplicationError):
    status_code = 404  # Particle answers requests to unconnected devices with 404
    error = "offline"


class DeviceTimeout(ApplicationError):
    status_code = 408
    error = "timeout"


def _require_online(device: Device) -> None:
    if not device.online or not device.gateway_channel:
        raise DeviceOffline(f"Device {device.name} is not connected to the cloud.")


async def _request(channel: str, frame: dict, timeout: float) -> dict:
    layer = get_channel_layer()
    reply_channel = await layer.new_channel()
    await layer.send(channel, {"type": "device.request", "reply_channel": reply_channel, "frame": frame})
    try:
        reply = await asyncio.wait_for(layer.receive(reply_channel), timeout)
    except TimeoutError:
        raise DeviceTimeout("Timed out waiting for the device to answer.") from None
    if not reply.get("ok"):
        raise DeviceOffline(f"The device disconnected before answering ({reply.get('error', 'offline')}).")
    return reply["frame"]


def _request_sync(device: Device, frame: dict, timeout: float | None = None) -> dict:
    _require_online(device)
    timeout = timeout or settings.QUANTA_DEVICE_CALL_TIMEOUT_SECONDS
    return async_to_sync(_request)(device.gateway_channel, frame, timeout)


def device_function_call(*, device: Device, function: str, argument: str) -> int:
    if function not in (device.functions or []):
        raise NotFound(f"Function {function} not found")
    if len(argument.encode()) > MAX_ARGUMENT_BYTES:
        raise ApplicationError(
            f"Function arguments are at most {MAX_ARGUMENT_BYTES} bytes; this one has {len(argument.encode())}.",
            field="arg",
        )
    answer = _request_sync(
        device, {"type": "call", "id": uuid.uuid4().hex, "function": function, "arg": argument}
    )
    value = answer.get("return_value")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApplicationError("The device answered the call without an integer return_value.")
    return value


def device_variable_get(*, device: Device, variable: str):
    if variable not in (device.variables or {}):
        raise NotFound(f"Variable {variable} not found")
    answer = _request_sync(device, {"type": "get", "id": uuid.uuid4().hex, "variable": variable})
    if "result" not in answer:
        raise ApplicationError("The device answered the read without a result.")
    return answer["result"]


def device_ping(*, device: Device) -> bool:
    """True if the device answered a ping; False if it is offline or silent."""
    if not device.online or not device.gateway_channel:
        return False
    try:
        _request_sync(device, {"type": "ping", "id": uuid.uuid4().hex}, timeout=PING_TIMEOUT_SECONDS)
    except (DeviceOffline, DeviceTimeout):
        return False
    return True


def device_signal(*, device: Device, on: bool) -> None:
    _require_online(device)
    async_to_sync(get_channel_layer().send)(device.gateway_channel, {"type": "device.signal", "on": on})


def device_renamed_notify(*, device: Device) -> None:
    """Tell the connection holding ``device`` its new name: its events carry it from now on."""
    if not device.online or not device.gateway_channel:
        return
    channel, message = device.gateway_channel, {"type": "device.renamed", "name": device.name}
    transaction.on_commit(lambda: async_to_sync(get_channel_layer().send)(channel, message))


def device_owner_changed_notify(*, device: Device, owner_id: int | None) -> None:
    """Tell the connection holding ``device``, if any, who owns it now, once the current
    transaction commits: the events it publishes and receives follow the new owner."""
    if not device.online or not device.gateway_channel:
        return
    channel, message = device.gateway_channel, {"type": "device.owner", "owner_id": owner_id}
    transaction.on_commit(lambda: async_to_sync(get_channel_layer().send)(channel, message))
