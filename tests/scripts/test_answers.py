"""`make up` and `make status` end by asking the service who answers (scripts/answers.sh): they
must fail when nobody does, not print six errors and exit 0."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from contextlib import contextmanager

import pytest

from tests.app.conftest import start_server, stop_server
from tests.support.net import free_port
from tests.support.pulumi_program import REPO

pytestmark = pytest.mark.app

SCRIPT = REPO / "scripts" / "answers.sh"


def test_a_service_that_answers_is_listed_and_exits_0(tmp_path):
    server = start_server(tmp_path, VER="v9")
    try:
        result = subprocess.run([str(SCRIPT), server.url, "3"], capture_output=True, text=True, timeout=60)
    finally:
        stop_server(server)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"answers from {server.url}/health:"
    assert len(lines) == 4 and all(line.endswith("  v9") for line in lines[1:])


def test_no_answer_at_all_fails_with_a_message():
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([str(SCRIPT), url, "2"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(f"restdemo: none of 2 requests to {url}/health was answered healthy")


# `make up` and `make status` run the host's restdemo-cli (scripts/answers.sh) against the stack's url.
from tests.app.test_cli import fake_peer  # noqa: E402


def openssl(directory, *args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)


@contextmanager
def https_peer(tmp_path, body: bytes):
    """An HTTPS server for `localhost` under a CA of its own (to the CLI, what an ALB with an ACM
    certificate is): yields the CA's file, for SSL_CERT_FILE, and the server's URL."""
    ca = ("-subj", "/CN=restdemo test CA", "-keyout", "ca.key", "-out", "ca.pem")
    openssl(tmp_path, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *ca)
    request = ("-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
    openssl(tmp_path, "req", "-newkey", "rsa:2048", "-nodes", *request)
    (tmp_path / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    signed = ("-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-extfile", "san.ext")
    openssl(tmp_path, "x509", "-req", "-in", "server.csr", "-days", "1", *signed)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    with fake_peer(200, body, tls=context) as url:
        yield tmp_path / "ca.pem", url


def test_an_https_url_is_checked_with_its_certificate_verified(tmp_path):
    """`make up` and `make status` of a stack with a domain check https://<domain>: the CLI said
    `--url must be http://host[:port]`. Now it speaks TLS, and trusts what the system trusts only."""
    from tests.app.conftest import BIN

    body = json.dumps({"hostname": "h1", "version": "v9"}).encode()
    with https_peer(tmp_path, body) as (ca, url):

        def cli(trust: str) -> subprocess.CompletedProcess:
            command = [str(BIN / "restdemo-cli"), "show", "health", "--url", url]
            env = {**os.environ, "SSL_CERT_FILE": trust}
            return subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)

        trusted, untrusted = cli(str(ca)), cli(os.devnull)
    assert (trusted.returncode, json.loads(trusted.stdout)) == (0, {"hostname": "h1", "version": "v9"})
    assert untrusted.returncode == 1 and "certificate verify failed" in untrusted.stderr
    assert len(untrusted.stderr.splitlines()) == 1


def answers(url: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), url, *args], capture_output=True, text=True, timeout=60, env=env)


def test_your_own_service_is_asked_at_its_health_path_and_listed_by_status():
    """Not restdemo: a service whose ready path answers plain text. It used to be asked for
    restdemo's /health JSON, and every deploy of it ended in exit 1."""
    with fake_peer(200, b"ready\n") as url:
        result = answers(url, "2", "/ready")
    assert (result.returncode, result.stdout.splitlines()) == (
        0,
        [f"answers from {url}/ready:", "  HTTP 200", "  HTTP 200"],
    )


def test_a_service_answering_only_errors_is_not_healthy():
    with fake_peer(503, b"draining") as url:
        result = answers(url, "2", "/ready")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"answers from {url}/ready:", "  HTTP 503", "  HTTP 503"]
    assert result.stderr.strip() == f"restdemo: none of 2 requests to {url}/ready was answered healthy"


def test_make_up_checks_an_https_url_with_its_certificate_verified(tmp_path):
    body = json.dumps({"hostname": "h1", "version": "v9"}).encode()
    with https_peer(tmp_path, body) as (ca, url):
        trusted = answers(url, "1", env={**os.environ, "SSL_CERT_FILE": str(ca)})
        untrusted = answers(url, "1", env={**os.environ, "SSL_CERT_FILE": os.devnull})
    assert (trusted.returncode, trusted.stdout.splitlines()[1:]) == (0, ["  h1  v9"])
    assert untrusted.returncode == 1
    (refused, summary) = untrusted.stderr.splitlines()
    assert "no answer" in refused and "certificate verify failed" in refused
    assert summary == f"restdemo: none of 1 requests to {url}/health was answered healthy"


def test_a_port_that_answers_something_other_than_http_is_one_line_not_a_traceback():
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def speak_ssh():
        for _ in range(2):
            connection, _ = listener.accept()
            connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            connection.close()

    threading.Thread(target=speak_ssh, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        result = answers(url, "2")
    finally:
        listener.close()
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "  no answer: not HTTP (BadStatusLine)",
        "  no answer: not HTTP (BadStatusLine)",
        f"restdemo: none of 2 requests to {url}/health was answered healthy",
    ]
