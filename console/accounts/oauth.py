"""``POST /oauth/token``: django-oauth-toolkit's token endpoint, in Particle's dialect.

Differences from stock OAuth that the official clients rely on (PARTICLE_API.md §1.3):
- the official tools' client ids (``particle-cli``, ``CLI2``, ``particle-api``, ``particle``) are
  accepted with any secret, in the form or as HTTP Basic;
- ``expires_in`` in the request sets the token's lifetime, 0 meaning it never expires;
- the success body is ``{token_type: "bearer", access_token, expires_in, refresh_token}``;
- bad credentials answer 400 ``invalid_grant`` "User credentials are invalid", and every error
  carries ``error_description``;
- failed attempts count toward the login throttle shared with the console.
"""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import unquote_plus

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from oauth2_provider.models import AccessToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views.mixins import OAuthLibMixin

from console.accounts import services, throttle
from console.accounts.tokens import PERMANENT_TOKEN_SECONDS, parse_expires_in, token_checksum
from console.errors import ApplicationError, RateLimited
from console.http import client_ip

_ERROR_DESCRIPTIONS = {
    "invalid_grant": "User credentials are invalid",
    "invalid_client": "Client authentication failed",
    "unsupported_grant_type": "The grant type is not supported; use grant_type=password",
    "invalid_request": "The request is missing a required parameter",
    "invalid_scope": "The requested scope is invalid",
    "unauthorized_client": "This client may not use this grant type",
}


def _basic_credentials(request) -> tuple[str, str] | None:
    header = request.headers.get("HTTP_AUTHORIZATION") or request.headers.get("Authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip()).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(secret)


class QuantaOAuth2Validator(OAuth2Validator):
    def _load_application(self, client_id, request):
        # The official tools' clients exist from their first use; no set-up step to forget.
        services.builtin_client_get(client_id=client_id or "")
        return super()._load_application(client_id, request)

    def authenticate_client(self, request, *args, **kwargs):
        basic = _basic_credentials(request)
        client_id = basic[0] if basic else request.client_id
        if client_id and services.builtin_client_get(client_id=client_id) is not None:
            # Official tools ship their "secret" in public source code: it proves nothing.
            if self._load_application(client_id, request) is None:
                return False
            request.client_id = client_id
            return True
        return super().authenticate_client(request, *args, **kwargs)


def _requested_lifetime(oauthlib_request) -> int:
    return parse_expires_in(getattr(oauthlib_request, "expires_in", None))


def _error(status: int, error: str, description: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@method_decorator(login_not_required, name="dispatch")
@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(sensitive_post_parameters("password", "client_secret"), name="dispatch")
class TokenView(OAuthLibMixin, View):
    http_method_names = ["post", "options"]

    @classmethod
    def get_server(cls):
        kwargs = {**oauth2_settings.server_kwargs, "token_expires_in": _requested_lifetime}
        return cls.get_server_class()(cls.get_validator_class()(), **kwargs)

    def http_method_not_allowed(self, request, *args, **kwargs):
        return _error(405, "method_not_allowed", f"{request.method} is not allowed here; use POST.")

    def post(self, request: HttpRequest, *args, **kwargs):
        content_type = request.content_type or ""
        if content_type != "application/x-www-form-urlencoded" and not content_type.startswith("multipart/"):
            return _error(
                400,
                "invalid_request",
                "Send the token request form-encoded (application/x-www-form-urlencoded).",
            )
        grant_type = request.POST.get("grant_type", "")
        username = request.POST.get("username", "")
        ip = client_ip(request)
        try:
            requested = parse_expires_in(request.POST.get("expires_in"))
            if grant_type == "password":
                throttle.login_check_allowed(ip=ip, username=username)
        except RateLimited as limited:
            return _error(
                429, "too_many_requests", limited.message, **{"Retry-After": str(limited.retry_after)}
            )
        except ApplicationError as error:
            return _error(400, "invalid_request", error.message)
        if grant_type == "password" and (not username or not request.POST.get("password")):
            return _error(400, "invalid_request", "Both username and password are required.")

        _, _, body, status = self.create_token_response(request)
        payload = json.loads(body or "{}")
        if status != 200:
            error = payload.get("error", "invalid_request")
            if grant_type == "password" and error == "invalid_grant":
                throttle.login_record_failure(ip=ip, username=username)
            description = _ERROR_DESCRIPTIONS.get(error) or payload.get("error_description") or error
            return _error(status, error, description)

        if grant_type == "password":
            throttle.login_record_success(ip=ip)
        token = payload["access_token"]
        access_token = AccessToken.objects.select_related("user", "application").get(
            token_checksum=token_checksum(token)
        )
        services.access_token_issued(access_token=access_token, token=token, ip_address=ip, via="api")
        if access_token.user is not None and grant_type == "password":
            services.user_logged_in(user=access_token.user, ip_address=ip, via="api")
        response = {
            "token_type": "bearer",
            "access_token": token,
            "expires_in": 0 if requested == PERMANENT_TOKEN_SECONDS else payload.get("expires_in"),
        }
        if payload.get("refresh_token"):
            response["refresh_token"] = payload["refresh_token"]
        scope = payload.get("scope", "")
        if scope.startswith("customer="):
            response["scope"] = scope
        return JsonResponse(response, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
