"""restdemo-cli against real servers: healthy, down, wrong answer, slow, bad usage."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.app.conftest import run_cli
from tests.support.net import free_port

pytestmark = pytest.mark.app


@contextmanager
def fake_peer(status: int, body: bytes, tls: ssl.SSLContext | None = None):
    """A real HTTP server that answers every GET with `status` and `body` (wrongly, to prove the CLI
    notices); with `tls`, over TLS for the name localhost. Yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{httpd.server_address[1]}" if tls else f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@contextmanager
def silent_peer():
    """Accepts connections and never answers: a hung service."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def test_healthy_prints_the_document_and_exits_0(server):
    result = run_cli("show", "health", "--url", server.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"hostname": socket.gethostname(), "version": "v3"}


def test_default_url_uses_port_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("PORT", str(server.port))
    monkeypatch.delenv("RESTDEMO_URL", raising=False)
    assert run_cli("show", "health").returncode == 0


@pytest.mark.parametrize(
    "template,expected",
    [
        ("{{.hostname}}", socket.gethostname()),
        ("{{.version}} on {{ .hostname }}", f"v3 on {socket.gethostname()}"),
        ("{{json .version}}", '"v3"'),
        ("{{json .}}", json.dumps({"hostname": socket.gethostname(), "version": "v3"}, separators=(",", ":"))),
        ("{{.version}}\\t{{.hostname}}", f"v3\t{socket.gethostname()}"),
    ],
)
def test_format_renders_a_template_over_the_fields(server, template, expected):
    result = run_cli("show", "health", "--url", server.url, "--format", template)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected + "\n"


def test_server_down_exits_1():
    result = run_cli("show", "health", "--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "cannot reach" in result.stderr


@pytest.mark.parametrize(
    "status,body,complaint",
    [
        (500, b'{"hostname":"x","version":"v3"}', "answered 500"),
        (200, b"<html>ok</html>", "not JSON"),
        (200, b'{"status":"ok"}', "without hostname and version"),
        (200, b'{"hostname":"x","version":3}', "without hostname and version"),
    ],
)
def test_wrong_answer_exits_1(status, body, complaint):
    with fake_peer(status, body) as url:
        result = run_cli("show", "health", "--url", url)
    assert result.returncode == 1
    assert complaint in result.stderr
    assert result.stdout == ""


def test_slow_service_exits_1_after_the_timeout():
    with silent_peer() as url:
        result = run_cli("show", "health", "--url", url, "--timeout", "0.5", timeout=10)
    assert result.returncode == 1
    assert "within 0.5 s" in result.stderr


@pytest.mark.parametrize(
    "args,complaint",
    [
        ([], "required"),
        (["show"], "required"),
        (["show", "health", "--timeout", "0"], "above 0"),
        (["show", "health", "--timeout", "soon"], "above 0"),
        (["show", "health", "--url", "ftp://x"], "--url must be http"),
        (["show", "health", "--format", "{{.nope}}"], "no field 'nope'"),
        (["show", "health", "--format", "{{hostname}}"], "cannot parse"),
        (["show", "health", "--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_usage_exits_2(args, complaint):
    result = run_cli(*args)
    assert result.returncode == 2
    assert complaint in result.stderr


def test_help_exits_0():
    result = run_cli("show", "health", "--help")
    assert result.returncode == 0
    assert "--format" in result.stdout
