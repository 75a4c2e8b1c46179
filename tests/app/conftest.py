"""The real restdemo server, started as its console script on a free loopback port."""

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
    environment = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env}
    environment.pop("VER", None) if "VER" not in env else None
    process = subprocess.Popen([str(BIN / "restdemo")], env=environment, stdout=log, stderr=subprocess.STDOUT)
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
    return subprocess.run([str(BIN / "restdemo-cli"), *args], capture_output=True, text=True, timeout=timeout)
