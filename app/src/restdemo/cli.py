"""restdemo-cli: ask a restdemo service how it is.

It is the image's HEALTHCHECK, run every 5 s in every replica, so it imports only
what it needs from the standard library and starts in tens of milliseconds.

Exit codes: 0 healthy, 1 down, unhealthy, wrong answer or slow, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import time
from urllib.parse import urlsplit

EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_USAGE = 0, 1, 2
HEALTH_FIELDS = ("hostname", "version")
_ACTION = re.compile(r"(json\s+)?\.([A-Za-z_]\w*)?")
# The health document is tens of bytes; anything this large is not one.
MAX_ANSWER_BYTES = 65536
MAX_TIMEOUT_SECONDS = 3600


class UsageError(Exception):
    pass


class Unhealthy(Exception):
    pass


def _go_value(value) -> str:
    """How Go's text/template prints a decoded JSON value (docker's `{{.}}` on a map)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_value(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    return "<nil>" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def render(template: str, document: dict) -> str:
    """docker's --format for what it supports: actions `{{.}}`, `{{.field}}`, `{{json .}}`,
    `{{json .field}}` (spaces allowed inside), text outside actions as is (a lone `}}` too), and
    the `\\n` and `\\t` escapes docker replaces. Anything else in an action, or an action left
    open, is a usage error, as a template parse error is to docker."""
    out, position = [], 0
    while (start := template.find("{{", position)) >= 0:
        end = template.find("}}", start + 2)
        if end < 0:
            raise UsageError(f"--format: unclosed action in {template!r}")
        out += [template[position:start], _action(template[start + 2 : end].strip(), document, template)]
        position = end + 2
    out.append(template[position:])
    return "".join(out).replace("\\n", "\n").replace("\\t", "\t")


def _action(action: str, document: dict, template: str) -> str:
    match = _ACTION.fullmatch(action)
    if not match:
        raise UsageError(
            f"--format: cannot parse {{{{{action}}}}} in {template!r}; use {{{{.field}}}} or {{{{json .}}}}"
        )
    as_json, field = bool(match.group(1)), match.group(2)
    if field is not None and field not in document:
        raise UsageError(f"--format: no field {field!r}; fields are {', '.join(sorted(document))}")
    value = document if field is None else document[field]
    if as_json:
        return json.dumps(value, separators=(",", ":"))
    return _go_value(value)


DEFAULT_PORTS = {"http": 80, "https": 443}


def split_url(url: str) -> tuple[str, str, int, str]:
    """http(s)://host[:port][/prefix] -> (scheme, host, port, prefix); the scheme in any case, IPv6
    hosts in brackets. HTTPS is a load balancer's in front of the service (its certificate checked
    against the system's CAs); the service itself speaks plain HTTP."""
    usage = f"--url must be http://host[:port] or https://host[:port] with a port from 1 to 65535, got {url!r}"
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or DEFAULT_PORTS.get(scheme, 0) if parts.port != 0 else 0
    except ValueError as exc:  # a port that is not a number in range
        raise UsageError(usage) from exc
    if scheme not in DEFAULT_PORTS or not parts.hostname or not 1 <= port <= 65535:
        raise UsageError(usage)
    prefix = parts.path.strip("/")
    return scheme, parts.hostname, port, f"/{prefix}" if prefix else ""


def http_get(host: str, port: int, path: str, timeout: float, *, tls: bool = False) -> tuple[int, bytes]:
    """One GET over a fresh connection, all of it (connect, request, answer) within `timeout`, an
    answer of at most MAX_ANSWER_BYTES. http.client would triple the CLI's start time (it imports
    the email package), and this runs every 5 s in every replica. With `tls`, over TLS with the
    certificate verified for `host` (ssl is imported only then, for the same reason)."""
    deadline = time.monotonic() + timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    authority = f"[{host}]" if ":" in host else host
    request = f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: restdemo-cli\r\nConnection: close\r\n\r\n"
    answer = bytearray()
    with socket.create_connection((host, port), timeout=remaining()) as plain:
        connection = _tls(plain, host) if tls else plain
        connection.settimeout(remaining())
        connection.sendall(request.encode())
        while True:
            connection.settimeout(remaining())
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
            if len(answer) > MAX_ANSWER_BYTES:
                raise ValueError(f"answer larger than {MAX_ANSWER_BYTES} bytes")
    head, _, body = bytes(answer).partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    fields = status_line.split()
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
        raise ValueError(f"not an HTTP response: {head[:40]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in header_lines)}
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        body = dechunk(body)
    return int(fields[1]), body


def _tls(connection: socket.socket, host: str) -> socket.socket:
    try:
        import ssl
    except ImportError:  # the pruned image keeps only what the health check loads: plain HTTP
        raise OSError("no TLS in this restdemo-cli (the image's runtime has no ssl module)") from None
    return ssl.create_default_context().wrap_socket(connection, server_hostname=host)


def dechunk(body: bytes) -> bytes:
    """A chunked body's content (RFC 9112 7.1); extensions and trailers ignored."""
    content, rest = bytearray(), body
    while True:
        size_line, found, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise ValueError("a chunked answer that does not parse") from None
        if not found or size < 0 or len(rest) < size:
            raise ValueError("a chunked answer cut short")
        if size == 0:
            return bytes(content)
        content += rest[:size]
        rest = rest[size + 2 :]


def fetch_health(url: str, timeout: float) -> dict:
    scheme, host, port, prefix = split_url(url)
    path = prefix + "/health"
    try:
        status, body = http_get(host, port, path, timeout, tls=scheme == "https")
    except TimeoutError as exc:
        raise Unhealthy(f"no answer from {url} within {timeout:g} s") from exc
    except OSError as exc:
        raise Unhealthy(f"cannot reach {url}: {exc}") from exc
    except ValueError as exc:  # not HTTP, too large, a broken chunked body
        raise Unhealthy(f"bad answer from {url}: {exc}") from exc
    if status != 200:
        raise Unhealthy(f"{path} answered {status}")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Unhealthy(f"{path} answered something that is not JSON") from exc
    if not isinstance(document, dict) or any(not isinstance(document.get(f), str) for f in HEALTH_FIELDS):
        raise Unhealthy(f"{path} answered without {' and '.join(HEALTH_FIELDS)}")
    return document


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= MAX_TIMEOUT_SECONDS:  # also refuses inf and nan
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds above 0, at most {MAX_TIMEOUT_SECONDS}, got {text!r}"
        )
    return value


def parser() -> argparse.ArgumentParser:
    default_url = os.environ.get("RESTDEMO_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
    root = argparse.ArgumentParser(prog="restdemo-cli", description=__doc__.split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = commands.add_parser("show", help="show something about a running service")
    what = show.add_subparsers(dest="what", required=True, metavar="WHAT")
    health = what.add_parser("health", help="print the health document; exit 0 when healthy")
    health.add_argument("--url", default=default_url, help=f"service base URL (default {default_url})")
    health.add_argument("--timeout", type=positive_seconds, default=3.0, help="seconds to wait (default 3)")
    health.add_argument("--format", default=None, help="template over the fields, e.g. '{{.hostname}}'")
    return root


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        if args.format is not None:
            render(args.format, dict.fromkeys(HEALTH_FIELDS, ""))  # a bad template is a usage error up front
        document = fetch_health(args.url, args.timeout)
        output = json.dumps(document, separators=(",", ":")) if args.format is None else render(args.format, document)
    except UsageError as exc:
        print(f"restdemo-cli: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Unhealthy as exc:
        print(f"restdemo-cli: unhealthy: {exc}", file=sys.stderr)
        return EXIT_UNHEALTHY
    print(output)
    return EXIT_HEALTHY


if __name__ == "__main__":
    sys.exit(main())
