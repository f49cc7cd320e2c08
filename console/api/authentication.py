"""API authentication: access tokens as Particle accepts them, plus the console's session.

A token may arrive as ``Authorization: Bearer``, as ``?access_token=`` or as a form field
``access_token`` (the last two are deprecated by Particle but still sent by older clients).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from console.accounts.selectors import access_token_authenticate
from console.accounts.services import access_token_touch
from console.http import client_ip

INVALID_TOKEN = "The access token provided is invalid."  # noqa: S105 (a message)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class InvalidToken(exceptions.AuthenticationFailed):
    default_detail = INVALID_TOKEN
    default_code = "invalid_token"


def token_from_request(request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if token := request.query_params.get("access_token"):
        return token
    if request.content_type.startswith(_FORM_TYPES) and (token := request.data.get("access_token")):
        return token
    return None


class AccessTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = token_from_request(request)
        if token is None:
            return None
        access_token = access_token_authenticate(token=token)
        if access_token is None or access_token.user is None:
            raise InvalidToken()
        access_token_touch(access_token=access_token, ip_address=client_ip(request._request))
        return access_token.user, access_token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ConsoleSessionAuthentication(authentication.SessionAuthentication):
    """The signed-in console user, with CSRF enforced as for any session."""


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = AccessTokenAuthentication
    name = "accessToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An access token from POST /oauth/token."}


class ConsoleSessionScheme(OpenApiAuthenticationExtension):
    target_class = ConsoleSessionAuthentication
    name = "consoleSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
