"""/v1/products/:p/devices: a product's devices: list, import, get, remove (and deny)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from console.api.pagination import PageNumberPagination
from console.api.views import QuantaAPIView
from console.errors import ApplicationError
from devices import imports, selectors
from devices.models import Device
from devices.serializers import DeviceDetailSerializer, DeviceSummarySerializer, device_detail, device_summary
from products.selectors import product_access

# Particle's sortAttr values, and the sorts of the list's selector (shared with the console page).
SORTS = {
    "deviceName": "name",
    "deviceId": "id",
    "firmwareVersion": "firmware_version",
    "lastConnection": "last_heard",
}
_TRUE = {"1", "true", "yes", "on"}


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


def product_device_summary(device: Device) -> dict:
    return {**device_summary(device), "quarantined": device.quarantined, "denied": False, "groups": []}


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
            OpenApiParameter("sortAttr", str, enum=list(SORTS)),
            OpenApiParameter("sortDir", str, enum=["asc", "desc"]),
            OpenApiParameter("page", int),
            OpenApiParameter("perPage", int, description="at most 100"),
        ],
        responses=DeviceSummarySerializer(many=True),
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
            sort=SORTS[sort],
            descending=params.get("sortDir", "asc").lower() == "desc",
        )
        if params.get("groups", "").strip(" ,"):
            devices = devices.none()  # devices in these groups only, and no device is in a group yet
        paginator = ProductDevicePagination()
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
