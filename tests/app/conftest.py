"""The real restdemo server, started as its console script on a free loopback port.

With RESTDEMO_APP_IMAGE set to an image (tests/image/test_pruned_runtime.py sets it), the
server and every restdemo-cli call run in that image instead, on the host's network: the same
tests then prove the pruned runtime image lacks nothing they use."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_until

BIN = Path(sys.executable).parent
APP_IMAGE = os.environ.get("RESTDEMO_APP_IMAGE")


def in_app_image(command: list[str], env: dict[str, str]) -> list[str]:
    """`command` run in APP_IMAGE on the host's network (so its hostname is the host's too), with
    `env`; `docker run` stays attached and passes SIGTERM on, as the process would get it."""
    return [
        "docker",
        "run",
        "--rm",
        "--network",
        "host",
        *(f"--env={k}={v}" for k, v in env.items()),
        APP_IMAGE,
        *command,
    ]


@dataclass
class RunningServer:
    process: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)


def start_server(tmp_path: Path, **env: str) -> RunningServer:
    port = free_port()
    log = open(tmp_path / f"server-{port}.log", "w+b")
    if APP_IMAGE:
        command = in_app_image(["restdemo"], {"HOST": "127.0.0.1", "PORT": str(port), **env})
        environment = dict(os.environ)
    else:
        command = [str(BIN / "restdemo")]
        environment = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env}
        environment.pop("VER", None) if "VER" not in env else None
    process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    server = RunningServer(process, port)
    wait_until(lambda: _answers(server), timeout=15, what=f"restdemo on port {port}")
    server.log = log
    return server


def _answers(server: RunningServer) -> bool:
    if server.process.poll() is not None:
        raise RuntimeError(f"server exited with {server.process.returncode}")
    conn = server.connection()
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    finally:
        conn.close()


def stop_server(server: RunningServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        server.process.wait(15)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("server"), VER="v3")
    yield running
    stop_server(running)


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    if APP_IMAGE:  # what the CLI reads from its environment, as the host's process would see it
        env = {name: os.environ[name] for name in ("PORT", "RESTDEMO_URL") if name in os.environ}
        command = in_app_image(["restdemo-cli", *args], env)
    else:
        command = [str(BIN / "restdemo-cli"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
