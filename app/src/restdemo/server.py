"""The restdemo HTTP server: a raw RSGI application served by granian.

Every answer is rendered once at start-up (the hostname and VER do not change while
the process lives), so a request costs a dict lookup and a write. Chosen by
measurement: see docs/benchmarks.md.
"""

from __future__ import annotations

import os
import re
import sys
import time

from restdemo.routes import (
    ALLOWED_METHODS,
    Response,
    asks_to_close,
    build_routes,
    default_public_dir,
    method_not_allowed,
    not_found,
)

ACCESS_LOG_FLUSH_SECONDS = 0.5
# An idle keep-alive connection is closed after this long (hyper's header read timeout, which
# also bounds a client that sends its headers slowly). A load balancer in front must give up
# its idle connections sooner (infra/network/load_balancer.py), or it reuses one being closed: a 502.
IDLE_KEEPALIVE_SECONDS = 30
# Connections accepted but not yet served may queue this deep; this many are served at once.
CONNECTION_BACKLOG = 4096
MAX_CONNECTIONS = 16384
# On SIGTERM the process exits within this (infra/config/settings.py APP_DRAIN_SECONDS says the same).
DRAIN_SECONDS = 10
# granian's task implementation: "asyncio" or "rust" (docs/benchmarks.md: why this one; granian
# calls it experimental and has it only on Python < 3.12, which the image runs: tests/image).
TASK_IMPL = "rust"


# What a path may not carry into a log line as is: controls (C0, DEL, C1, Unicode line and
# paragraph separators), the quote that delimits it, the escape character itself.
_UNSAFE_IN_LOG = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029"\\\\]')


def log_safe(text: str) -> str:
    """`text` with every unsafe character as `\\xHH` (`\\uHHHH` above 0xff): one line, unambiguous."""
    if not _UNSAFE_IN_LOG.search(text):
        return text
    return _UNSAFE_IN_LOG.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", text)


class AccessLog:
    """One line per request on stdout, written cheaply and flushed every half second.

    A flush per request would cost more than the request itself; a half-second delay in
    a log line costs nothing.
    """

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self._second = 0
        self._stamp = ""

    def write(self, client: str, method: str, path: str, status: int, size: int) -> None:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        self.stream.write(f'{self._stamp} {client} "{method} {log_safe(path)}" {status} {size}\n')

    def flush(self) -> None:
        self.stream.flush()


class RestDemo:
    """RSGI application: GET and HEAD on the pre-rendered routes, 404 and 405 otherwise."""

    def __init__(self, routes: dict[str, Response], access_log: AccessLog):
        self.routes = routes
        self.access_log = access_log
        self._loop = None

    def __rsgi_init__(self, loop):
        self._loop = loop
        loop.call_soon(self._flush_periodically)

    def __rsgi_del__(self, loop):
        self.access_log.flush()

    def _flush_periodically(self):
        self.access_log.flush()
        self._loop.call_later(ACCESS_LOG_FLUSH_SECONDS, self._flush_periodically)

    async def __rsgi__(self, scope, proto):
        if scope.proto != "http":  # websockets are not part of this API
            return
        path, method = scope.path, scope.method
        response = self.routes.get(path)
        if response is None:
            response = not_found(path)
        elif method not in ALLOWED_METHODS:
            response = method_not_allowed(path)
        query = scope.query_string
        if query and asks_to_close(query):
            response = response.closing()
        if method == "HEAD":
            proto.response_empty(response.status, response.headers)
        else:
            proto.response_bytes(response.status, response.headers, response.body)
        self.access_log.write(scope.client, method, path, response.status, len(response.body))


def create_app() -> RestDemo:
    return RestDemo(build_routes(default_public_dir()), AccessLog())


def port_from_environment() -> int:
    text = os.environ.get("PORT", "8000")
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise SystemExit(f"restdemo: PORT must be a number from 1 to 65535, got {text!r}")
    return int(text)


def granian_server(target: str, *, factory: bool):
    """The granian server restdemo runs in; the benchmark serves its baseline app the same way."""
    from granian.constants import HTTPModes, Interfaces, TaskImpl
    from granian.http import HTTP1Settings
    from granian.server import Server

    return Server(
        target,
        factory=factory,
        address=os.environ.get("HOST", "0.0.0.0"),
        port=port_from_environment(),
        interface=Interfaces.RSGI,
        http=HTTPModes.http1,  # what load balancers speak to targets; skips HTTP/2 sniffing
        http1_settings=HTTP1Settings(header_read_timeout=IDLE_KEEPALIVE_SECONDS * 1000),
        # Connections served at once (granian's default: the backlog, 1,024): idle ones hold a slot
        # until the header timeout, so a burst of them queued the HEALTHCHECK for ~30 s. An idle
        # connection costs a Rust task and a descriptor; the limit is the file descriptor limit.
        backlog=CONNECTION_BACKLOG,
        backpressure=MAX_CONNECTIONS,
        websockets=False,
        task_impl=TaskImpl(TASK_IMPL),
        log_access=False,  # AccessLog above: granian's per-request logging call costs more than the request
        # The drain on SIGTERM: a request still being sent after this is cut, so the process is
        # gone within DRAIN_SECONDS (granian's own shutdown takes a few tens of ms more).
        workers_kill_timeout=DRAIN_SECONDS - 1,
    )


USAGE = """usage: restdemo [-h]

Serve the restdemo HTTP API and page on $HOST:$PORT until SIGTERM or SIGINT (then drain for up to
10 s). It takes no arguments; the environment sets it up:

  HOST  address to listen on (default 0.0.0.0)
  PORT  port to listen on, 1-65535 (default 8000)
  VER   the version it reports on /health (default: the package's version)

The client is restdemo-cli (restdemo-cli --help).
"""


def main(argv: list[str] | None = None) -> None:
    """`restdemo`: serve on $HOST:$PORT (default 0.0.0.0:8000) until SIGTERM or SIGINT."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(USAGE, end="")
        return
    if args:
        raise SystemExit(f"restdemo: takes no arguments (got {' '.join(args)}); see restdemo --help")
    granian_server("restdemo.server:create_app", factory=True).serve()


if __name__ == "__main__":
    main()
