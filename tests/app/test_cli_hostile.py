"""restdemo-cli against small misbehaving servers (#12): it is the image's HEALTHCHECK, so a
server that drips, floods or answers oddly must end in a bounded time with a clear message,
never a traceback, never a hang."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import pytest

from tests.app.conftest import run_cli

pytestmark = pytest.mark.app

HEALTH = b'{"hostname":"h1","version":"v9"}'


@contextmanager
def raw_peer(answer: Callable[[socket.socket], None]):
    """A TCP server that reads the request and then lets `answer` write whatever it likes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                try:
                    answer(connection)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


def head(extra: str = "", length: int | None = None) -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{size}{extra}\r\n".encode()


def test_slow_drip_is_cut_at_the_deadline():
    """A valid answer sent one byte a second: --timeout 2 is the deadline for the whole answer."""
    answer = head(length=len(HEALTH)) + HEALTH

    def drip(connection):
        for byte in answer:
            connection.sendall(bytes([byte]))
            time.sleep(1)

    with raw_peer(drip) as url:
        started = time.monotonic()
        result = run_cli("show", "health", "--url", url, "--timeout", "2")
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "no answer from" in result.stderr and "within 2 s" in result.stderr
    assert elapsed < 10, elapsed  # bounded by the deadline, not by the drip (it was 124 s)


def test_endless_body_is_refused_past_the_limit():
    def flood(connection):
        connection.sendall(head())
        chunk = b"x" * 65536
        for _ in range(2000):  # 128 MiB if read to the end
            connection.sendall(chunk)

    with raw_peer(flood) as url:
        result = run_cli("show", "health", "--url", url, "--timeout", "10")
    assert result.returncode == 1
    assert "answer larger than 65536 bytes" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_chunked_answer_is_read():
    def chunked(connection):
        body = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (HEALTH[:10], HEALTH[10:]))
        connection.sendall(head("Transfer-Encoding: chunked\r\n") + body + b"0\r\n\r\n")

    with raw_peer(chunked) as url:
        result = run_cli("show", "health", "--url", url, "--format", "{{.hostname}} {{.version}}")
    assert (result.returncode, result.stdout) == (0, "h1 v9\n"), result.stderr


def test_deeply_nested_json_is_not_json_to_us():
    body = b"[" * 60_000  # under the size limit, far over the parser's recursion limit

    with raw_peer(lambda c: c.sendall(head(length=len(body)) + body)) as url:
        result = run_cli("show", "health", "--url", url)
    assert result.returncode == 1
    assert "not JSON" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "body,message",
    [
        (b'["h1","v9"]', "without hostname and version"),
        (b'{"hostname":"h1","version":9}', "without hostname and version"),
        (b"null", "without hostname and version"),
    ],
)
def test_the_wrong_shape_is_unhealthy(body, message):
    with raw_peer(lambda c: c.sendall(head(length=len(body)) + body)) as url:
        result = run_cli("show", "health", "--url", url)
    assert result.returncode == 1 and message in result.stderr


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:83616", "http://127.0.0.1:0", "http://127.0.0.1:65536", "http://127.0.0.1:²"],
)
def test_out_of_range_or_odd_ports_are_usage_errors(url):
    result = run_cli("show", "health", "--url", url)
    assert result.returncode == 2, result.stderr
    assert "--url" in result.stderr and "port" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("timeout", ["inf", "1e400", "nan", "-1", "0"])
def test_timeouts_that_are_not_a_finite_positive_number_are_usage_errors(timeout):
    result = run_cli("show", "health", "--timeout", timeout)
    assert result.returncode == 2 and "--timeout" in result.stderr and "Traceback" not in result.stderr


def test_ipv6_and_an_upper_case_scheme_reach_the_service():
    def serve(connection):
        connection.sendall(head(length=len(HEALTH)) + HEALTH)

    with raw_peer(serve) as url:
        port = url.rsplit(":", 1)[1]
        result = run_cli("show", "health", "--url", f"HTTP://127.0.0.1:{port}")
        assert (result.returncode, result.stdout) == (0, HEALTH.decode() + "\n"), result.stderr
    six = socket.socket(socket.AF_INET6)
    six.bind(("::1", 0))
    six.listen()

    def answer():
        connection, _ = six.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(head(length=len(HEALTH)) + HEALTH)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        result = run_cli("show", "health", "--url", f"http://[::1]:{six.getsockname()[1]}")
    finally:
        six.close()
    assert (result.returncode, result.stdout) == (0, HEALTH.decode() + "\n"), result.stderr


@pytest.mark.parametrize(
    "body",
    [b"\xef\xbb\xbf" + HEALTH, HEALTH.decode().encode("utf-16"), HEALTH.decode().encode("utf-32-le")],
    ids=["utf-8-bom", "utf-16", "utf-32-le"],
)
def test_json_in_any_encoding_json_allows_is_read(body):
    """RFC 8259 JSON readers may take UTF-16/32 and a BOM; Python's does, through its codecs (the
    pruned image must keep them: tests/image runs this tier in it)."""

    def answer(connection):
        connection.sendall(head(length=len(body)) + body)

    with raw_peer(answer) as url:
        result = run_cli("show", "health", "--url", url, "--format", "{{.hostname}} {{.version}}")
    assert (result.returncode, result.stdout) == (0, "h1 v9\n"), result.stderr


def test_a_non_ascii_host_is_unreachable_not_a_traceback():
    result = run_cli("show", "health", "--url", "http://bücher.invalid:1", "--timeout", "3")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "cannot reach" in result.stderr
