"""ops/client.py: how `make up|down|status` reach each stack's swarm (#12 item 8).

The Pulumi CLI cannot be installed on these machines: where main() runs, a script named
`pulumi` on PATH answers `config` and `stack output` with the JSON the real one prints. The
Session Manager session is a process that listens on the port (test_tunnel.py covers the
session command itself)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ops.client import (
    AdminError,
    StackAccess,
    answers_as_the_stack,
    docker_environment,
    listening,
    parse_arguments,
    stack_access,
    tunnel,
    tunnel_command,
)
from tests.support.net import free_port, wait_until

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
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
        "ops.tunnel",
        "prod",
        "--region",
        "eu-west-1",
    ]


def test_options_come_before_the_double_dash_as_stack_sh_gives_them():
    options, command = parse_arguments(["dev", "--docker-env", "--", "docker", "service", "ps", "--filter", "x"])
    assert (options.stack, options.docker_env, options.tunnel_wait) == ("dev", True, 120.0)
    assert command == ["docker", "service", "ps", "--filter", "x"]
    options, command = parse_arguments(["dev", "--tunnel-wait", "0", "--", "pulumi", "up", "--yes"])
    assert (options.docker_env, options.tunnel_wait, command) == (False, 0.0, ["pulumi", "up", "--yes"])
    with pytest.raises(SystemExit):
        parse_arguments(["dev", "docker", "ps"])


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


def test_a_stack_never_deployed_or_deployed_before_or_without_its_key_says_what_to_do(tmp_path):
    with pytest.raises(AdminError, match=r"no outputs yet .*make up"):
        docker_environment({}, tmp_path)
    with pytest.raises(AdminError, match=r"lack dockerHost \(deployed by an older version\)"):
        docker_environment({"url": "http://x"}, tmp_path)
    without_key = {k: v for k, v in AWS_OUTPUTS.items() if k != "adminClientKey"}
    with pytest.raises(AdminError, match=r"lack adminClientKey"):
        docker_environment(without_key, tmp_path)


# --- the tunnel --------------------------------------------------------------------------


def session_command(port: int, tmp_path: Path) -> list[str]:
    """Stands in for `python -m ops.tunnel`: a process that starts a child (as the AWS CLI starts
    its plugin) which listens on the port; both write their pids."""
    child = f"import socket, time, os; open({str(tmp_path / 'child')!r}, 'w').write(str(os.getpid())); s = socket.create_server(('127.0.0.1', {port})); time.sleep(120)"  # noqa: E501
    parent = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(120)"
    return [sys.executable, "-c", parent]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_the_tunnel_is_opened_for_the_command_and_stopped_after_with_what_it_started(tmp_path):
    port = free_port()
    with tunnel(session_command(port, tmp_path), tmp_path / "tunnel.log", port=port, wait=20):
        assert listening(port)
        child = int((tmp_path / "child").read_text())
    wait_until(lambda: not listening(port) and not pid_alive(child), 10, what="the tunnel and its child gone")


def test_pulumi_up_does_not_wait_for_the_tunnel_it_makes_the_managers_first(tmp_path):
    port = free_port()
    started = time.monotonic()
    with tunnel([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "log", port=port, wait=0):
        assert time.monotonic() - started < 5


def test_a_tunnel_that_exits_is_reported_at_once_with_its_output(tmp_path):
    failing = [sys.executable, "-c", "import sys; print('Unable to locate credentials'); sys.exit(3)"]
    started = time.monotonic()
    with pytest.raises(
        AdminError, match=r"(?s)the tunnel exited \(3\) before it opened:.*Unable to locate credentials"
    ):
        with tunnel(failing, tmp_path / "tunnel.log", port=free_port(), wait=60):
            pass
    assert time.monotonic() - started < 30


def test_a_tunnel_already_open_is_used_as_is(tmp_path):
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):  # the deploy job's, another terminal's
        with tunnel(session_command(port, tmp_path), tmp_path / "log", port=port, wait=5):
            pass
    assert not (tmp_path / "child").exists()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=restdemo-ca", "-keyout", "ca-key.pem", "-out", "ca.pem")  # fmt: skip
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}-key.pem", "-out", f"{name}.csr")  # fmt: skip
        (d / f"{name}.ext").write_text(extension + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem")  # fmt: skip
    client = d / "client-dir"
    client.mkdir()
    for target, source in (("ca.pem", "ca.pem"), ("cert.pem", "client.pem"), ("key.pem", "client-key.pem")):
        (client / target).write_bytes((d / source).read_bytes())
    return d


def tls_server(certificates: Path, port: int) -> socket.socket:
    """What the managers' dockerd does on 2376: mutual TLS with the stack's CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certificates / "ca.pem"))
    context.load_cert_chain(certificates / "server.pem", certificates / "server-key.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    server = socket.create_server(("127.0.0.1", port))

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            try:
                context.wrap_socket(connection, server_side=True).close()
            except (OSError, ssl.SSLError):
                connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_a_tunnel_already_open_must_answer_as_the_stack(certificates, tmp_path):
    port = free_port()
    client = certificates / "client-dir"
    server = tls_server(certificates, port)
    try:
        assert answers_as_the_stack(port, client)
        with tunnel(session_command(port, tmp_path), tmp_path / "log", port=port, cert_dir=client):
            pass
    finally:
        server.close()
    other = free_port()
    with socket.create_server(("127.0.0.1", other)):  # another stack's tunnel, or anything else
        with pytest.raises(AdminError, match=r"does not answer with this stack's certificate"):
            with tunnel(session_command(other, tmp_path), tmp_path / "log", port=other, cert_dir=client):
                pass


# --- main(), as scripts/stack.sh runs it ----------------------------------------------------------


def fake_pulumi(directory: Path, config: dict, outputs: dict | None, fail: str = "") -> dict[str, str]:
    """PATH with a `pulumi` that prints `config` and `outputs` as the real CLI's --json does."""
    script = directory / "pulumi"
    script.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import json, sys
        if {fail!r}:
            sys.exit(sys.stderr.write({fail!r}) and 255)
        print(json.dumps({config!r} if sys.argv[1] == "config" else {outputs or {}!r}))
        """)
    )
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{directory}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(directory)}


def admin_client(env: dict[str, str], *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ops.client", *args], cwd=REPO, env=env, text=True, **popen)


def test_make_status_on_the_local_stack_runs_docker_against_its_engine(tmp_path):
    env = fake_pulumi(tmp_path, {}, {"dockerHost": "unix:///run/other.sock", "url": "http://localhost:8000"})
    process = admin_client(env, "local", "--docker-env", "--", "sh", "-c", "echo $DOCKER_HOST", stdout=subprocess.PIPE)
    assert (process.communicate(timeout=30)[0], process.returncode) == ("unix:///run/other.sock\n", 0)


def test_a_pulumi_failure_is_shown_as_pulumi_said_it(tmp_path):
    env = fake_pulumi(tmp_path, {}, {}, fail="error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE\n")
    process = admin_client(env, "prod", "--docker-env", "--", "true", stderr=subprocess.PIPE)
    stderr = process.communicate(timeout=30)[1]
    assert process.returncode == 1
    assert "`pulumi config --stack prod` failed:\nerror: passphrase must be set" in stderr
    assert "never deployed" not in stderr


def test_sigterm_removes_the_key_and_passes_the_signal_on(tmp_path):
    aws = config(**{"restdemo:platform": "aws", "restdemo:adminAccess": "load-balancer"})
    env = fake_pulumi(tmp_path, aws, AWS_OUTPUTS)
    marker = tmp_path / "got-sigterm"
    child = (
        f"import signal, sys, time, pathlib; signal.signal(signal.SIGTERM, lambda *a: "
        f"(pathlib.Path({str(marker)!r}).write_text('yes'), sys.exit(0))); time.sleep(60)"
    )
    process = admin_client(env, "dev", "--docker-env", "--", sys.executable, "-c", child)
    wait_until(lambda: list(tmp_path.glob("restdemo-docker-*/key.pem")), 30, what="the key written")
    time.sleep(0.5)  # the command started
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    assert marker.read_text() == "yes"
    assert list(tmp_path.glob("restdemo-docker-*")) == []


def test_ctrl_c_lets_the_command_finish_cancelling(tmp_path):
    """The terminal sends SIGINT to the whole foreground group: Pulumi gets it and cancels
    gracefully; admin_client must neither send it again nor kill Pulumi meanwhile."""
    env = fake_pulumi(tmp_path, {}, {})
    saved = tmp_path / "state-saved"
    child = (
        f"import signal, time, pathlib\n"
        f"signal.signal(signal.SIGINT, lambda *a: (time.sleep(2), pathlib.Path({str(saved)!r}).write_text('yes'), "
        f"exit(0)))\ntime.sleep(60)"
    )
    process = admin_client(env, "local", "--", sys.executable, "-c", child, start_new_session=True)
    time.sleep(2)  # the command started
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(30) == 0
    assert saved.read_text() == "yes"
