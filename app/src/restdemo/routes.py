"""The service's routes and what they answer, shared by the server and its OpenAPI document.

Kept free of the server library so the CLI and the tests can import it cheaply.
"""

from __future__ import annotations

import json
import mimetypes
import os
import socket
from pathlib import Path

from restdemo import __version__

ALLOWED_METHODS = ("GET", "HEAD")
ALLOW_HEADER = ", ".join(ALLOWED_METHODS)
JSON = "application/json"
# The query parameter that asks for `Connection: close` on any route: the page's polls use it, so
# that a balancer that picks a replica per connection (swarm's routing mesh) may pick another.
CLOSE_CONNECTION_PARAMETER = "connection=close"


def asks_to_close(query: str) -> bool:
    """Whether the query string holds connection=close (any case, anywhere among its parameters)."""
    return any(part.lower() == CLOSE_CONNECTION_PARAMETER for part in query.split("&"))


# The page and its files load nothing from elsewhere (the service may run where nothing else is
# reachable); the browser enforces it.
CONTENT_SECURITY_POLICY = ("content-security-policy", "default-src 'self'; frame-ancestors 'none'")


class Response:
    """A fully rendered response: every route's answer is known when the server starts."""

    __slots__ = ("status", "content_type", "body", "extra_headers", "headers")

    def __init__(self, status: int, content_type: str, body: bytes, *extra_headers: tuple[str, str]):
        self.status = status
        self.content_type = content_type
        self.body = body
        self.extra_headers = extra_headers
        self.headers = [
            ("content-type", content_type),
            ("content-length", str(len(body))),
            ("x-content-type-options", "nosniff"),  # a browser takes the content type as given
            *extra_headers,
        ]

    def closing(self) -> Response:
        """The same answer, after which the server closes the connection."""
        return Response(self.status, self.content_type, self.body, *self.extra_headers, ("connection", "close"))


def health_document(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The seed's /health shape: which container answered, and which version it runs."""
    environ = os.environ if environ is None else environ
    return {"hostname": socket.gethostname(), "version": environ.get("VER") or __version__}


def json_body(document: object) -> bytes:
    # Compact, like the seed's `{"hostname":"4670864b148b","version":"v3"}`.
    return json.dumps(document, separators=(",", ":")).encode()


# An error names the path it was asked for, up to this many characters (a URL may be 64 KB).
ECHOED_PATH_CHARS = 256


def error(status: int, message: str, path: str, *extra: tuple[str, str]) -> Response:
    if len(path) > ECHOED_PATH_CHARS:
        path = path[:ECHOED_PATH_CHARS] + "…"
    return Response(status, JSON, json_body({"error": message, "path": path}), *extra)


def not_found(path: str) -> Response:
    return error(404, "not found", path)


def method_not_allowed(path: str) -> Response:
    return error(405, "method not allowed", path, ("allow", ALLOW_HEADER))


# Python's own table, not the host's /etc/mime.types (the image has none): the same types everywhere.
# RFC 9239: JavaScript is text/javascript (a script under nosniff needs a JavaScript type).
CONTENT_TYPES = mimetypes.MimeTypes()
CONTENT_TYPES.add_type("text/javascript", ".js")


def static_files(public_dir: Path) -> dict[str, Response]:
    """Every file under public/, by URL path; index.html also answers its directory."""
    routes: dict[str, Response] = {}
    for file in sorted(p for p in public_dir.rglob("*") if p.is_file()):
        url = "/" + file.relative_to(public_dir).as_posix()
        content_type = CONTENT_TYPES.guess_type(file.name)[0] or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        response = Response(200, content_type, file.read_bytes(), CONTENT_SECURITY_POLICY)
        routes[url] = response
        if file.name == "index.html":
            routes[url[: -len("index.html")]] = response
    return routes


def default_public_dir() -> Path:
    """public/ beside the package in a source checkout, or where the image puts it."""
    configured = os.environ.get("RESTDEMO_PUBLIC_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "public"


def build_routes(public_dir: Path, environ: dict[str, str] | None = None) -> dict[str, Response]:
    from restdemo.openapi import openapi_document

    routes = static_files(public_dir)
    health = health_document(environ)
    routes["/health"] = Response(200, JSON, json_body(health))
    document = openapi_document(sorted([*routes, "/openapi.json"]), health["version"])
    routes["/openapi.json"] = Response(200, JSON, json_body(document))
    return routes
