"""/v1/devices: list, claim, get, rename, notes, signal, unclaim, ping, functions and variables."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from console.api.views import QuantaAPIView
from console.errors import ApplicationError
from console.http import client_ip
from devices import calls, selectors, services
from devices.ota import flash_handler as ota_flash_handler
from devices.serializers import DeviceDetailSerializer, DeviceSummarySerializer, device_detail, device_summary

_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}


def _flag(value, field: str) -> bool:
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ApplicationError(f"{field} must be 1 or 0 (true or false), not {value!r}.", field=field)


def _wants_raw(request) -> bool:
    return str(request.query_params.get("format") or request.data.get("format") or "").lower() == "raw"


class ClaimSerializer(serializers.Serializer):
    id = serializers.RegexField(
        r"^[0-9a-fA-F]{24}$", error_messages={"invalid": "A device ID is 24 hex characters."}
    )
    request_transfer = serializers.BooleanField(required=False, default=False)


class DeviceListView(QuantaAPIView):
    @extend_schema(summary="List your devices", responses=DeviceSummarySerializer(many=True))
    def get(self, request):
        devices = selectors.device_list_for_user(user=request.user).select_related("owner").order_by("name")
        return Response([device_summary(device) for device in devices])

    @extend_schema(
        summary="Claim a device",
        request=ClaimSerializer,
        responses=inline_serializer(
            "ClaimResponse",
            {
                "ok": serializers.BooleanField(),
                "id": serializers.CharField(),
                "user_id": serializers.IntegerField(),
            },
        ),
    )
    def post(self, request):
        serializer = ClaimSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = services.device_claim(
            user=request.user,
            device_id=serializer.validated_data["id"],
            ip_address=client_ip(request._request),
        )
        return Response({"ok": True, "id": device.id, "user_id": request.user.pk, "connected": device.online})


class DeviceUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    notes = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    signal = serializers.CharField(required=False)


class DeviceView(QuantaAPIView):
    @extend_schema(summary="A device, with its functions and variables", responses=DeviceDetailSerializer)
    def get(self, request, device: str):
        found = selectors.device_get_for_user(user=request.user, id_or_name=device)
        return Response(device_detail(found))

    @extend_schema(
        summary="Rename a device, set its notes, or make it signal",
        request=DeviceUpdateSerializer,
        responses=inline_serializer("DeviceUpdated", {"id": serializers.CharField()}),
    )
    def put(self, request, device: str):
        found = selectors.device_get_for_user(user=request.user, id_or_name=device)
        if (upload := uploaded_binary(request)) is not None:
            return Response(flash_by_hand(actor=request.user, device=found, upload=upload))
        serializer = DeviceUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "signal" in data:
            on = _flag(data["signal"], "signal")
            calls.device_signal(device=found, on=on)
            return Response({"id": found.id, "connected": found.online, "signaling": on})
        if "name" in data:
            found = services.device_rename(user=request.user, device=found, name=data["name"])
            return Response({"id": found.id, "name": found.name, "updated_at": found.updated_at})
        if "notes" in data:
            found = services.device_notes_update(user=request.user, device=found, notes=data["notes"])
            return Response({"id": found.id, "notes": found.notes, "updated_at": found.updated_at})
        raise ApplicationError("Nothing to change: send name, notes or signal.")

    @extend_schema(
        summary="Unclaim a device",
        responses=inline_serializer("Unclaimed", {"ok": serializers.BooleanField()}),
    )
    def delete(self, request, device: str):
        found = selectors.device_get_for_user(user=request.user, id_or_name=device)
        services.device_unclaim(user=request.user, device=found, ip_address=client_ip(request._request))
        return Response({"ok": True})


def uploaded_binary(request):
    """The firmware file of ``particle flash`` (multipart ``file``), if the request carries one."""
    if not request.content_type.startswith("multipart/"):
        return None
    return request.FILES.get("file") or request.FILES.get("binary")


def flash_by_hand(*, actor, device, upload) -> dict:
    handler = ota_flash_handler()
    if handler is None:
        raise ApplicationError("Flashing firmware is not available on this server.", field="file")
    limit = settings.QUANTA_FIRMWARE_MAX_BYTES
    if upload.size > limit:  # before reading it
        raise ApplicationError(
            f"The file is {upload.size:,} bytes; firmware binaries are at most {limit:,} bytes.", field="file"
        )
    return handler(actor=actor, device=device, data=upload.read(), via="api")


class DevicePingView(QuantaAPIView):
    @extend_schema(
        summary="Ping a device",
        request=None,
        responses=inline_serializer(
            "Ping", {"online": serializers.BooleanField(), "ok": serializers.BooleanField()}
        ),
    )
    def put(self, request, device: str):
        found = selectors.device_get_for_user(user=request.user, id_or_name=device)
        return Response({"online": calls.device_ping(device=found), "ok": True})


class CallSerializer(serializers.Serializer):
    arg = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    args = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    format = serializers.CharField(required=False)


class DeviceMemberView(QuantaAPIView):
    """``POST`` calls a function, ``GET`` reads a variable: Particle shares the path."""

    @extend_schema(
        summary="Read a variable",
        operation_id="devices_variable_retrieve",
        parameters=[OpenApiParameter("format", str, description="raw: the bare value")],
        responses=inline_serializer(
            "VariableValue",
            {
                "name": serializers.CharField(),
                "result": serializers.JSONField(),
                "coreInfo": serializers.DictField(),
            },
        ),
    )
    def get(self, request, device: str, member: str):
        found = selectors.device_get_for_user(user=request.user, id_or_name=device)
        value = calls.device_variable_get(device=found, variable=member)
        if _wants_raw(request):
            return HttpResponse(str(value), content_type="text/plain; charset=utf-8")
        return Response(
            {
                "cmd": "VarReturn",
                "name": member,
                "result": value,
                "coreInfo": {
                    "name": found.name,
                    "deviceID": found.id,
                    "connected": True,
                    "last_handshake_at": found.last_handshake_at,
                    "last_app": "",
                    "last_heard": found.last_heard,
                    "product_id": found.product_id if found.product_id is not None else found.platform_id,
                },
            }
        )

    @extend_schema(
        summary="Call a function",
        operation_id="devices_function_call",
        request=CallSerializer,
        responses=inline_serializer(
            "FunctionResult",
            {
                "id": serializers.CharField(),
                "name": serializers.CharField(),
                "connected": serializers.BooleanField(),
                "return_value": serializers.IntegerField(),
            },
        ),
    )
    def post(self, request, device: str, member: str):
        found = selectors.device_get_for_user(user=request.user, id_or_name=device)
        serializer = CallSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        argument = serializer.validated_data.get("arg", serializer.validated_data.get("args", ""))
        value = calls.device_function_call(device=found, function=member, argument=argument)
        if _wants_raw(request):
            return HttpResponse(str(value), content_type="text/plain; charset=utf-8")
        return Response({"id": found.id, "name": found.name, "connected": True, "return_value": value})


class ClaimCodeSerializer(serializers.Serializer):
    iccid = serializers.CharField(required=False, allow_blank=True, max_length=22)


class ClaimCodeView(QuantaAPIView):
    @extend_schema(
        summary="Create a claim code",
        request=ClaimCodeSerializer,
        responses=inline_serializer(
            "ClaimCode",
            {
                "claim_code": serializers.CharField(),
                "device_ids": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def post(self, request):
        serializer = ClaimCodeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        claim = services.claim_code_create(
            user=request.user, iccid=serializer.validated_data.get("iccid", "")
        )
        device_ids = list(selectors.device_list_for_user(user=request.user).values_list("id", flat=True))
        return Response({"claim_code": claim.code, "device_ids": device_ids})
