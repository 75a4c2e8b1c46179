"""Run a command against a stack's swarm:
`python -m ops.client <stack> [--docker-env] [--tunnel-wait S] -- <command> …`.

`make up|down|status` go through it (scripts/stack.sh), so every stack is reached where it runs:
- `local`: the command as is (with `--docker-env`, DOCKER_HOST from the stack's `dockerHost`).
- an AWS stack: with `--docker-env`, DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH from the
  stack's outputs (`dockerHost`, `adminCa`, `adminClientCert`, and the secret `adminClientKey`,
  written to a private temporary directory removed afterwards, also on SIGTERM and SIGHUP); with
  `adminAccess: session-manager`, the tunnel of infra/admin/tunnel.py opened for the command's
  duration and stopped afterwards with everything it started. A tunnel already listening (a
  deploy job's, another terminal's) is used only if it answers with the stack's own certificate.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

from infra.admin.tunnel import TUNNEL_ADDRESS, TUNNEL_PORT

# What `docker --tlsverify` reads from DOCKER_CERT_PATH, by the stack output that holds it.
CERT_FILES = {"ca.pem": "adminCa", "cert.pem": "adminClientCert", "key.pem": "adminClientKey"}
# How long a docker command waits for the tunnel to open (a manager in service: seconds).
TUNNEL_OPEN_SECONDS = 120.0
STOP_SECONDS = 5.0


class AdminError(Exception):
    """A failure with a message for the operator; main() prints it and exits 1."""


@dataclass(frozen=True)
class StackAccess:
    """How the stack's Docker API is reached, from its settings (Pulumi.yaml's defaults apply)."""

    platform: str = "local"
    admin_access: str = "session-manager"
    region: str | None = None

    @property
    def needs_tunnel(self) -> bool:
        return self.platform == "aws" and self.admin_access == "session-manager"


def stack_access(config: dict[str, dict]) -> StackAccess:
    """From `pulumi config --json` (key -> {"value": …}); keys not set keep their defaults."""

    def value(key: str) -> str | None:
        return (config.get(key) or {}).get("value")

    defaults = StackAccess()
    return StackAccess(
        platform=value("restdemo:platform") or defaults.platform,
        admin_access=value("restdemo:adminAccess") or defaults.admin_access,
        region=value("aws:region"),
    )


def write_certificates(outputs: dict[str, str], cert_dir: Path) -> bool:
    """The client's TLS files in `cert_dir`, readable by this user only; False for a stack
    without an admin CA (local)."""
    if "adminCa" not in outputs:
        return False
    missing = [output for output in CERT_FILES.values() if not outputs.get(output)]
    if missing:
        raise AdminError(f"the stack's outputs lack {', '.join(missing)}: run `make up` for it first")
    for file_name, output in CERT_FILES.items():
        path = cert_dir / file_name
        path.touch(mode=0o600)
        path.write_text(outputs[output])
    return True


def docker_environment(outputs: dict[str, str], cert_dir: Path) -> dict[str, str]:
    """The docker CLI's environment for the stack's Docker API (`dockerHost`; mutual TLS when the
    stack has an admin CA: the AWS stacks)."""
    if not outputs:
        raise AdminError("the stack has no outputs yet (never deployed here): run `make up` for it first")
    if "dockerHost" not in outputs:
        raise AdminError("the stack's outputs lack dockerHost (deployed by an older version): run `make up` for it")
    if not write_certificates(outputs, cert_dir):
        return {"DOCKER_HOST": outputs["dockerHost"]}
    return {"DOCKER_HOST": outputs["dockerHost"], "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(cert_dir)}


def listening(port: int) -> bool:
    try:
        with socket.create_connection((TUNNEL_ADDRESS, port), timeout=1):
            return True
    except OSError:
        return False


def answers_as_the_stack(port: int, cert_dir: Path) -> bool:
    """Whether what listens on the port completes mutual TLS with the stack's CA and client
    certificate: the stack's own managers, not another stack's tunnel."""
    context = ssl.create_default_context(cafile=str(cert_dir / "ca.pem"))
    context.load_cert_chain(cert_dir / "cert.pem", cert_dir / "key.pem")
    try:
        with socket.create_connection((TUNNEL_ADDRESS, port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=TUNNEL_ADDRESS):
                return True
    except (OSError, ssl.SSLError):
        return False


def tunnel_command(stack: str, region: str | None) -> list[str]:
    return [sys.executable, "-m", "ops.tunnel", stack, *(["--region", region] if region else [])]


def stop_group(process: subprocess.Popen) -> None:
    """The process and everything it started (the AWS CLI and its Session Manager plugin)."""
    if process.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(STOP_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_until_open(process: subprocess.Popen, port: int, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not listening(port):
        if process.poll() is not None:
            raise AdminError(f"the tunnel exited ({process.returncode}) before it opened:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise AdminError(f"the tunnel did not open within {timeout:g}s:\n{tail(log)}")
        time.sleep(1)


def tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join("  " + line for line in text.splitlines()[-lines:]) or "  (no output)"


@contextmanager
def tunnel(
    command: list[str],
    log: Path,
    *,
    port: int = TUNNEL_PORT,
    wait: float = TUNNEL_OPEN_SECONDS,
    cert_dir: Path | None = None,
) -> Iterator[None]:
    """The tunnel open while the block runs (waited for up to `wait` seconds; 0: not waited for,
    as `pulumi up`, which waits itself while it creates the managers). One already listening is
    used if it answers as the stack (`cert_dir` holds its certificates) or cannot be checked."""
    if listening(port):
        if cert_dir is not None and not answers_as_the_stack(port, cert_dir):
            raise AdminError(
                f"{TUNNEL_ADDRESS}:{port} is open but does not answer with this stack's certificate "
                "(another stack's tunnel?): stop it first"
            )
        yield
        return
    print(f"restdemo: opening the tunnel to a manager: {' '.join(command)} (log: {log})", file=sys.stderr)
    with open(log, "ab") as output:
        # Its own process group: stopped as a whole afterwards, and the terminal's Ctrl-C is ours.
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if wait:
            wait_until_open(process, port, wait, log)
        yield
    finally:
        stop_group(process)


def run_command(command: list[str], env: dict[str, str]) -> int:
    """`command`'s exit code. Ctrl-C reaches it from the terminal (it shares our process group), so
    it is not sent again, nor is Pulumi killed while it cancels; SIGTERM and SIGHUP are passed on."""
    child = subprocess.Popen(command, env=env)
    handlers = {
        signal.SIGINT: signal.SIG_IGN,
        signal.SIGTERM: lambda signum, _: child.send_signal(signum),
        signal.SIGHUP: lambda signum, _: child.send_signal(signum),
    }
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def pulumi_json(*args: str) -> dict:
    """`pulumi <args> --json`; a failure names the command and shows Pulumi's own message."""
    try:
        result = subprocess.run(["pulumi", *args, "--json"], capture_output=True, text=True)
    except FileNotFoundError:
        raise AdminError("the Pulumi CLI is not installed: https://www.pulumi.com/docs/install/") from None
    if result.returncode != 0:
        raise AdminError(f"`pulumi {' '.join(args)}` failed:\n{result.stderr.strip()}")
    return json.loads(result.stdout) if result.stdout.strip() else {}


def parse_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options before `--`, the command after it."""
    if "--" not in argv:
        raise SystemExit("usage: python -m ops.client STACK [--docker-env] [--tunnel-wait S] -- COMMAND …")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m ops.client", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument("--docker-env", action="store_true", help="point the docker CLI at the stack's swarm")
    parser.add_argument(
        "--tunnel-wait", type=float, default=TUNNEL_OPEN_SECONDS, help="seconds to wait for the tunnel (0: do not)"
    )
    options, command = parser.parse_args(argv[:split]), argv[split + 1 :]
    if not command:
        parser.error("no command after --")
    return options, command


def run(options: argparse.Namespace, command: list[str], scratch: Path) -> int:
    access = stack_access(pulumi_json("config", "--stack", options.stack))
    env = dict(os.environ)
    outputs = {}
    if options.docker_env or access.needs_tunnel:
        outputs = pulumi_json("stack", "output", "--show-secrets", "--stack", options.stack)
    if options.docker_env:
        env |= docker_environment(outputs, scratch)
    if not access.needs_tunnel:
        return run_command(command, env)
    certificates = scratch if write_certificates(outputs, scratch) else None
    with tunnel(
        tunnel_command(options.stack, access.region),
        scratch / "tunnel.log",
        wait=options.tunnel_wait,
        cert_dir=certificates,
    ):
        return run_command(command, env)


def main(argv: list[str] | None = None) -> int:
    options, command = parse_arguments(sys.argv[1:] if argv is None else argv)
    # SIGTERM and SIGHUP end us through the finally blocks: the key is removed, the tunnel stopped.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, _: sys.exit(128 + signum))
    with TemporaryDirectory(prefix="restdemo-docker-") as scratch:
        try:
            return run(options, command, Path(scratch))
        except AdminError as error:
            print(f"restdemo: {error}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
