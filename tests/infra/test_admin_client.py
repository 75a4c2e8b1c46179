"""infra/admin_client.py: how `make up|down|status` reach each stack's swarm (#12 item 8)."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys

import pytest

from infra.admin_client import StackAccess, docker_environment, listening, stack_access, tunnel, tunnel_command
from tests.support.net import free_port, wait_until

pytestmark = pytest.mark.unit

AWS_OUTPUTS = {
    "dockerHost": "tcp://127.0.0.1:23760",
    "adminCa": "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
    "adminClientCert": "-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n",
    "adminClientKey": "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n",
}


def config(**values: str) -> dict:
    """`pulumi config --json`'s shape."""
    return {key: {"value": value, "secret": False} for key, value in values.items()}


def test_a_stack_needs_the_tunnel_only_on_aws_with_session_manager_access():
    assert stack_access({}) == StackAccess("local", "session-manager", None)
    assert not stack_access({}).needs_tunnel
    aws = stack_access(config(**{"restdemo:platform": "aws", "aws:region": "eu-west-1"}))
    assert aws == StackAccess("aws", "session-manager", "eu-west-1") and aws.needs_tunnel
    nlb = config(**{"restdemo:platform": "aws", "restdemo:adminAccess": "load-balancer"})
    assert not stack_access(nlb).needs_tunnel
    assert tunnel_command("prod", "eu-west-1") == [
        sys.executable,
        "-m",
        "infra.tunnel",
        "prod",
        "--region",
        "eu-west-1",
    ]


def test_the_local_stack_uses_its_engine_without_tls(tmp_path):
    assert docker_environment({"dockerHost": "unix:///var/run/docker.sock", "url": "x"}, tmp_path) == {
        "DOCKER_HOST": "unix:///var/run/docker.sock"
    }
    assert list(tmp_path.iterdir()) == []


def test_an_aws_stack_is_reached_with_its_client_certificate_readable_only_by_the_user(tmp_path):
    env = docker_environment(AWS_OUTPUTS, tmp_path)
    assert env == {"DOCKER_HOST": "tcp://127.0.0.1:23760", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path)}
    # The names the docker CLI reads from DOCKER_CERT_PATH.
    assert (tmp_path / "key.pem").read_text() == AWS_OUTPUTS["adminClientKey"]
    assert (tmp_path / "cert.pem").read_text() == AWS_OUTPUTS["adminClientCert"]
    assert (tmp_path / "ca.pem").read_text() == AWS_OUTPUTS["adminCa"]
    for name in ("ca.pem", "cert.pem", "key.pem"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_a_stack_never_deployed_or_without_its_key_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match=r"no outputs yet .*make up"):
        docker_environment({}, tmp_path)
    without_key = {k: v for k, v in AWS_OUTPUTS.items() if k != "adminClientKey"}
    with pytest.raises(SystemExit, match=r"lack adminClientKey"):
        docker_environment(without_key, tmp_path)


def listener_command(port: int, marker) -> list[str]:
    """Stands in for `aws ssm start-session` (tested in test_tunnel.py): listens on the port."""
    code = (
        f"import socket, pathlib, time; pathlib.Path({str(marker)!r}).write_text('started'); "
        f"s = socket.create_server(('127.0.0.1', {port})); time.sleep(60)"
    )
    return [sys.executable, "-c", code]


def test_the_tunnel_is_opened_for_the_command_and_closed_after(tmp_path):
    port, marker = free_port(), tmp_path / "started"
    with tunnel(listener_command(port, marker), port=port, timeout=20):
        assert marker.read_text() == "started"
        subprocess.run(
            [sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}))"], check=True
        )
    wait_until(lambda: not listening(port), 10, what="the tunnel closed")


def test_a_tunnel_already_open_is_used_as_is(tmp_path):
    port, marker = free_port(), tmp_path / "started"
    with socket.create_server(("127.0.0.1", port)):  # the deploy job's, another terminal's
        with tunnel(listener_command(port, marker), port=port, timeout=5):
            pass
    assert not marker.exists()


def test_a_tunnel_that_never_opens_names_the_command(tmp_path):
    with pytest.raises(RuntimeError, match=r"nothing listens on 127.0.0.1:\d+ after 0.5s"):
        with tunnel([sys.executable, "-c", "import time; time.sleep(30)"], port=free_port(), timeout=0.5):
            pass
