"""Products in the shapes of Particle's API (PARTICLE_API.md §2.3: ProductInfo)."""

from __future__ import annotations

from rest_framework import serializers

from console.platforms import platform_get
from products.models import Product, QuarantinePolicy


def product_info(product: Product) -> dict:
    platform = platform_get(product.platform_id)
    return {
        "id": product.id,
        "platform_id": product.platform_id,
        "platform": platform.name if platform else None,
        "name": product.name,
        "slug": product.slug,
        "description": product.description,
        "user": product.owner.email,
        "org": None,
        "groups": [],
        "settings": {
            "quarantine": product.quarantine_policy == QuarantinePolicy.QUARANTINE,
            "event_data_limit": product.event_data_limit,
        },
        "created_at": product.created_at,
    }


class ProductSettingsSerializer(serializers.Serializer):
    quarantine = serializers.BooleanField()
    event_data_limit = serializers.IntegerField()


class ProductInfoSerializer(serializers.Serializer):
    """For the schema: what ``product_info`` returns."""

    id = serializers.IntegerField()
    platform_id = serializers.IntegerField()
    platform = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    slug = serializers.CharField()
    description = serializers.CharField()
    user = serializers.EmailField()
    org = serializers.CharField(allow_null=True)
    groups = serializers.ListField(child=serializers.CharField())
    settings = ProductSettingsSerializer()
    created_at = serializers.DateTimeField()


class ProductCreateFieldsSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, trim_whitespace=True)
    platform_id = serializers.IntegerField()
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class ProductCreateSerializer(serializers.Serializer):
    """``{product: {name, description, platform_id}}`` as Particle's CLI sends it; the flat form
    (``name``, ``platform_id``, ``description``) is accepted too."""

    product = ProductCreateFieldsSerializer(required=False)
    name = serializers.CharField(required=False, max_length=200)
    platform_id = serializers.IntegerField(required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def validate(self, attrs):
        fields = attrs.get("product") or {
            key: attrs[key] for key in ("name", "platform_id", "description") if key in attrs
        }
        missing = [key for key in ("name", "platform_id") if key not in fields]
        if missing:
            raise serializers.ValidationError({key: "This field is required." for key in missing})
        return {
            "name": fields["name"],
            "platform_id": fields["platform_id"],
            "description": fields.get("description", ""),
        }
