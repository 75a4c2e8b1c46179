"""Fixtures of the e2e tier; the harness itself is in harness.py."""

from __future__ import annotations

import pytest

from tests.e2e.harness import deployed, local_registry, swarm_mode
from tests.support.docker_engine import require_tool

REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("e2e measurements")
        for line in REPORT:
            terminalreporter.line(line)


def report(line: str) -> None:
    REPORT.append(line)
    print(line)


# Whether this test session put the engine in swarm mode (the `swarm` fixture records it).
SWARM_FORMED_HERE: list[bool] = []


@pytest.fixture(scope="session")
def swarm(docker_client):
    SWARM_FORMED_HERE.append(docker_client.info()["Swarm"]["LocalNodeState"] != "active")
    with swarm_mode(docker_client) as client:
        yield client


@pytest.fixture
def swarm_of_our_own(swarm):
    """The engine's swarm, when the test session formed it: a test that leaves and re-forms it must
    not take a swarm the machine already had."""
    if SWARM_FORMED_HERE != [True]:
        pytest.skip("this engine was in swarm mode before the tests: its swarm is not theirs to re-form")
    return swarm


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    binary = require_tool("docker-registry", "apt-get install docker-registry")
    with local_registry(binary, tmp_path_factory.mktemp("registry")) as address:
        yield address


@pytest.fixture(scope="module")
def deployment(swarm, registry):
    with deployed(swarm, registry) as deployment:
        yield deployment
