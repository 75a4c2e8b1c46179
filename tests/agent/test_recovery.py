"""A swarm that lost its quorum with a manager left: no second swarm forms beside it, and one
command (`restdemo-agent recover` on the survivor) makes it whole, with its services and workers.

One lab for the scenarios, in order: three managers and a worker, a service on them; the primary
and one more manager lose their engines (their instances run on), a replacement manager boots; the
survivor's agent and engine restart; then the recovery."""

from __future__ import annotations

import time

import pytest

from tests.agent.conftest import aws, bootstrap, create_stack, form
from tests.agent.test_healing import LeaderProbe, actions, finished, primary, state_of
from tests.support.net import wait_until

pytestmark = pytest.mark.agent

STACK = "quorum"
STALE_AFTER = 20  # the lab's RESTDEMO_PRIMARY_STALE_AFTER


def manager_of(node) -> bool:
    return node.client.info()["Swarm"].get("ControlAvailable") is True


@pytest.fixture(scope="module")
def lost_quorum(lab_aws, nodes, lab_app_image):
    url = lab_aws["url"]
    queue = create_stack(url, STACK)
    managers = [nodes.add(f"q{i}", "manager", STACK) for i in (1, 2, 3)]
    worker = nodes.add("qw1", "worker", STACK)
    form(managers, url, queue)
    form([worker], url, queue)
    leader = next(m for m in managers if manager_of(m))
    worker_id = worker.client.info()["Swarm"]["NodeID"]
    service = leader.client.services.create(
        lab_app_image["pull"], name="kept", env=["VER=kept"], constraints=[f"node.id=={worker_id}"]
    )
    wait_until(
        lambda: any(t["Status"]["State"] == "running" for t in service.tasks()), 120, what="the service's task runs"
    )
    service.reload()
    record = primary(url, STACK)
    # The recorded primary and one more manager lose their engines; their instances keep running.
    dead = [m for m in managers if m.instance_id == record["instance_id"]]
    dead += [m for m in managers if m not in dead][:1]
    survivor = next(m for m in managers if m not in dead)
    for node in dead:
        node.stop_agent()
        node.stop_engine(kill=True)
    replacement = nodes.add("qr1", "manager", STACK, launching=True, bootstrap_timeout=600)
    return {
        "url": url,
        "queue": queue,
        "record": record,
        "dead": dead,
        "survivor": survivor,
        "worker": worker,
        "worker_id": worker_id,
        "service": {"id": service.id, "spec": service.attrs["Spec"]},
        "replacement": replacement,
        "replacement_bootstrap": bootstrap(replacement, url, queue),
    }


def test_no_second_swarm_while_managers_run(lost_quorum):
    """The record goes stale (no leader confirms it) and its primary does not answer: today's rule
    would let the replacement form a new, empty swarm. Managers of its group still run, so it waits."""
    replacement, url = lost_quorum["replacement"], lost_quorum["url"]
    time.sleep(STALE_AFTER)
    wait_until(
        lambda: len(actions(replacement, "claim-refused")) >= 2, 90, interval=1, what="the replacement refusing twice"
    )
    refused = actions(replacement, "claim-refused")[-1]
    assert sorted(refused["managers_running"]) == sorted(
        m.instance_id for m in (*lost_quorum["dead"], lost_quorum["survivor"])
    )
    assert actions(replacement, "bootstrap") == [] and state_of(replacement) == "inactive"
    assert primary(url, STACK)["instance_id"] == lost_quorum["record"]["instance_id"]  # nobody claimed it
    assert lost_quorum["replacement_bootstrap"].poll() is None  # still waiting, within its bound


def test_survivor_agent_restart_keeps_its_raft(lost_quorum):
    """The lone survivor's agent restarts (a reboot, the watchdog's engine restart), then its engine:
    it is a member already, so its bootstrap is done without a leader, and past the bootstrap bound
    its instance is still in service and healthy: the last copy of the raft log stays for `recover`."""
    survivor, url, queue = lost_quorum["survivor"], lost_quorum["url"], lost_quorum["queue"]
    bound = 15
    survivor.extra_environment["RESTDEMO_BOOTSTRAP_TIMEOUT"] = str(bound)
    survivor.stop_agent()
    survivor.start_agent(url, queue)
    time.sleep(5)
    survivor.stop_agent()
    survivor.stop_engine()
    survivor.start_engine()
    survivor.start_agent(url, queue)
    time.sleep(bound + 10)
    assert survivor.agent.poll() is None, survivor.agent_log()[-2000:]
    assert actions(survivor, "marked-unhealthy") == []
    assert [a["result"] for a in actions(survivor, "bootstrap")][-2:] == ["stay", "stay"]
    (group,) = aws(url, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"restdemo-{STACK}-managers"]
    )["AutoScalingGroups"]
    mine = next(i for i in group["Instances"] if i["InstanceId"] == survivor.instance_id)
    assert (mine["LifecycleState"], mine["HealthStatus"]) == ("InService", "Healthy")
    swarm = survivor.client.info()["Swarm"]
    # Still a manager with its raft; `pending`, as it cannot reach a leader since its engine restarted.
    assert (swarm["ControlAvailable"], swarm["LocalNodeState"]) == (True, "pending")


def test_recover_lost_quorum(lost_quorum, lab_aws, nodes):
    """`restdemo-agent recover` on the survivor: one leader, the same service (ID and spec), the worker
    still a member, the lost managers out and their instances replaced, new managers joined."""
    url, queue, survivor = lost_quorum["url"], lost_quorum["queue"], lost_quorum["survivor"]
    assert finished(survivor.agent_command("recover", url, queue), 120) == 0, survivor.agent_log()[-3000:]
    (recovered,) = actions(survivor, "recovered")
    client = survivor.client
    leaders = [n for n in client.nodes.list() if (n.attrs.get("ManagerStatus") or {}).get("Leader")]
    assert [n.id for n in leaders] == [recovered["node_id"]] == [survivor.client.info()["Swarm"]["NodeID"]]
    service = client.services.get(lost_quorum["service"]["id"])
    assert service.attrs["Spec"] == lost_quorum["service"]["spec"]
    # A new cluster knows its nodes' states only once they report to it (`unknown` until then).
    wait_until(
        lambda: client.nodes.get(lost_quorum["worker_id"]).attrs["Status"]["State"] == "ready",
        60,
        interval=1,
        what="the worker ready in the recovered swarm",
    )
    assert lost_quorum["worker"].client.info()["Swarm"]["NodeID"] == lost_quorum["worker_id"]
    listed = {n.attrs["Status"]["Addr"] for n in client.nodes.list()}
    assert not listed & {m.address for m in lost_quorum["dead"]}
    groups = aws(url, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"restdemo-{STACK}-managers"])
    (group,) = groups["AutoScalingGroups"]
    health = {i["InstanceId"]: i["HealthStatus"] for i in group["Instances"]}
    assert [health[m.instance_id] for m in lost_quorum["dead"]] == ["Unhealthy", "Unhealthy"]  # the group replaces them
    record = primary(url, STACK)
    assert (record["instance_id"], record["status"]) == (survivor.instance_id, "ready")

    # The waiting replacement joins the recovered swarm, and a second new manager after it.
    replacement = lost_quorum["replacement"]
    assert finished(lost_quorum["replacement_bootstrap"], 120) == 0, replacement.agent_log()[-2000:]
    assert [a["result"] for a in actions(replacement, "bootstrap")] == ["join"]
    second = nodes.add("qr2", "manager", STACK, launching=True)
    assert finished(bootstrap(second, url, queue), 120) == 0, second.agent_log()[-2000:]
    with LeaderProbe([survivor, replacement, second]) as probe:
        time.sleep(3)
    assert probe.leaderless == []
    managers = {
        n.attrs["Status"]["Addr"]: n.attrs["ManagerStatus"]["Reachability"]
        for n in client.nodes.list()
        if n.attrs["Spec"]["Role"] == "manager"
    }
    assert managers == dict.fromkeys([survivor.address, replacement.address, second.address], "reachable")
    assert client.services.get(lost_quorum["service"]["id"]).attrs["Spec"] == lost_quorum["service"]["spec"]

    # Run again (an operator unsure whether it finished): the leading survivor only re-checks; the
    # managers that joined since are live and stay. On another manager it refuses.
    assert finished(survivor.agent_command("recover", url, queue), 120) == 0, survivor.agent_log()[-2000:]
    assert actions(survivor, "recovered")[-1]["removed"] == [] and len(actions(survivor, "force-new-cluster")) == 1
    assert finished(second.agent_command("recover", url, queue), 120) == 1
    assert actions(second, "recover-refused")[-1]["message"].startswith("the swarm has a leader")
    assert len([n for n in client.nodes.list() if n.attrs["Spec"]["Role"] == "manager"]) == 3
