"""Additions to the generated OpenAPI schema for routes that are not DRF views."""

from __future__ import annotations

_TOKEN_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    "required": ["error", "error_description"],
}

OAUTH_TOKEN_PATH = {
    "post": {
        "operationId": "oauth_token_create",
        "summary": "Log in: exchange credentials for an access token",
        "description": (
            "Form-encoded only. The official tools' client ids (`particle-cli`, `CLI2`, `particle-api`, "
            "`particle`) are accepted with any secret, in the form or as HTTP Basic. `expires_in=0` "
            "creates a token that never expires. Ten consecutive failures from one address lock it out "
            "for 30 minutes."
        ),
        "tags": ["oauth"],
        "security": [],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["password", "refresh_token"]},
                            "username": {"type": "string", "format": "email"},
                            "password": {"type": "string", "format": "password"},
                            "client_id": {"type": "string", "example": "particle-cli"},
                            "client_secret": {"type": "string"},
                            "expires_in": {"type": "integer", "minimum": 0, "example": 7776000},
                            "refresh_token": {"type": "string"},
                        },
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": "The new access token",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "token_type": {"type": "string", "example": "bearer"},
                                "access_token": {"type": "string"},
                                "expires_in": {"type": "integer", "description": "0: never expires"},
                                "refresh_token": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "400": {
                "description": "invalid_grant, invalid_request",
                "content": {"application/json": {"schema": _TOKEN_ERROR}},
            },
            "401": {
                "description": "invalid_client",
                "content": {"application/json": {"schema": _TOKEN_ERROR}},
            },
            "429": {
                "description": "Locked out after failed attempts",
                "content": {"application/json": {"schema": _TOKEN_ERROR}},
            },
        },
    }
}


def add_non_drf_routes(result: dict, generator, request, public) -> dict:
    result.setdefault("paths", {})["/oauth/token"] = OAUTH_TOKEN_PATH
    return result
