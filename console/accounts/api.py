"""/v1 endpoints for the signed-in user and their access tokens (PARTICLE_API.md §1.3, §2.8)."""

from __future__ import annotations

import base64
import binascii

from django.contrib.auth import authenticate
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import authentication, exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from console.accounts import selectors, services, throttle
from console.accounts.tokens import expires_at_for, parse_expires_in
from console.api.authentication import AccessTokenAuthentication, ConsoleSessionAuthentication
from console.api.views import QuantaAPIView
from console.errors import NotFound, RateLimited
from console.http import client_ip


class PasswordBasicAuthentication(authentication.BaseAuthentication):
    """``username:password`` as HTTP Basic, which Particle's token-management routes accept.

    Failures count toward the same login throttle as /oauth/token and the console."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return None
        try:
            username, _, password = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise exceptions.AuthenticationFailed("Malformed HTTP Basic credentials.") from None
        ip = client_ip(request._request)
        try:
            throttle.login_check_allowed(ip=ip, username=username)
        except RateLimited as limited:
            raise exceptions.Throttled(wait=limited.retry_after, detail=limited.message) from None
        user = authenticate(request._request, username=username, password=password)
        if user is None or not user.is_active:
            throttle.login_record_failure(ip=ip, username=username)
            raise exceptions.AuthenticationFailed("User credentials are invalid")
        throttle.login_record_success(ip=ip)
        return user, None

    def authenticate_header(self, request) -> str:
        return 'Basic realm="api"'


class OkSerializer(serializers.Serializer):
    ok = serializers.BooleanField()


class TokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    token = serializers.CharField(
        help_text="The last characters only, except in the response that creates it."
    )
    client = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True, help_text="null: never expires.")
    last_used_at = serializers.DateTimeField(allow_null=True)
    description = serializers.CharField()


class CurrentTokenSerializer(serializers.Serializer):
    expires_at = serializers.DateTimeField(allow_null=True)
    client_id = serializers.CharField(allow_null=True)
    client = serializers.CharField(allow_null=True)
    scopes = serializers.ListField(child=serializers.CharField())
    orgs = serializers.ListField(child=serializers.DictField())


TOKEN_MANAGEMENT_AUTH = [PasswordBasicAuthentication, AccessTokenAuthentication, ConsoleSessionAuthentication]


def _token_json(access_token) -> dict:
    detail = getattr(access_token, "detail", None)
    expires_at = expires_at_for(created=access_token.created, expires=access_token.expires)
    return {
        "id": access_token.pk,
        # Tokens are stored hashed: the list can show only their last characters.
        "token": f"…{detail.hint}" if detail else "…",
        "client": access_token.application.client_id if access_token.application else None,
        "created_at": access_token.created,
        "expires_at": expires_at,
        "last_used_at": detail.last_used_at if detail else None,
        "description": detail.description if detail else "",
    }


class UserView(QuantaAPIView):
    @extend_schema(
        summary="The signed-in user",
        responses=inline_serializer(
            "User",
            {
                "username": serializers.EmailField(),
                "subscription_ids": serializers.ListField(child=serializers.IntegerField()),
                "account_info": serializers.DictField(),
                "mfa": serializers.DictField(),
                "scim_provisioned": serializers.BooleanField(),
                "no_password": serializers.BooleanField(),
            },
        ),
    )
    def get(self, request):
        user = request.user
        return Response(
            {
                "username": user.email,
                "subscription_ids": [],
                "account_info": {
                    "first_name": user.first_name,
                    "last_name": user.last_name,
                    "business_account": False,
                },
                "mfa": {"enabled": False},
                "scim_provisioned": False,
                "no_password": False,
                "wifi_device_count": 0,
                "cellular_device_count": 0,
            }
        )


class SignUpSerializer(serializers.Serializer):
    username = serializers.EmailField()
    password = serializers.CharField(write_only=True)


class UsersView(QuantaAPIView):
    """``POST /v1/users``: create an account, as Particle's API does."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(summary="Create an account", request=SignUpSerializer, responses=OkSerializer)
    def post(self, request):
        serializer = SignUpSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_sign_up(
            email=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
            ip_address=client_ip(request._request),
        )
        return Response({"ok": True})


class CurrentTokenView(QuantaAPIView):
    authentication_classes = [AccessTokenAuthentication]

    def _current(self, request):
        if request.auth is None:
            raise exceptions.NotAuthenticated()
        return request.auth

    @extend_schema(summary="The access token of this request", responses=CurrentTokenSerializer)
    def get(self, request):
        access_token = self._current(request)
        return Response(
            {
                "expires_at": expires_at_for(created=access_token.created, expires=access_token.expires),
                "client_id": access_token.application.client_id if access_token.application else None,
                "client": access_token.application.client_id if access_token.application else None,
                "scopes": [],
                "orgs": [],
            }
        )

    @extend_schema(summary="Revoke the access token of this request (log out)", responses=OkSerializer)
    def delete(self, request):
        access_token = self._current(request)
        services.access_token_revoke(
            user=request.user, access_token=access_token, ip_address=client_ip(request._request), via="api"
        )
        return Response({"ok": True})


class TokenCreateSerializer(serializers.Serializer):
    expires_in = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=100)


class AccessTokenListView(QuantaAPIView):
    authentication_classes = TOKEN_MANAGEMENT_AUTH

    @extend_schema(summary="List your access tokens", responses=TokenSerializer(many=True))
    def get(self, request):
        return Response([_token_json(t) for t in selectors.access_token_list_for_user(user=request.user)])

    @extend_schema(summary="Create an access token", request=TokenCreateSerializer, responses=TokenSerializer)
    def post(self, request):
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = services.access_token_create(
            user=request.user,
            expires_in_seconds=parse_expires_in(serializer.validated_data.get("expires_in")),
            client_id="particle",
            description=serializer.validated_data.get("description", ""),
            ip_address=client_ip(request._request),
            via="api",
        )
        body = _token_json(issued.access_token)
        body["token"] = issued.token
        return Response(body, status=status.HTTP_200_OK)

    @extend_schema(
        summary="Revoke all your access tokens",
        operation_id="access_tokens_destroy_all",
        responses=inline_serializer(
            "RevokeAll", {"ok": serializers.BooleanField(), "deleted": serializers.IntegerField()}
        ),
    )
    def delete(self, request):
        count = services.access_token_revoke_all(
            user=request.user, ip_address=client_ip(request._request), via="api"
        )
        return Response({"ok": True, "deleted": count})


class AccessTokenDetailView(QuantaAPIView):
    """Revoke one token. Knowing a token is enough to revoke it: ``particle token revoke`` and
    api-js ``deleteAccessToken`` send no credentials besides the token in the path."""

    authentication_classes = TOKEN_MANAGEMENT_AUTH
    permission_classes = [AllowAny]

    @extend_schema(summary="Revoke an access token", responses=OkSerializer)
    def delete(self, request, token: str):
        if request.user.is_authenticated:
            access_token = selectors.access_token_find_for_user(user=request.user, token=token)
        else:
            access_token = selectors.access_token_authenticate(token=token)
        if access_token is None or access_token.user is None:
            raise NotFound("No access token has that value.")
        services.access_token_revoke(
            user=access_token.user,
            access_token=access_token,
            ip_address=client_ip(request._request),
            via="api",
        )
        return Response({"ok": True})


class PasswordBasicScheme(OpenApiAuthenticationExtension):
    target_class = PasswordBasicAuthentication
    name = "passwordBasic"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic", "description": "Your email and password."}
