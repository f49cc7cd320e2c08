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


_ERROR = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "error": {"type": "string"},
        "error_description": {"type": "string"},
    },
}
_SECURITY = [{"accessToken": []}]


def _json_error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_STREAM_DESCRIPTION = (
    "Server-Sent Events (`text/event-stream`). The server writes `:ok` and a blank line on connect, "
    'then each event as `event: <name>` and `data: {"data", "ttl", "published_at", "coreid"}` '
    "lines followed by a blank line, and a newline as keep-alive after 9 seconds without events. "
    "`published_at` is UTC with milliseconds and `Z`. The prefix matches the start of event names "
    "(URL-encode `/` as `%2F`). The token may also be sent as `?access_token=`. A client that falls "
    "behind loses the oldest events and is told so in a `: lagged, N events dropped` comment."
)


def _stream(operation_id: str, summary: str, parameters: list[dict]) -> dict:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "description": _STREAM_DESCRIPTION,
            "tags": ["events"],
            "security": _SECURITY,
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "The event stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "400": _json_error("No token, or no prefix on /v1/events"),
                "401": _json_error("Invalid token"),
                "404": _json_error("Unknown device, or another user's"),
                "429": _json_error("Too many streams open from this address"),
            },
        }
    }


_PREFIX = {"name": "prefix", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
_DEVICE = {
    "name": "device",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "Device ID or name",
}

_PRODUCT = {
    "name": "product",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "Product id or slug",
}

_PUBLISH = {
    "operationId": "events_publish",
    "summary": "Publish an event to your devices' stream",
    "description": (
        "Published with `coreid` `api`. Names are 1-64 ASCII characters and may not start with `spark` "
        "or `particle`; data is at most 1024 bytes. At most 1 event per second on average, with bursts "
        "of 4 (429 with `Retry-After` beyond)."
    ),
    "tags": ["events"],
    "security": _SECURITY,
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 64},
                        "data": {"type": "string", "nullable": True},
                        "private": {"type": "boolean", "default": True},
                        "ttl": {"type": "integer", "minimum": 0, "maximum": 16777215, "default": 60},
                    },
                }
            }
            for media in ("application/json", "application/x-www-form-urlencoded")
        },
    },
    "responses": {
        "200": {
            "description": "Published",
            "content": {
                "application/json": {"schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}
            },
        },
        "400": _json_error("Invalid name, data, ttl or private, or no token"),
        "401": _json_error("Invalid token"),
        "429": _json_error("Publishing too fast"),
    },
}

EVENT_PATHS = {
    "/v1/devices/events": {
        **_stream("events_stream_mine", "Stream your devices' events", []),
        "post": _PUBLISH,
    },
    "/v1/devices/events/{prefix}": _stream(
        "events_stream_mine_prefix", "Stream your devices' events with a name prefix", [_PREFIX]
    ),
    "/v1/events/{prefix}": _stream(
        "events_stream_prefix", "Stream the events you may see with a name prefix", [_PREFIX]
    ),
    "/v1/products/{product}/events": {
        **_stream(
            "product_events_stream",
            "Stream every event of a product's devices and team",
            [_PRODUCT],
        ),
        "post": {
            **_PUBLISH,
            "operationId": "product_events_publish",
            "summary": "Publish an event to a product's stream",
            "parameters": [_PRODUCT],
            "responses": {
                **_PUBLISH["responses"],
                "403": _json_error("Your role may not publish"),
                "404": _json_error("Unknown product, or not your team's"),
            },
        },
    },
    "/v1/products/{product}/events/{prefix}": _stream(
        "product_events_stream_prefix", "Stream a product's events with a name prefix", [_PRODUCT, _PREFIX]
    ),
    "/v1/devices/{device}/events": _stream("device_events_stream", "Stream one device's events", [_DEVICE]),
    "/v1/devices/{device}/events/{prefix}": _stream(
        "device_events_stream_prefix", "Stream one device's events with a name prefix", [_DEVICE, _PREFIX]
    ),
}


def add_non_drf_routes(result: dict, generator, request, public) -> dict:
    paths = result.setdefault("paths", {})
    paths["/oauth/token"] = OAUTH_TOKEN_PATH
    paths.update(EVENT_PATHS)
    return result
