"""agent/src/restdemo_agent/readiness.py: /ready, from the node's own view of the swarm."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from restdemo_agent.readiness import readiness, serve
from tests.support.net import free_port

pytestmark = pytest.mark.unit


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
