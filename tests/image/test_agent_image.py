"""The node agent's image (agent/Dockerfile) on a real engine."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.agent_env import WORKER_ENVIRONMENT
from tests.support.docker_engine import REPO, base_image_args, build_image

pytestmark = pytest.mark.image

AGENT = REPO / "agent"


@pytest.fixture(scope="module")
def agent_image(docker_client):
    tag = f"restdemo-agent-test:{uuid.uuid4().hex[:8]}"
    build_image(AGENT, tag, build_args=base_image_args(docker_client))
    yield docker_client.images.get(tag)
    docker_client.images.remove(tag, force=True)


def run(docker_client, image, command, environment=None):
    container = docker_client.containers.run(image.id, command, environment=environment or {}, detach=True)
    try:
        return container.wait(timeout=60)["StatusCode"], container.logs().decode()
    finally:
        container.remove(force=True)


def test_hadolint_reports_nothing_on_the_agent_dockerfile():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(AGENT / "Dockerfile")], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "")


def test_entry_point_documents_its_commands_and_checks_the_contract(docker_client, agent_image):
    code, output = run(docker_client, agent_image, ["--help"])
    assert code == 0 and "bootstrap" in output and "run" in output
    code, output = run(docker_client, agent_image, ["bootstrap"])
    assert code == 2
    assert json.loads(output.strip().splitlines()[-1])["message"].startswith(
        "the agent's environment lacks RESTDEMO_STACK"
    )
    partial = {k: v for k, v in WORKER_ENVIRONMENT.items() if k != "RESTDEMO_LIFECYCLE_QUEUE_URL"}
    code, output = run(docker_client, agent_image, ["run"], partial)
    assert code == 2 and "RESTDEMO_LIFECYCLE_QUEUE_URL" in output


def test_runtime_has_the_agent_and_cat_but_no_pip(docker_client, agent_image):
    assert agent_image.attrs["Config"]["Entrypoint"] == ["restdemo-agent"]
    container = docker_client.containers.run(
        agent_image.id,
        ["-c", "import importlib.util as u; print(u.find_spec('pip') is None)"],
        entrypoint=["python3"],
        detach=True,
    )
    try:
        container.wait(timeout=60)
        assert container.logs().decode().strip() == "True"
    finally:
        container.remove(force=True)
    # The daemon-log shipper (cloud-init) runs `cat` in this image.
    container = docker_client.containers.run(agent_image.id, ["/etc/hostname"], entrypoint=["cat"], detach=True)
    try:
        assert container.wait(timeout=60)["StatusCode"] == 0
    finally:
        container.remove(force=True)
