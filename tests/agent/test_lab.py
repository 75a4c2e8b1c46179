"""The node agent on a lab of real engines (one dockerd per network namespace) and one moto server."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.agent.conftest import aws
from tests.support.net import wait_until

pytestmark = pytest.mark.agent


def nodes_seen_by(node) -> dict[str, dict]:
    """hostname-independent view: engine instance label -> node attrs."""
    return {n.attrs["Description"]["Engine"]["Labels"]["instance_id"]: n.attrs for n in node.client.nodes.list()}


def ready(node) -> int:
    try:
        with urllib.request.urlopen(f"http://{node.address}:44554/ready", timeout=2) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def formed(lab, lab_aws):
    """Every node bootstraps at once, as an auto scaling group's first launch does."""
    processes = {name: node.agent_command("bootstrap", lab_aws["url"], lab_aws["queue"]) for name, node in lab.items()}
    codes = {name: process.wait(180) for name, process in processes.items()}
    assert codes == dict.fromkeys(lab, 0), {name: lab[name].agent_log()[-2000:] for name in lab}
    for node in lab.values():
        node.start_agent(lab_aws["url"], lab_aws["queue"])
    return lab


def bootstrap_results(node) -> list[str]:
    return [
        json.loads(line)["result"]
        for line in node.agent_log().splitlines()
        if line.startswith("{") and json.loads(line)["action"] == "bootstrap"
    ]


def test_the_swarm_forms_by_itself_with_one_init(formed, lab_aws):
    results = [r for node in formed.values() for r in bootstrap_results(node)]
    assert sorted(results) == ["init", "join", "join", "join"]
    seen = nodes_seen_by(formed["m2"])
    assert {seen[n.instance_id]["Spec"]["Role"] for n in formed.values() if n.role == "manager"} == {"manager"}
    assert seen[formed["w1"].instance_id]["Spec"]["Role"] == "worker"
    assert all(attrs["Status"]["State"] == "ready" for attrs in seen.values())
    tokens = aws(lab_aws["url"], "ssm").describe_parameters()["Parameters"]
    assert sorted((p["Name"], p["Type"]) for p in tokens) == [
        ("/restdemo/lab/join-token/manager", "SecureString"),
        ("/restdemo/lab/join-token/worker", "SecureString"),
    ]


def test_nodes_carry_zone_instance_and_role_labels(formed):
    def labelled():
        seen = nodes_seen_by(formed["m1"])
        return all(
            seen[n.instance_id]["Spec"].get("Labels")
            == {"availability_zone": n.zone, "instance_id": n.instance_id, "role": n.role}
            for n in formed.values()
        )

    wait_until(labelled, 60, interval=1, what="node labels copied by the managers' agents")


def test_every_node_reports_ready(formed):
    for node in formed.values():
        wait_until(lambda node=node: ready(node) == 200, 30, what=f"{node.name} ready")
