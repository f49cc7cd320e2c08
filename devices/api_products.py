"""/v1/products/:p/devices: a product's devices: list, import, get, change (groups, development,
notes), remove (and deny), and batch changes (groups, development)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.paginator import Paginator as DjangoPaginator
from django.db import transaction
from django.http import QueryDict
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from console.api.pagination import PageNumberPagination
from console.api.views import QuantaAPIView
from console.errors import ApplicationError
from devices import groups, imports, selectors, services
from devices.api import flash_by_hand, uploaded_binary
from devices.models import Device
from devices.product_fields import product_device_field_names, product_device_fields_in
from devices.serializers import (
    DeviceDetailSerializer,
    ProductDeviceSummarySerializer,
    device_detail,
    device_summary,
)
from products.selectors import product_access

# Particle's sortAttr values, and the sorts of the list's selector (shared with the console page).
SORTS = {
    "deviceName": "name",
    "deviceId": "id",
    "firmwareVersion": "firmware_version",
    "lastConnection": "last_heard",
}
_TRUE = {"1", "true", "yes", "on"}
# The batch PUT's actions, and what each needs the role to allow.
BATCH_ACTIONS = {"groups": "group.manage", "development": "device.update"}


class ProductDevicePagination(PageNumberPagination):
    results_key = "devices"
    page_size_query_param = "perPage"
    max_page_size = 100

    def get_page_size(self, request):
        # Particle's clients send perPage; per_page works too.
        if "per_page" in request.query_params and "perPage" not in request.query_params:
            self.page_size_query_param = "per_page"
        return super().get_page_size(request)

    def get_paginated_response(self, data) -> Response:
        return Response({"devices": data, "customers": [], "meta": self.meta()})

    known_count: int | None = (
        None  # set when the view counts more cheaply than COUNT(*) over the page's query
    )

    def django_paginator_class(self, queryset, page_size) -> DjangoPaginator:
        paginator = DjangoPaginator(queryset, page_size)
        if self.known_count is not None:
            paginator.count = self.known_count
        return paginator


def product_device_summary(device: Device) -> dict:
    return {
        **device_summary(device),
        "quarantined": device.quarantined,
        "denied": False,
        "groups": groups.device_group_names(device),
    }


def _group_names_param(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


class ProductDeviceListView(QuantaAPIView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        operation_id="product_devices_list",
        summary="A product's devices",
        parameters=[
            OpenApiParameter("deviceId", str, description="devices whose ID starts with this"),
            OpenApiParameter("deviceName", str, description="devices whose name contains this"),
            OpenApiParameter("serialNumber", str),
            OpenApiParameter("quarantined", bool, description="only the devices waiting for approval"),
            OpenApiParameter(
                "groups", str, description="devices in any of these groups (comma-separated names)"
            ),
            OpenApiParameter("sortAttr", str, enum=list(SORTS)),
            OpenApiParameter("sortDir", str, enum=["asc", "desc"]),
            OpenApiParameter("page", int),
            OpenApiParameter("perPage", int, description="at most 100"),
        ],
        responses=ProductDeviceSummarySerializer(many=True),
    )
    def get(self, request, product: str):
        access = product_access(user=request.user, id_or_slug=product, action="device.read")
        params = request.query_params
        sort = params.get("sortAttr", "deviceName")
        if sort not in SORTS:
            raise ApplicationError(f"sortAttr is one of {', '.join(SORTS)}.", field="sortAttr")
        devices = selectors.product_device_list(
            product=access.product,
            device_id=params.get("deviceId", ""),
            name=params.get("deviceName", ""),
            serial_number=params.get("serialNumber", ""),
            quarantined=params["quarantined"].lower() in _TRUE if "quarantined" in params else None,
            groups=_group_names_param(params["groups"]) if "groups" in params else None,
            sort=SORTS[sort],
            descending=params.get("sortDir", "asc").lower() == "desc",
        )
        paginator = ProductDevicePagination()
        only_groups = "groups" in params and not any(
            params.get(name) for name in ("deviceId", "deviceName", "serialNumber", "quarantined")
        )
        if only_groups:
            paginator.known_count = selectors.product_group_member_count(
                product=access.product, names=_group_names_param(params["groups"])
            )
        page = paginator.paginate_queryset(devices, request, view=self)
        return paginator.get_paginated_response([product_device_summary(device) for device in page])

    @extend_schema(
        operation_id="product_devices_import",
        summary="Import devices into a product: an id, JSON ids, or a text file (one id per line)",
        request=inline_serializer(
            "ProductDeviceImport",
            {
                "id": serializers.CharField(required=False),
                "ids": serializers.ListField(child=serializers.CharField(), required=False),
                "file": serializers.FileField(required=False),
            },
        ),
        responses=inline_serializer(
            "ProductDeviceImported",
            {
                "updated": serializers.IntegerField(),
                "updatedDeviceIds": serializers.ListField(child=serializers.CharField()),
                "existingDeviceIds": serializers.ListField(child=serializers.CharField()),
                "nonmemberDeviceIds": serializers.ListField(child=serializers.CharField()),
                "invalidDeviceIds": serializers.ListField(child=serializers.CharField()),
                "protectedDeviceIds": serializers.ListField(child=serializers.CharField()),
                "otherPlatformDeviceIds": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def post(self, request, product: str):
        access = product_access(user=request.user, id_or_slug=product, action="device.import")
        parsed = _ids_from_request(request)
        result = imports.devices_import(actor=request.user, product=access.product, parsed=parsed, via="api")
        return Response(result.as_api())

    @extend_schema(
        operation_id="product_devices_batch",
        summary="Change many devices at once: add them to groups or remove them from groups, or mark "
        "them as development devices",
        request=inline_serializer(
            "ProductDeviceBatch",
            {
                "action": serializers.ChoiceField(choices=list(BATCH_ACTIONS)),
                "devices": serializers.ListField(child=serializers.CharField()),
                "metadata": inline_serializer(
                    "ProductDeviceBatchMetadata",
                    {
                        "add": serializers.ListField(child=serializers.CharField(), required=False),
                        "remove": serializers.ListField(child=serializers.CharField(), required=False),
                        "development": serializers.BooleanField(required=False),
                    },
                ),
            },
        ),
        responses=inline_serializer("ProductDeviceBatchDone", {"ok": serializers.BooleanField()}),
    )
    def put(self, request, product: str):
        access = product_access(user=request.user, id_or_slug=product, action="device.read")
        data = request.data
        action = data.get("action") if isinstance(data, dict) else None
        if action not in BATCH_ACTIONS:
            raise ApplicationError(f"action is one of {', '.join(BATCH_ACTIONS)}.", field="action")
        access.require(BATCH_ACTIONS[action])
        metadata = data.get("metadata")
        if not isinstance(metadata, dict):
            raise ApplicationError("metadata is an object with the change to make.", field="metadata")
        device_ids = data.get("devices")
        if isinstance(data, QueryDict):
            device_ids = data.getlist("devices[]") or data.getlist("devices")
        kwargs = {"actor": request.user, "product": access.product, "device_ids": device_ids, "via": "api"}
        if action == "development":
            groups.devices_development_set(development=metadata.get("development"), **kwargs)
            return Response({"ok": True})
        if "add" not in metadata and "remove" not in metadata:
            raise ApplicationError("metadata names the groups to add or remove.", field="metadata")
        with transaction.atomic():
            if "add" in metadata:
                groups.devices_groups_add(names=metadata["add"], **kwargs)
            if "remove" in metadata:
                groups.devices_groups_remove(names=metadata["remove"], **kwargs)
        return Response({"ok": True})


class _BodyTooLarge(ApplicationError):
    status_code = 413


def _ids_from_request(request) -> imports.ParsedIds:
    try:
        upload = request.FILES.get("file")  # parses the body
    except RequestDataTooBig:
        # A long JSON list of ids: Django caps request bodies other than uploaded files.
        raise _BodyTooLarge(
            f"The request is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes. Send that many "
            "device IDs as a file, one per line.",
            field="ids",
        ) from None
    if upload is not None:
        imports.import_file_size_check(upload.size)  # before reading it
        return imports.device_ids_from_file(upload.read())
    ids = request.data.get("ids")
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(value, str) for value in ids):
            raise ApplicationError("ids is a list of device IDs.", field="ids")
        parsed = imports.device_ids_parse(ids)
    elif isinstance(request.data.get("id"), str) and request.data["id"].strip():
        parsed = imports.device_ids_parse([request.data["id"]])
    else:
        raise ApplicationError(
            "Send a device id, a list of ids, or a file with one device ID per line.", field="id"
        )
    return parsed


class ProductDeviceView(QuantaAPIView):
    @extend_schema(
        operation_id="product_device_retrieve",
        summary="A device of the product",
        responses=DeviceDetailSerializer,
    )
    def get(self, request, product: str, device: str):
        access = product_access(user=request.user, id_or_slug=product, action="device.read")
        found = imports.product_device_get(product=access.product, id_or_name=device)
        return Response({**device_detail(found), "quarantined": found.quarantined})

    @extend_schema(
        operation_id="product_device_update",
        summary="Change a device of the product: its groups (an absolute set; unknown names are "
        "created), whether it is a development device, its notes",
        request=inline_serializer(
            "ProductDeviceUpdate",
            {
                "groups": serializers.ListField(child=serializers.CharField(), required=False),
                "development": serializers.BooleanField(required=False),
                "notes": serializers.CharField(required=False, allow_blank=True),
                "desired_firmware_version": serializers.IntegerField(required=False, allow_null=True),
                "flash": serializers.BooleanField(required=False),
            },
        ),
        responses=inline_serializer(
            "ProductDeviceUpdated",
            {
                "id": serializers.CharField(),
                "groups": serializers.ListField(child=serializers.CharField()),
                "development": serializers.BooleanField(required=False),
                "notes": serializers.CharField(required=False),
                "desired_firmware_version": serializers.IntegerField(required=False, allow_null=True),
                "updated_at": serializers.DateTimeField(),
            },
        ),
    )
    def put(self, request, product: str, device: str):
        access = product_access(user=request.user, id_or_slug=product, action="device.update")
        found = imports.product_device_get(product=access.product, id_or_name=device)
        if (upload := uploaded_binary(request)) is not None:
            access.require("firmware.lock")
            return Response(flash_by_hand(actor=request.user, device=found, upload=upload))
        data = request.data
        if not isinstance(data, dict):
            raise ApplicationError("Send an object with groups, development or notes.", field="groups")
        names = _groups_from_body(data)
        development = data.get("development") if "development" in data else None
        if isinstance(development, str):  # a form field
            development = development.strip().lower() in _TRUE
        notes = data.get("notes") if "notes" in data else None
        extra_fields = product_device_fields_in(data)
        if names is None and development is None and notes is None and not extra_fields:
            known = ", ".join(["groups", "development", "notes", *product_device_field_names()])
            raise ApplicationError(f"Nothing to change: send one of {known}.", field="groups")
        if names is not None:
            access.require("group.manage")
        for handler in extra_fields:
            access.require(handler.action)
        if notes is not None and not isinstance(notes, str):
            raise ApplicationError("notes is text.", field="notes")
        answer: dict = {"id": found.id}
        with transaction.atomic():
            if names is not None:
                groups.device_groups_set(
                    actor=request.user, product=access.product, device=found, names=names, via="api"
                )
            if development is not None:
                groups.devices_development_set(
                    actor=request.user,
                    product=access.product,
                    device_ids=[found.id],
                    development=development,
                    via="api",
                )
                answer["development"] = development
            if notes is not None:
                services.device_notes_update(user=request.user, device=found, notes=notes.strip(), via="api")
                answer["notes"] = notes.strip()
            for handler in extra_fields:
                answer.update(
                    handler.apply(
                        actor=request.user, product=access.product, device=found, data=data, via="api"
                    )
                )
        found = Device.objects.prefetch_related("groups").get(pk=found.pk)
        return Response(
            {**answer, "groups": groups.device_group_names(found), "updated_at": found.updated_at}
        )

    @extend_schema(
        operation_id="product_device_remove",
        summary="Remove a device from the product; with deny, it may not rejoin at handshake",
        request=inline_serializer("ProductDeviceRemove", {"deny": serializers.BooleanField(required=False)}),
        responses={204: None},
    )
    def delete(self, request, product: str, device: str):
        access = product_access(user=request.user, id_or_slug=product, action="device.remove")
        found = imports.product_device_get(product=access.product, id_or_name=device)
        deny = str(request.data.get("deny", request.query_params.get("deny", ""))).lower() in _TRUE
        imports.device_remove_from_product(
            actor=request.user, product=access.product, device=found, deny=deny, via="api"
        )
        return Response(status=204)


def _groups_from_body(data) -> list | None:
    """The device's groups as sent: a JSON list, or form fields ``groups[]`` (or ``groups``); an
    empty form value clears them. None when the request does not set groups."""
    if isinstance(data, QueryDict):
        for key in ("groups[]", "groups"):
            if key in data:
                return [value for value in data.getlist(key) if value.strip()]
        return None
    if "groups" not in data:
        return None
    value = data["groups"]
    if not isinstance(value, list):
        raise ApplicationError("groups is a list of group names.", field="groups")
    return value
