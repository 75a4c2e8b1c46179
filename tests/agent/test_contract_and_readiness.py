"""The node agent's entry point as far as the cluster needs it today: the contract and /ready."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from restdemo_agent.contract import AgentEnvironment
from restdemo_agent.readiness import readiness, serve
from tests.support.agent_env import WORKER_ENVIRONMENT
from tests.support.net import free_port

pytestmark = pytest.mark.unit


def test_environment_names_what_is_missing():
    with pytest.raises(ValueError, match="lacks RESTDEMO_STATE_TABLE"):
        AgentEnvironment.from_environ({k: v for k, v in WORKER_ENVIRONMENT.items() if k != "RESTDEMO_STATE_TABLE"})
    with pytest.raises(ValueError, match="RESTDEMO_TLS_CA_PARAMETER.*RESTDEMO_SECRETS_KEY"):
        AgentEnvironment.from_environ({**WORKER_ENVIRONMENT, "RESTDEMO_ROLE": "manager"})
    with pytest.raises(ValueError, match="manager or worker"):
        AgentEnvironment.from_environ({**WORKER_ENVIRONMENT, "RESTDEMO_ROLE": "boss"})


@pytest.mark.parametrize(
    "swarm,role,expected",
    [
        ({"LocalNodeState": "active", "ControlAvailable": True}, "manager", (True, "active")),
        ({"LocalNodeState": "active", "ControlAvailable": False}, "manager", (False, "not a reachable manager")),
        ({"LocalNodeState": "active", "ControlAvailable": False}, "worker", (True, "active")),
        (
            {"LocalNodeState": "active", "ControlAvailable": True, "Error": "The swarm does not have a leader."},
            "manager",
            (False, "swarm error: The swarm does not have a leader."),
        ),
        ({"LocalNodeState": "pending"}, "worker", (False, "swarm state pending")),
        ({"LocalNodeState": "inactive"}, "manager", (False, "swarm state inactive")),
        ({}, "worker", (False, "swarm state unknown")),
    ],
)
def test_readiness_from_docker_info(swarm, role, expected):
    assert readiness(swarm, role) == expected


def test_ready_endpoint_answers_200_or_503_over_http():
    state = {"ready": (False, "swarm state pending")}
    port = free_port()
    server = serve(port, lambda: state["ready"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5)
        assert refused.value.code == 503
        assert json.load(refused.value) == {"ready": False, "reason": "swarm state pending"}
        state["ready"] = (True, "active")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as answer:
            assert (answer.status, json.load(answer)) == (200, {"ready": True, "reason": "active"})
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        assert missing.value.code == 404
    finally:
        server.shutdown()
