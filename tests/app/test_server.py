"""The real server on loopback: every route, status and header."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.app.conftest import run_cli, start_server, stop_server

pytestmark = pytest.mark.app

PUBLIC = Path(__file__).resolve().parents[2] / "app" / "public"


def request(server, method: str, path: str):
    conn = server.connection()
    conn.request(method, path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def test_health_is_the_seed_shape_with_hostname_and_ver(server):
    response, body = request(server, "GET", "/health")
    assert response.status == 200
    assert response.getheader("content-type") == "application/json"
    assert json.loads(body) == {"hostname": socket.gethostname(), "version": "v3"}
    assert body == json.dumps({"hostname": socket.gethostname(), "version": "v3"}, separators=(",", ":")).encode()
    assert response.getheader("content-length") == str(len(body))


def test_health_version_defaults_to_the_package_version(tmp_path):
    from restdemo import __version__

    plain = start_server(tmp_path)
    try:
        response, body = request(plain, "GET", "/health")
        assert json.loads(body)["version"] == __version__
    finally:
        stop_server(plain)


def test_port_comes_from_the_environment(server):
    # The fixture chose a free port through PORT; the server answers there and only there.
    with socket.create_connection(("127.0.0.1", server.port), timeout=2):
        pass


def test_head_health_has_the_get_headers_and_no_body(server):
    get, get_body = request(server, "GET", "/health")
    head, head_body = request(server, "HEAD", "/health")
    assert head.status == 200
    assert head_body == b""
    assert head.getheader("content-type") == "application/json"
    assert head.getheader("content-length") == str(len(get_body))


def test_index_is_the_public_page(server):
    response, body = request(server, "GET", "/")
    assert response.status == 200
    assert response.getheader("content-type") == "text/html; charset=utf-8"
    assert body == (PUBLIC / "index.html").read_bytes()
    assert b"/health" in body and b"/openapi.json" in body


@pytest.mark.parametrize(
    "path,content_type",
    [
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        # A script under nosniff must come with a JavaScript type, or the browser refuses it.
        ("/live.js", "text/javascript; charset=utf-8"),
    ],
)
def test_static_files_are_served_from_public(server, path, content_type):
    response, body = request(server, "GET", path)
    assert response.status == 200
    assert response.getheader("content-type") == content_type
    assert body == (PUBLIC / path.lstrip("/")).read_bytes()


@pytest.mark.parametrize("path", ["/nope", "/health/", "/../pyproject.toml", "/HEALTH"])
def test_unknown_path_is_404_with_a_json_error(server, path):
    response, body = request(server, "GET", path)
    assert response.status == 404
    assert response.getheader("content-type") == "application/json"
    assert json.loads(body) == {"error": "not found", "path": path}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_wrong_method_is_405_with_allow(server, method):
    response, body = request(server, method, "/health")
    assert response.status == 405
    assert response.getheader("allow") == "GET, HEAD"
    assert json.loads(body) == {"error": "method not allowed", "path": "/health"}


def test_keep_alive_serves_many_requests_on_one_connection(server):
    conn = server.connection()
    conn.request("GET", "/health")
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    for _ in range(20):
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
    assert first.version == 11
    assert conn.sock is sock, "the server closed a keep-alive connection"
    conn.close()


def read_until_closed(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):  # ends only when the server closes
            received += chunk
    return received


@pytest.mark.parametrize(
    "method,target,status",
    [
        ("GET", "/health?connection=close", 200),
        ("GET", "/health?x=1&Connection=CLOSE", 200),
        ("HEAD", "/?connection=close&x", 200),
        ("GET", "/nope?connection=close", 404),
        ("POST", "/health?connection=close", 405),
    ],
)
def test_connection_close_query_answers_then_closes_the_connection(server, method, target, status):
    """The page's polls: a per-connection balancer (swarm's routing mesh) picks a replica per
    connection, so each poll needs a new one to reach the others. Any route, any answer."""
    received = read_until_closed(server.port, f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"\r\nconnection: close" in head.lower()
    if (method, status) == ("GET", 200):
        assert json.loads(body)["version"] == "v3"


def test_the_page_and_its_files_may_load_only_from_the_service(server):
    for path in ("/", "/live.js", "/style.css"):
        response, _ = request(server, "GET", path)
        assert response.getheader("content-security-policy") == "default-src 'self'; frame-ancestors 'none'", path


def test_one_access_log_line_per_request_on_stdout(tmp_path):
    server = start_server(tmp_path, VER="log")
    try:
        for path in ("/health", "/nope", "/"):
            request(server, "GET", path)
        request(server, "DELETE", "/health")
        time.sleep(1.2)  # the access log is flushed every half second
        lines = [line for line in Path(server.log.name).read_text().splitlines() if '"' in line]
    finally:
        stop_server(server)
    # The startup probe's request comes first.
    assert [" ".join(line.split()[2:5]) for line in lines[-4:]] == [
        '"GET /health" 200',
        '"GET /nope" 404',
        '"GET /" 200',
        '"DELETE /health" 405',
    ]
    assert all(line.split()[1].startswith("127.0.0.1") for line in lines[-4:])


def test_an_idle_keep_alive_connection_outlasts_the_load_balancers_idle_timeout(server):
    """The ALB reuses an idle connection to a target until its own idle timeout; a target that
    closes first makes the ALB answer 502. So the server must keep it open at least that long."""
    from infra.network.load_balancer import IDLE_TIMEOUT_SECONDS

    connection = server.connection()
    connection.request("GET", "/health")
    assert connection.getresponse().read()
    sock = connection.sock
    time.sleep(IDLE_TIMEOUT_SECONDS + 1)
    connection.request("GET", "/health")  # a socket the server closed fails here
    assert connection.getresponse().status == 200
    assert connection.sock is sock
    connection.close()


def test_a_path_cannot_forge_access_log_lines(tmp_path):
    """`GET /x%0a<fake line>` is percent-decoded by the server: logged as is, it wrote a forged
    second line (and %00 a NUL) into the logs that go to CloudWatch. Control characters, quotes and
    backslashes are logged escaped, so each request stays one line that says what was asked."""
    server = start_server(tmp_path, VER="log")
    forged = '2026-01-01T00:00:00Z 10.0.0.1 "GET /admin" 200 1'
    try:
        request(server, "GET", "/x%0a" + forged.replace(" ", "%20").replace('"', "%22") + "%00%5c")
        time.sleep(1.2)
        text = Path(server.log.name).read_bytes()
    finally:
        stop_server(server)
    assert b"\x00" not in text
    lines = [line for line in text.decode().splitlines() if '"GET /x' in line or "/admin" in line]
    assert len(lines) == 1, lines
    logged = '"GET /x\\x0a2026-01-01T00:00:00Z 10.0.0.1 \\x22GET /admin\\x22 200 1\\x00\\x5c" 404 '
    assert logged in lines[0], lines[0]


def test_every_answer_says_nosniff(server):
    for method, path in (("GET", "/health"), ("GET", "/"), ("GET", "/nope"), ("DELETE", "/health")):
        response, _ = request(server, method, path)
        assert response.getheader("x-content-type-options") == "nosniff", (method, path)


def test_a_404_does_not_echo_a_long_path(server):
    path = "/" + "a" * 60000
    response, body = request(server, "GET", path)
    assert response.status == 404
    echoed = json.loads(body)["path"]
    assert echoed == path[:256] + "…" and len(body) < 400


def test_the_openapi_document_carries_the_running_version(server):
    _, body = request(server, "GET", "/openapi.json")
    assert json.loads(body)["info"]["version"] == "v3"  # VER, as /health says


def test_a_burst_of_idle_connections_leaves_health_checks_answering(tmp_path):
    """1,100 connections that never send a request (each held up to the 30 s header timeout):
    with granian's default backpressure (1,024 per worker) the next ones waited ~30 s, so the
    image's HEALTHCHECK failed and swarm would have restarted a healthy replica."""
    server = start_server(tmp_path, VER="burst")
    idle = []
    try:
        for _ in range(1100):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        time.sleep(0.5)
        result = run_cli("show", "health", "--url", server.url, "--timeout", "3")
        assert result.returncode == 0, result.stderr
    finally:
        for connection in idle:
            connection.close()
        stop_server(server)


@pytest.mark.parametrize(
    "request_bytes,status",
    [
        (b"BLAH\r\n\r\n", b"400 Bad Request"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414 URI Too Long"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 600_000 + b"\r\n\r\n", b"431 "),
        (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n", b"431 "),
    ],
    ids=["malformed", "uri-over-64k", "header-over-400k", "101-headers"],
)
def test_what_granian_rejects_itself_is_answered_and_closed_and_the_server_serves_on(tmp_path, request_bytes, status):
    """hyper (in granian) answers these before the app sees them, so they have no access-log line:
    granian drops the connection's error without a hook (app/README.md, What granian answers itself)."""
    server = start_server(tmp_path, VER="v5")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(request_bytes)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        assert received.startswith(b"HTTP/1.1 " + status), received[:100]
        assert b"\r\nconnection: close\r\n" in received and b"content-length: 0" in received
        response, body = request(server, "GET", "/health")
        assert response.status == 200 and json.loads(body)["version"] == "v5"
    finally:
        stop_server(server)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_help_and_starts_no_server(flag):
    """`restdemo --help` started a server on 0.0.0.0:8000."""
    answer = subprocess.run([sys.executable, "-m", "restdemo.server", flag], capture_output=True, text=True, timeout=20)
    assert answer.returncode == 0
    assert answer.stdout.startswith("usage: restdemo [-h]\n") and "PORT  port to listen on" in answer.stdout


def test_an_argument_is_refused_in_one_line():
    answer = subprocess.run(
        [sys.executable, "-m", "restdemo.server", "--port", "9000"], capture_output=True, text=True, timeout=20
    )
    assert (answer.returncode, answer.stderr) == (
        1,
        "restdemo: takes no arguments (got --port 9000); see restdemo --help\n",
    )


def test_the_service_alone_installs_without_pulumi_or_aws(tmp_path):
    """`restdemo --help` and running the service needed the whole environment (pulumi-aws, moto...):
    app/README.md's command installs the service and granian only."""
    from tests.support.pulumi_program import REPO

    uv = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    environment = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "alone"), "UV_PYTHON": sys.executable}
    subprocess.run(
        [uv, "sync", "--package", "restdemo", "--no-dev", "--frozen", "-q"],
        cwd=REPO,
        env=environment,
        check=True,
        timeout=300,
    )
    listed = subprocess.run(
        [uv, "pip", "list", "--python", str(tmp_path / "alone" / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    ).stdout
    installed = {line.split()[0].lower() for line in listed.splitlines()[2:]}
    assert installed == {"restdemo", "granian", "click"}  # click: granian's own command line
    answer = subprocess.run([str(tmp_path / "alone" / "bin" / "restdemo"), "--help"], capture_output=True, text=True)
    assert answer.returncode == 0 and answer.stdout.startswith("usage: restdemo")
