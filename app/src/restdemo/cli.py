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

EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_USAGE = 0, 1, 2
HEALTH_FIELDS = ("hostname", "version")
_PLACEHOLDER = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z_]\w*)?\s*\}\}")


class UsageError(Exception):
    pass


class Unhealthy(Exception):
    pass


def render(template: str, document: dict) -> str:
    """A docker-style --format: `{{.field}}`, `{{json .}}`, `{{json .field}}`; `\\n` and `\\t` escapes."""

    def substitute(match: re.Match) -> str:
        as_json, field = bool(match.group(1)), match.group(2)
        if field is None:
            if not as_json:
                raise UsageError("use {{json .}} for the whole document")
            return json.dumps(document, separators=(",", ":"))
        if field not in document:
            raise UsageError(f"--format: no field {field!r}; fields are {', '.join(sorted(document))}")
        value = document[field]
        return json.dumps(value) if as_json else str(value)

    leftover = _PLACEHOLDER.sub("", template)
    if "{{" in leftover or "}}" in leftover:
        raise UsageError(f"--format: cannot parse {template!r}; use {{{{.field}}}} or {{{{json .}}}}")
    return _PLACEHOLDER.sub(substitute, template).replace("\\n", "\n").replace("\\t", "\t")


def split_url(url: str) -> tuple[str, int, str]:
    """http://host[:port][/prefix] -> (host, port, prefix). Plain HTTP only: the service speaks nothing else."""
    scheme, separator, rest = url.partition("://")
    authority, _, prefix = rest.partition("/")
    host, colon, port = authority.rpartition(":")
    if not colon:
        host, port = authority, "80"
    if scheme != "http" or not separator or not host or not port.isdigit():
        raise UsageError(f"--url must be http://host[:port], got {url!r}")
    prefix = prefix.strip("/")
    return host, int(port), f"/{prefix}" if prefix else ""


def http_get(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes]:
    """One GET over a fresh connection. http.client would triple the CLI's start time
    (it imports the email package), and this runs every 5 s in every replica."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: restdemo-cli\r\nConnection: close\r\n\r\n"
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(request.encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/") or not status_line[1].isdigit():
        raise ValueError(f"not an HTTP response: {head[:40]!r}")
    return int(status_line[1]), body


def fetch_health(url: str, timeout: float) -> dict:
    host, port, prefix = split_url(url)
    path = prefix + "/health"
    try:
        status, body = http_get(host, port, path, timeout)
    except TimeoutError as exc:
        raise Unhealthy(f"no answer from {url} within {timeout:g} s") from exc
    except (OSError, ValueError) as exc:
        raise Unhealthy(f"cannot reach {url}: {exc}") from exc
    if status != 200:
        raise Unhealthy(f"{path} answered {status}")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise Unhealthy(f"{path} answered something that is not JSON") from exc
    if not isinstance(document, dict) or any(not isinstance(document.get(f), str) for f in HEALTH_FIELDS):
        raise Unhealthy(f"{path} answered without {' and '.join(HEALTH_FIELDS)}")
    return document


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
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
