"""`make up` and `make status` end by asking the service who answers (scripts/answers.sh): they
must fail when nobody does, not print six errors and exit 0."""

from __future__ import annotations

import subprocess

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
