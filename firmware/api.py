"""/v1/products/:p/firmware: list, upload, get, edit, download and delete a product's firmware
versions (Particle's shapes, PARTICLE_API.md §2.4)."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from console.api.views import QuantaAPIView
from console.errors import ApplicationError
from firmware import releases, selectors, services
from firmware.models import ProductFirmware
from products.selectors import product_access

FIRMWARE_FILE_FIELDS = ("file", "binary")  # api-js sends "file"; older servers took "binary"


def firmware_info(firmware: ProductFirmware, *, device_count: int = 0) -> dict:
    """A firmware object with both of Particle's spellings of its fields (``current`` and
    ``product_default``, ``uploaded_on`` and ``uploaded_at``), as the clients read either."""
    releases = list(firmware.releases.all())
    product_default = any(release.group_id is None for release in releases)
    return {
        "_id": str(firmware.pk),
        "version": firmware.version,
        "title": firmware.title,
        "description": firmware.description,
        "name": "firmware.bin",
        "size": firmware.size,
        "sha256": firmware.sha256,
        "product_id": firmware.product_id,
        "product_default": product_default,
        "current": product_default,
        "groups": sorted(release.group.name for release in releases if release.group_id is not None),
        "intelligent": any(release.intelligent for release in releases),
        "device_count": device_count,
        "mandatory": False,
        "uploaded_on": firmware.uploaded_at,
        "uploaded_at": firmware.uploaded_at,
        "updated_at": firmware.updated_at,
        "uploaded_by": {"username": firmware.uploaded_by.email} if firmware.uploaded_by else None,
        "released": firmware.first_released_at is not None,
        "ran_on_device": firmware.first_run_at is not None,
    }


def _firmware_response(product, version: object, status: int = 200) -> Response:
    """A version as it is now in the database, with how many devices run it."""
    firmware = selectors.firmware_get(product=product, version=version)
    counts = selectors.running_counts(product=product)
    return Response(firmware_info(firmware, device_count=counts.get(firmware.version, 0)), status=status)


class FirmwareInfoSerializer(serializers.Serializer):
    """Schema only: responses are built by ``firmware_info``."""

    _id = serializers.CharField()
    version = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    product_id = serializers.IntegerField()
    product_default = serializers.BooleanField()
    current = serializers.BooleanField()
    groups = serializers.ListField(child=serializers.CharField())
    intelligent = serializers.BooleanField()
    device_count = serializers.IntegerField()
    mandatory = serializers.BooleanField()
    uploaded_on = serializers.DateTimeField()
    uploaded_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    uploaded_by = serializers.DictField(allow_null=True)
    released = serializers.BooleanField()
    ran_on_device = serializers.BooleanField()


class FirmwareUploadSerializer(serializers.Serializer):
    """Schema only: the upload is read from the multipart form by hand (two file field names)."""

    file = serializers.FileField(help_text="The binary (also accepted as `binary`).")
    version = serializers.IntegerField(help_text="The PRODUCT_VERSION compiled into the binary.")
    title = serializers.CharField()
    description = serializers.CharField(required=False)


class FirmwareEditSerializer(serializers.Serializer):
    title = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    current = serializers.BooleanField(required=False, help_text="True releases it as the product default.")


def _uploaded_binary(request) -> bytes:
    try:
        files = request.FILES  # parses the body
    except RequestDataTooBig:
        raise ApplicationError("Send the binary as a multipart file named file.", field="file") from None
    upload = next((files[name] for name in FIRMWARE_FILE_FIELDS if name in files), None)
    if upload is None:
        raise ApplicationError("Attach the firmware binary as a multipart file named file.", field="file")
    services.firmware_size_check(upload.size)  # before reading it
    return upload.read()


class FirmwareListView(QuantaAPIView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        operation_id="product_firmware_list",
        summary="The product's firmware versions, newest first",
        responses=FirmwareInfoSerializer(many=True),
    )
    def get(self, request, product: str):
        access = product_access(user=request.user, id_or_slug=product, action="firmware.read")
        counts = selectors.running_counts(product=access.product)
        return Response(
            [
                firmware_info(firmware, device_count=counts.get(firmware.version, 0))
                for firmware in selectors.firmware_list(product=access.product)
            ]
        )

    @extend_schema(
        operation_id="product_firmware_upload",
        summary="Upload a firmware version",
        description=(
            "The binary must be an application module for the product's platform whose PRODUCT_VERSION "
            "is `version` and, when it names one, whose PRODUCT_ID is this product; its CRC-32 and "
            "SHA-256 must hold."
        ),
        request={"multipart/form-data": FirmwareUploadSerializer},
        responses={201: FirmwareInfoSerializer},
    )
    def post(self, request, product: str):
        access = product_access(user=request.user, id_or_slug=product, action="firmware.upload")
        data = _uploaded_binary(request)
        firmware = services.firmware_upload(
            actor=request.user,
            product=access.product,
            data=data,
            version=request.data.get("version"),
            title=request.data.get("title"),
            description=request.data.get("description", ""),
            via="api",
        )
        return _firmware_response(access.product, firmware.version, status=201)


class FirmwareView(QuantaAPIView):
    @extend_schema(
        operation_id="product_firmware_get",
        summary="One firmware version",
        responses=FirmwareInfoSerializer,
    )
    def get(self, request, product: str, version: str):
        access = product_access(user=request.user, id_or_slug=product, action="firmware.read")
        return _firmware_response(access.product, version)

    @extend_schema(
        operation_id="product_firmware_edit",
        summary="Edit a version's title and description",
        request=FirmwareEditSerializer,
        responses=FirmwareInfoSerializer,
    )
    def put(self, request, product: str, version: str):
        access = product_access(user=request.user, id_or_slug=product, action="firmware.upload")
        firmware = selectors.firmware_get(product=access.product, version=version)
        current = _flag(request.data.get("current"))  # the older API's way to release as the default
        if current is not None:
            access.require("firmware.release")
        with transaction.atomic():
            services.firmware_update(
                actor=request.user,
                firmware=firmware,
                title=request.data.get("title"),
                description=request.data.get("description"),
                via="api",
            )
            if current is not None:
                releases.firmware_release(
                    actor=request.user,
                    product=access.product,
                    firmware=firmware,
                    product_default=current,
                    group_names=None,
                    via="api",
                )
        return _firmware_response(access.product, version)

    @extend_schema(
        operation_id="product_firmware_delete",
        summary="Delete a version that was never released",
        responses={204: OpenApiResponse(description="Deleted")},
    )
    def delete(self, request, product: str, version: str):
        access = product_access(user=request.user, id_or_slug=product, action="firmware.upload")
        firmware = selectors.firmware_get(product=access.product, version=version)
        services.firmware_delete(actor=request.user, firmware=firmware, via="api")
        return Response(status=204)


class FirmwareBinaryView(QuantaAPIView):
    @extend_schema(
        operation_id="product_firmware_download",
        summary="Download a version's binary",
        responses={(200, "application/octet-stream"): OpenApiResponse(description="The binary")},
    )
    def get(self, request, product: str, version: str):
        access = product_access(user=request.user, id_or_slug=product, action="firmware.read")
        firmware = selectors.firmware_get(product=access.product, version=version)
        response = HttpResponse(
            selectors.firmware_binary(firmware=firmware), content_type="application/octet-stream"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{access.product.slug}-v{firmware.version}.bin"'
        )
        response["Content-Length"] = str(firmware.size)
        return response


# --- releasing ------------------------------------------------------------------------------------------
def _flag(value: object) -> bool | None:
    """A boolean from JSON or a form; None when absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ApplicationError(f"Expected true or false, not {str(value)[:20]!r}.")


def _group_names(request) -> list | None:
    data = request.data
    if hasattr(data, "getlist"):
        for key in ("groups[]", "groups"):
            if key in data:
                values = data.getlist(key)
                if len(values) == 1 and "," in values[0]:
                    values = values[0].split(",")
                return [value for value in values if value.strip()]
        return None
    if "groups" not in data:
        return None
    groups = data["groups"]
    if isinstance(groups, str):
        return [name for name in groups.split(",") if name.strip()]
    if not isinstance(groups, list):
        raise ApplicationError("groups is a list of group names.", field="groups")
    return groups


class FirmwareReleaseSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    product_default = serializers.BooleanField(required=False)
    groups = serializers.ListField(child=serializers.CharField(), required=False)
    intelligent = serializers.BooleanField(required=False)


class FirmwareReleaseView(QuantaAPIView):
    @extend_schema(
        operation_id="product_firmware_release",
        summary="Release a version as the product default and/or to groups",
        description=(
            "Sets exactly where `version` is released: `product_default` true makes it the default, false "
            "takes the default away from it; `groups` are exactly the groups it is released to. A field left "
            "out keeps its current state. Refused until a device of the product has run the version."
        ),
        request=FirmwareReleaseSerializer,
        responses=FirmwareInfoSerializer,
    )
    def put(self, request, product: str):
        access = product_access(user=request.user, id_or_slug=product, action="firmware.release")
        firmware = selectors.firmware_get(product=access.product, version=request.data.get("version"))
        releases.firmware_release(
            actor=request.user,
            product=access.product,
            firmware=firmware,
            product_default=_flag(request.data.get("product_default")),
            group_names=_group_names(request),
            intelligent=bool(_flag(request.data.get("intelligent"))),
            via="api",
        )
        return _firmware_response(access.product, firmware.version)


class ImpactView(QuantaAPIView):
    @extend_schema(
        operation_id="product_firmware_impact",
        summary="How many devices a release would update, by the version they run now",
        parameters=[
            OpenApiParameter("version", int, required=True),
            OpenApiParameter("product_default", bool, description="Preview it as the product default"),
            OpenApiParameter("groups", str, description="Comma-separated groups to preview it released to"),
        ],
        responses=inline_serializer(
            "FirmwareImpact",
            {
                "version": serializers.IntegerField(),
                "devices": serializers.IntegerField(),
                "by_running_version": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request, product: str):
        access = product_access(user=request.user, id_or_slug=product, action="firmware.read")
        params = request.query_params
        firmware = selectors.firmware_get(product=access.product, version=params.get("version"))
        groups = params.get("groups")
        plan = releases.release_plan(
            product=access.product,
            firmware=firmware,
            product_default=_flag(params.get("product_default")),
            group_names=None if groups is None else [name for name in groups.split(",") if name.strip()],
        )
        return Response(releases.release_impact(product=access.product, plan=plan).as_api())
