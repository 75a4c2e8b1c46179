"""Run a command against a stack's swarm: `python -m infra.admin_client <stack> -- docker service ps …`.

`make up|down|status` go through it (scripts/stack.sh), so every stack is reached where it runs:
- `local`: the command as is, against this machine's Docker engine.
- an AWS stack: with `--docker-env`, DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH from the
  stack's outputs (`dockerHost`, `adminCa`, `adminClientCert`, and the secret `adminClientKey`,
  written to a private temporary directory removed afterwards); with `adminAccess:
  session-manager`, the tunnel of infra/tunnel.py opened for the command's duration, unless one
  already listens (a deploy job's, another terminal's).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

from infra.tunnel import TUNNEL_ADDRESS, TUNNEL_PORT, wait_for_tunnel

# What `docker --tlsverify` reads from DOCKER_CERT_PATH, by the stack output that holds it.
CERT_FILES = {"ca.pem": "adminCa", "cert.pem": "adminClientCert", "key.pem": "adminClientKey"}
# A tunnel that opens later than this is failing (no plugin, no permission, no manager).
TUNNEL_OPEN_SECONDS = 120.0


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


def docker_environment(outputs: dict[str, str], cert_dir: Path) -> dict[str, str]:
    """The docker CLI's environment for the stack's Docker API (`dockerHost`; mutual TLS when the
    stack has an admin CA: the AWS stacks). Writes the client's TLS files into `cert_dir`,
    readable by this user only."""
    if "dockerHost" not in outputs:
        raise SystemExit("restdemo: the stack has no outputs yet (never deployed here): run `make up` for it first")
    if "adminCa" not in outputs:
        return {"DOCKER_HOST": outputs["dockerHost"]}
    missing = [output for output in CERT_FILES.values() if not outputs.get(output)]
    if missing:
        raise SystemExit(f"restdemo: the stack's outputs lack {', '.join(missing)}: run `make up` for it first")
    for file_name, output in CERT_FILES.items():
        path = cert_dir / file_name
        path.touch(mode=0o600)
        path.write_text(outputs[output])
    return {"DOCKER_HOST": outputs["dockerHost"], "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(cert_dir)}


def listening(port: int) -> bool:
    try:
        with socket.create_connection((TUNNEL_ADDRESS, port), timeout=1):
            return True
    except OSError:
        return False


def tunnel_command(stack: str, region: str | None) -> list[str]:
    return [sys.executable, "-m", "infra.tunnel", stack, *(["--region", region] if region else [])]


@contextmanager
def tunnel(command: list[str], port: int = TUNNEL_PORT, timeout: float = TUNNEL_OPEN_SECONDS) -> Iterator[None]:
    """The tunnel open while the block runs: one already listening is used as is; else `command`'s,
    stopped afterwards."""
    if listening(port):
        yield
        return
    print(f"restdemo: opening the tunnel to a manager: {' '.join(command)}", file=sys.stderr)
    process = subprocess.Popen(command, start_new_session=True)
    try:
        wait_for_tunnel(port, timeout)
        yield
    finally:
        process.terminate()
        process.wait(10)


def pulumi_json(*args: str) -> dict:
    result = subprocess.run(["pulumi", *args, "--json"], capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a command against a stack's swarm (see the module's doc).")
    parser.add_argument("stack")
    parser.add_argument("--docker-env", action="store_true", help="point the docker CLI at the stack's swarm")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the command and its arguments")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (after --)")
    access = stack_access(pulumi_json("config", "--stack", args.stack))
    with TemporaryDirectory(prefix="restdemo-docker-") as cert_dir:
        env = dict(os.environ)
        if args.docker_env:
            outputs = pulumi_json("stack", "output", "--show-secrets", "--stack", args.stack)
            env |= docker_environment(outputs, Path(cert_dir))
        if not access.needs_tunnel:
            return subprocess.run(command, env=env).returncode
        with tunnel(tunnel_command(args.stack, access.region)):
            return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
