"""The OpenAPI 3.1 document of the HTTP server API, built from its structs."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import Struct

from hubbub.asgi.api_types import OPERATIONS, ChannelsQuery, ErrorResponse, HistoryQuery
from hubbub.version import version

_QUERY_DOCS: Final[dict[str, str]] = {
    "limit": "At most this many publications (0: none, only the position). Default: all kept.",
    "since_offset": "Only publications after this offset (with `reverse`: before it).",
    "epoch": "The epoch `since_offset` belongs to; another epoch gives no publications.",
    "reverse": "Newest first.",
    "pattern": "Only channels matching this glob pattern (e.g. `chat:*`).",
}

_ERRORS_BY_METHOD: Final[dict[str, tuple[int, ...]]] = {
    "POST": (400, 401, 404, 405, 413, 500, 503),
    "GET": (400, 401, 404, 405, 500, 503),
}

_ERROR_DOCS: Final[dict[int, str]] = {
    400: "Invalid body, query or channel; the message names the problem.",
    401: "Missing or wrong API key, or no API key configured on the server.",
    404: "Unknown namespace (`strict_namespaces = true`) or no such route.",
    405: "Wrong HTTP method for this route.",
    413: "Body over the limit (`max_message_size` + 16 KiB) or `data` over `max_message_size`.",
    500: "Unexpected failure; the message has a reference to find in the server log.",
    503: "The engine is unavailable; retry later.",
}


def _query_parameters(kind: type[Struct], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    properties: dict[str, Any] = schemas[kind.__name__]["properties"]
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": _QUERY_DOCS.get(name, ""),
            "schema": schema,
        }
        for name, schema in properties.items()
    ]


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the server API, built from the structs."""
    kinds: list[Any] = [ErrorResponse, HistoryQuery, ChannelsQuery]
    for *_, request, response in OPERATIONS:
        if request is not None:
            kinds.append(request)
        kinds.append(response)
    _, schemas = msgspec.json.schema_components(kinds, ref_template="#/components/schemas/{name}")
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    paths: dict[str, Any] = {}
    for path, method, name, summary, request, response in OPERATIONS:
        operation: dict[str, Any] = {
            "operationId": name,
            "summary": summary,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{response.__name__}"}
                        }
                    },
                },
                **{
                    str(status): {
                        "description": _ERROR_DOCS[status],
                        "content": {"application/json": {"schema": error_ref}},
                    }
                    for status in _ERRORS_BY_METHOD[method]
                },
            },
        }
        parameters: list[dict[str, Any]] = []
        for param in ("channel", "user"):
            if "{" + param + "}" in path:
                parameters.append(
                    {
                        "name": param,
                        "in": "path",
                        "required": True,
                        "description": f"The {param}, percent-encoded (`#42` is `%2342`).",
                        "schema": {"type": "string", "minLength": 1},
                    }
                )
        if name == "history":
            parameters += _query_parameters(HistoryQuery, schemas)
        elif name == "channels":
            parameters += _query_parameters(ChannelsQuery, schemas)
        if parameters:
            operation["parameters"] = parameters
        if request is not None:
            operation["requestBody"] = {
                "required": name != "disconnect",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{request.__name__}"}
                    }
                },
            }
        paths[path] = {method.lower(): operation}
    for query in (HistoryQuery, ChannelsQuery):
        del schemas[query.__name__]
    paths["/api/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hubbub server API",
            "version": version(),
            "description": (
                "Publish to and inspect a hubbub hub from any backend. Authenticate "
                "with `Authorization: apikey <key>`. Errors are "
                '`{"error": {"code": ..., "message": ...}}`. `GET /api/channels` and '
                "`GET /api/info` describe the node that answers. Server publishes are "
                "not subject to a namespace's `publish = false` (that restricts clients)."
            ),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apikey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`apikey <key>`",
                }
            },
        },
        "security": [{"apikey": []}],
        "paths": paths,
    }
