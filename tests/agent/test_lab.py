"""The node agent on a lab of real engines (one dockerd per network namespace) and one moto server."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import urllib.request

import pytest

from tests.agent.conftest import aws, lifecycle_notification
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


def test_a_restarted_node_stays_a_member(formed, lab_aws):
    worker = formed["w1"]
    worker.stop_agent()
    worker.stop_engine()
    worker.start_engine()
    wait_until(lambda: worker.client.info()["Swarm"]["LocalNodeState"] == "active", 60, what="w1 back in the swarm")
    assert worker.agent_command("bootstrap", lab_aws["url"], lab_aws["queue"]).wait(120) == 0
    assert bootstrap_results(worker)[-1] == "stay"
    worker.start_agent(lab_aws["url"], lab_aws["queue"])
    seen = nodes_seen_by(formed["m1"])
    wait_until(
        lambda: nodes_seen_by(formed["m1"])[worker.instance_id]["Status"]["State"] == "ready", 60, what="w1 ready again"
    )
    assert len(seen) == 4  # the same node came back; no new one joined


def quorum_watch(manager, stop: threading.Event, failures: list[str]) -> None:
    """Ask a manager that stays for the node list (which needs a quorum) twice a second."""
    while not stop.is_set():
        try:
            nodes = manager.client.nodes.list()
            if not any((n.attrs.get("ManagerStatus") or {}).get("Leader") for n in nodes):
                failures.append("no leader")
        except Exception as exc:  # any failure to answer is a lost quorum here
            failures.append(repr(exc)[:200])
        stop.wait(0.5)


def recorded_calls(moto_url: str, action: str) -> list[dict]:
    """The requests moto received for `action` (its recorder logs even calls it does not implement)."""
    with urllib.request.urlopen(f"{moto_url}/moto-api/recorder/download-recording", timeout=10) as answer:
        entries = [json.loads(line) for line in answer.read().decode().splitlines() if line]
    bodies = [base64.b64decode(e["body"]).decode() if e.get("body_encoded") else e.get("body", "") for e in entries]
    return [urllib.parse.unquote(body) for body in bodies if f"Action={action}&" in body]


def test_replacing_a_manager_keeps_quorum(formed, lab_aws, lab):
    from tests.agent.conftest import NODES
    from tests.agent.lab import LabNode

    url, queue = lab_aws["url"], lab_aws["queue"]
    # The replacement (instance refresh launches it first) joins as a fourth manager.
    new = LabNode("m4", len(NODES), "manager", "lab-a", lab_aws["instances"][len(NODES)], formed["m1"].registry)
    lab["m4"] = new
    new.create_namespace()
    new.start_engine()
    assert new.agent_command("bootstrap", url, queue).wait(180) == 0
    new.start_agent(url, queue)
    old = next(
        n
        for n in formed.values()
        if n.role == "manager"
        and n.name != "m4"
        and nodes_seen_by(n)[n.instance_id].get("ManagerStatus", {}).get("Leader")
    )
    watcher = next(n for n in formed.values() if n.role == "manager" and n not in (old, new))

    stop, failures = threading.Event(), []
    watch = threading.Thread(target=quorum_watch, args=(watcher, stop, failures))
    watch.start()
    urllib.request.urlopen(f"{url}/moto-api/recorder/start-recording", data=b"", timeout=10)
    try:
        aws(url, "sqs").send_message(QueueUrl=queue, MessageBody=lifecycle_notification(old, "restdemo-lab-managers"))
        wait_until(
            lambda: old.client.info()["Swarm"]["LocalNodeState"] == "inactive",
            180,
            interval=1,
            what=f"{old.name} (the leader) drained, demoted and left",
        )
        time.sleep(3)
    finally:
        stop.set()
        watch.join()
    assert failures == []
    seen = nodes_seen_by(watcher)
    assert seen[old.instance_id]["Spec"]["Role"] == "worker"
    assert seen[old.instance_id]["Spec"]["Availability"] == "drain"
    managers = [a for a in seen.values() if a["Spec"]["Role"] == "manager"]
    assert len(managers) == 3 and sum(bool(a["ManagerStatus"].get("Leader")) for a in managers) == 1
    # moto does not implement CompleteLifecycleAction: the request itself is what we can check.
    calls = wait_until(lambda: recorded_calls(url, "CompleteLifecycleAction"), 30, what="completion requested")
    body = calls[0]
    for part in (
        "LifecycleHookName=drain",
        "AutoScalingGroupName=restdemo-lab-managers",
        f"InstanceId={old.instance_id}",
        "LifecycleActionResult=CONTINUE",
        f"LifecycleActionToken=5a3bc3f2-0000-4000-8000-{old.index:012d}",
    ):
        assert part in body


def test_a_node_killed_without_warning_is_removed_only_after_its_instance_is_gone(formed, lab_aws):
    worker = formed["w1"]
    manager = next(n for n in formed.values() if n.role == "manager" and n.client.info()["Swarm"]["ControlAvailable"])
    worker.stop_agent()
    worker.stop_engine(kill=True)
    wait_until(
        lambda: nodes_seen_by(manager)[worker.instance_id]["Status"]["State"] == "down", 120, interval=1, what="w1 down"
    )
    time.sleep(15)  # three rounds of the managers' agents: the instance still runs, so w1 stays
    assert worker.instance_id in nodes_seen_by(manager)
    aws(lab_aws["url"], "ec2").terminate_instances(InstanceIds=[worker.instance_id])
    wait_until(
        lambda: worker.instance_id not in nodes_seen_by(manager),
        60,
        interval=1,
        what="w1 removed once its instance is gone",
    )
