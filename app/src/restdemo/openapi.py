"""The OpenAPI 3 document, generated from the routes the server actually has."""

from __future__ import annotations

from restdemo import __version__

HEALTH_SCHEMA = {
    "type": "object",
    "required": ["hostname", "version"],
    "additionalProperties": False,
    "properties": {
        "hostname": {"type": "string", "description": "Hostname of the container that answered."},
        "version": {"type": "string", "description": "VER from the environment, else the package version."},
    },
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "path"],
    "additionalProperties": False,
    "properties": {"error": {"type": "string"}, "path": {"type": "string"}},
}
ERROR_RESPONSES = {
    "405": {
        "description": "Method not allowed; the Allow header lists GET, HEAD.",
        "headers": {"Allow": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
}


# Any route takes it (restdemo.routes.asks_to_close); the page's polls of /health use it.
CONNECTION_PARAMETER = {
    "name": "connection",
    "in": "query",
    "required": False,
    # Any string: the server acts on `close` in any case and ignores other values, as it ignores
    # other parameters (a cache-busting one, say); an enum would promise an error it never sends.
    "schema": {"type": "string"},
    "description": "close (in any case): the server closes the connection after this answer "
    "(Connection: close), so the next request may reach another replica behind a balancer that picks "
    "one per connection. Any other value is accepted and ignored.",
}


def _operation(summary: str, operation_id: str, ok: dict) -> dict:
    return {
        "summary": summary,
        "operationId": operation_id,
        "parameters": [CONNECTION_PARAMETER],
        "responses": {"200": ok, **ERROR_RESPONSES},
    }


def _path_item(operation: dict) -> dict:
    head = {**operation, "operationId": operation["operationId"] + "Head"}
    head["responses"] = {**operation["responses"], "200": {"description": "Headers only."}}
    return {"get": operation, "head": head}


def openapi_document(paths: list[str], version: str = __version__) -> dict:
    """One path item per route; static files are described as what they are. `version`: the
    running service's, as /health reports it (VER)."""
    documented = {}
    for path in paths:
        if path == "/health":
            op = _operation(
                "Which container answered, and which version it runs",
                "getHealth",
                {
                    "description": "The service is healthy.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                },
            )
        elif path == "/openapi.json":
            op = _operation(
                "This document",
                "getOpenAPI",
                {
                    "description": "The OpenAPI document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
            )
        else:
            name = path.strip("/").replace("/", "_").replace(".", "_") or "index"
            op = _operation(
                f"Static file {path}",
                f"getStatic_{name}",
                {"description": "The file.", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
            )
        documented[path] = _path_item(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "restdemo",
            "version": version,
            "description": "Say which container answered. Unknown paths answer 404 with an Error body.",
        },
        "paths": documented,
        "components": {
            "schemas": {"Health": HEALTH_SCHEMA, "Error": ERROR_SCHEMA},
            "responses": {
                "NotFound": {
                    "description": "No such path.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            },
        },
    }
