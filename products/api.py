"""/v1/products: list, get and create products; a product's team and its device groups."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from console.api.views import QuantaAPIView
from console.errors import NotFound
from products import groups, selectors, services
from products.serializers import ProductCreateSerializer, ProductInfoSerializer, product_info
from products.team import role_from_input, role_info

_PRODUCT_LIST = inline_serializer("ProductList", {"products": ProductInfoSerializer(many=True)})
_PRODUCT = inline_serializer("ProductDetail", {"product": ProductInfoSerializer()})


class ProductListView(QuantaAPIView):
    """``GET /v1/products`` (api-js) and ``GET /v1/user/products`` (the CLI): the products of the
    teams you are on. ``POST /v1/user/products`` creates one."""

    @extend_schema(
        operation_id="products_list",
        summary="List the products you are a team member of",
        responses=_PRODUCT_LIST,
    )
    def get(self, request):
        products = selectors.product_list_for_user(user=request.user).select_related("owner")
        return Response({"products": [product_info(product) for product in products]})

    @extend_schema(
        operation_id="products_create",
        summary="Create a product",
        request=ProductCreateSerializer,
        responses={201: _PRODUCT},
    )
    def post(self, request):
        serializer = ProductCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_create(user=request.user, via="api", **serializer.validated_data)
        return Response({"ok": True, "product": product_info(product)}, status=201)


class UserProductListView(ProductListView):
    """The same under ``/v1/user/products``, where Particle's CLI lists and creates products."""

    @extend_schema(
        operation_id="user_products_list",
        summary="List your products (as the CLI asks)",
        responses=_PRODUCT_LIST,
    )
    def get(self, request):
        return super().get(request)

    @extend_schema(
        operation_id="user_products_create",
        summary="Create a product (as the CLI sends it)",
        request=ProductCreateSerializer,
        responses={201: _PRODUCT},
    )
    def post(self, request):
        return super().post(request)


class ProductView(QuantaAPIView):
    @extend_schema(
        operation_id="products_retrieve", summary="A product, by numeric id or slug", responses=_PRODUCT
    )
    def get(self, request, product: str):
        access = selectors.product_access(user=request.user, id_or_slug=product)
        return Response({"product": product_info(access.product)})


# --- Team ---------------------------------------------------------------------------------------------------
def _member(membership) -> dict:
    return {
        "username": membership.user.email,
        "role": role_info(membership.role),
        "joined_at": membership.created_at,
    }


def _invited(invitation) -> dict:
    return {
        "username": invitation.user.email,
        "role": role_info(invitation.role),
        "invited_at": invitation.created_at,
        "invited_by": invitation.invited_by.email if invitation.invited_by else None,
    }


def _api_user(api_user) -> dict:
    return {
        "username": api_user.user.email,
        "is_programmatic": True,
        "friendly_name": api_user.friendly_name,
        "scopes": list(api_user.scopes),
        "created_at": api_user.created_at,
    }


class TeamInviteSerializer(serializers.Serializer):
    """Invite a person by ``username``, or create an API user with ``friendly_name`` and ``scopes``."""

    username = serializers.CharField(max_length=254, required=False)
    role = serializers.CharField(required=False, allow_blank=True, max_length=32)
    friendly_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    scopes = serializers.JSONField(required=False)

    def validate(self, attrs):
        if "friendly_name" not in attrs and "scopes" not in attrs and not attrs.get("username"):
            raise serializers.ValidationError(
                {
                    "username": "Send the username of someone to invite, or friendly_name and scopes for an API user."
                }
            )
        return attrs


class ApiUserUpdateSerializer(serializers.Serializer):
    friendly_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    scopes = serializers.JSONField(required=False)


class TeamView(QuantaAPIView):
    @extend_schema(
        operation_id="product_team_list",
        summary="The product's team and its pending invitations",
        responses=inline_serializer(
            "TeamList",
            {
                "ok": serializers.BooleanField(),
                "team": serializers.ListField(child=serializers.DictField()),
                "invitations": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request, product: str):
        access = selectors.product_access(user=request.user, id_or_slug=product, action="team.read")
        members = selectors.team_members(product=access.product)
        invitations = selectors.team_invitations(product=access.product)
        api_users = selectors.api_users(product=access.product)
        return Response(
            {
                "ok": True,
                "team": [_member(m) for m in members] + [_api_user(a) for a in api_users],
                "invitations": [_invited(i) for i in invitations],
            }
        )

    @extend_schema(
        operation_id="product_team_invite",
        summary="Invite someone with an account to the team, or create an API user",
        description=(
            "With `username` (and optionally `role`), invites a person. With `friendly_name` and `scopes`, "
            "creates an API user and answers its never-expiring token, shown this once."
        ),
        request=TeamInviteSerializer,
        responses=inline_serializer(
            "TeamInvited",
            {
                "ok": serializers.BooleanField(),
                "invited": serializers.DictField(required=False),
                "created": serializers.DictField(required=False),
            },
        ),
    )
    def post(self, request, product: str):
        access = selectors.product_access(user=request.user, id_or_slug=product, action="team.manage")
        serializer = TeamInviteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "friendly_name" in data or "scopes" in data:
            created = services.api_user_create(
                actor=request.user,
                product=access.product,
                friendly_name=data.get("friendly_name"),
                scopes=data.get("scopes", []),
                via="api",
            )
            body = {**_api_user(created.api_user), "tokens": [{"token": created.token}]}
            return Response({"ok": True, "created": body})
        invitation = services.team_invite(
            actor=request.user,
            product=access.product,
            email=serializer.validated_data["username"],
            role=role_from_input(serializer.validated_data.get("role")),
            via="api",
        )
        return Response({"ok": True, "invited": _invited(invitation)})


class TeamMemberView(QuantaAPIView):
    @extend_schema(
        operation_id="product_team_remove",
        summary="Remove a member, cancel their invitation, or leave the team (your own username)",
        responses=inline_serializer("TeamRemoved", {"ok": serializers.BooleanField()}),
    )
    def delete(self, request, product: str, username: str):
        access = selectors.product_access(user=request.user, id_or_slug=product, action="team.read")
        api_user = selectors.api_user_by_username(product=access.product, username=username)
        if api_user is not None:
            access.require("team.manage")
            services.api_user_delete(actor=request.user, api_user=api_user, via="api")
            return Response({"ok": True})
        invitation = selectors.team_invitation_for(product=access.product, email=username)
        if invitation is not None:
            access.require("team.manage")
            services.invitation_cancel(actor=request.user, invitation=invitation, via="api")
            return Response({"ok": True})
        member = selectors.team_member_user(product=access.product, email=username)
        services.member_remove(
            actor=request.user, actor_role=access.role, product=access.product, member=member, via="api"
        )
        return Response({"ok": True})

    @extend_schema(
        operation_id="product_api_user_update",
        summary="Rename an API user or replace its scopes",
        request=ApiUserUpdateSerializer,
        responses=inline_serializer(
            "ApiUserUpdated", {"ok": serializers.BooleanField(), "updated": serializers.DictField()}
        ),
    )
    def put(self, request, product: str, username: str):
        access = selectors.product_access(user=request.user, id_or_slug=product, action="team.manage")
        api_user = selectors.api_user_by_username(product=access.product, username=username)
        if api_user is None:
            raise NotFound(f"{username} is not an API user of this product.")
        serializer = ApiUserUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_user = services.api_user_update(
            actor=request.user,
            api_user=api_user,
            friendly_name=serializer.validated_data.get("friendly_name"),
            scopes=serializer.validated_data.get("scopes"),
            via="api",
        )
        return Response({"ok": True, "updated": _api_user(api_user)})


# --- Device groups ------------------------------------------------------------------------------------
class GroupInfoSerializer(serializers.Serializer):
    """Schema only: responses are built by ``products.groups.group_info``."""

    name = serializers.CharField()
    description = serializers.CharField()
    color = serializers.CharField()
    fw_version = serializers.IntegerField(allow_null=True)
    device_count = serializers.IntegerField()


class GroupWriteSerializer(serializers.Serializer):
    """Schema only: the services check the values and word the refusals."""

    name = serializers.CharField(required=False, help_text="lowercase letters, digits, - and _; at most 64")
    description = serializers.CharField(required=False, allow_blank=True)
    color = serializers.CharField(required=False, help_text="hex, like #0d9488")


_GROUP = inline_serializer("GroupDetail", {"group": GroupInfoSerializer()})


def _group_fields(request) -> dict:
    """The name, description and color the request sent (JSON or form), untouched."""
    data = request.data
    return {field: data.get(field) for field in ("name", "description", "color") if field in data}


class GroupListView(QuantaAPIView):
    @extend_schema(
        operation_id="product_groups_list",
        summary="The product's device groups, with their device counts",
        parameters=[OpenApiParameter("name", str, description="groups whose name contains this")],
        responses=inline_serializer("GroupList", {"groups": GroupInfoSerializer(many=True)}),
    )
    def get(self, request, product: str):
        access = selectors.product_access(user=request.user, id_or_slug=product, action="device.read")
        found = groups.group_list(product=access.product, name=request.query_params.get("name", ""))
        return Response({"groups": [groups.group_info(group) for group in found]})

    @extend_schema(
        operation_id="product_groups_create",
        summary="Create a device group",
        request=GroupWriteSerializer,
        responses={201: _GROUP},
    )
    def post(self, request, product: str):
        access = selectors.product_access(user=request.user, id_or_slug=product, action="group.manage")
        fields = _group_fields(request)
        group = groups.group_create(
            actor=request.user,
            product=access.product,
            name=fields.get("name", ""),
            description=fields.get("description", ""),
            color=fields.get("color"),
            via="api",
        )
        return Response({"group": groups.group_info(group)}, status=201)


class GroupView(QuantaAPIView):
    @extend_schema(operation_id="product_group_retrieve", summary="A device group", responses=_GROUP)
    def get(self, request, product: str, name: str):
        access = selectors.product_access(user=request.user, id_or_slug=product, action="device.read")
        return Response({"group": groups.group_info(groups.group_get(product=access.product, name=name))})

    @extend_schema(
        operation_id="product_group_update",
        summary="Rename, recolor or describe a device group (renaming keeps its devices)",
        request=GroupWriteSerializer,
        responses=_GROUP,
    )
    def put(self, request, product: str, name: str):
        access = selectors.product_access(user=request.user, id_or_slug=product, action="group.manage")
        group = groups.group_get(product=access.product, name=name, counted=False)
        fields = _group_fields(request)
        group = groups.group_edit(
            actor=request.user, product=access.product, group=group, via="api", **fields
        )
        return Response({"group": groups.group_info(group)})

    @extend_schema(
        operation_id="product_group_delete",
        summary="Delete a device group; its devices leave it",
        responses={204: None},
    )
    def delete(self, request, product: str, name: str):
        access = selectors.product_access(user=request.user, id_or_slug=product, action="group.manage")
        group = groups.group_get(product=access.product, name=name, counted=False)
        groups.group_delete(actor=request.user, product=access.product, group=group, via="api")
        return Response(status=204)
