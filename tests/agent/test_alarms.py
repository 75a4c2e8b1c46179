"""Each failure the alarms are for trips its alarm, from what the lab's agents really log, and a
healthy swarm trips none (tests/agent/alarms.py: the program's own alarms, time-scaled).

One lab stack of 3 managers and 2 workers goes through the failures in order, each leaving the
swarm as the next expects: healthy, a disk filling up, replicas that cannot be placed, a rollout
rolled back, a dead worker, then the quorum lost. A node of a stack with no swarm gives up
joining meanwhile. Each scenario reads the alarms over its own window only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import docker
import pytest

from tests.agent.alarms import datapoints, fired, states_of
from tests.agent.conftest import create_stack, form
from tests.agent.lab import LAB_METRICS_PERIOD
from tests.support.net import wait_until

pytestmark = pytest.mark.agent

STACK, MANAGERS, WORKERS = "alarms", 3, 2
# Until the longest alarm's window (5 periods) holds only data of every agent reporting.
WARM_UP_SECONDS = 6 * LAB_METRICS_PERIOD
# The healthy run: as long as the longest scenario's wait for its alarm.
HEALTHY_SECONDS = 10 * LAB_METRICS_PERIOD


@pytest.fixture(scope="module")
def swarm(lab_aws, nodes, tmp_path_factory):
    """The stack, formed and reporting for a whole alarm window; the second worker's data root is
    a 1 MiB tmpfs, for the disk scenario."""
    disk = tmp_path_factory.mktemp("small-disk")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    url = lab_aws["url"]
    queue = create_stack(url, STACK)
    managers = [nodes.add(f"am{i}", "manager", STACK) for i in (1, 2, 3)]
    workers = [
        nodes.add("aw1", "worker", STACK),
        nodes.add("aw2", "worker", STACK, environment={"RESTDEMO_DOCKER_ROOT": str(disk)}),
    ]
    form(managers[:1], url, queue)
    form(managers[1:] + workers, url, queue)
    members = managers + workers
    wait_until(lambda: all(metrics_lines(n) for n in members), 60, interval=2, what="every agent reporting")
    time.sleep(WARM_UP_SECONDS)
    yield {
        "managers": managers,
        "workers": workers,
        "members": members,
        "disk": disk,
        "client": managers[0].client,
        "url": url,
        "queue": queue,
        "ready": time.time(),  # from here the alarms' windows hold a healthy swarm's data only
    }
    subprocess.run(["umount", str(disk)], check=False)


def metrics_lines(node) -> list[str]:
    return [line for line in node.agent_log().splitlines() if '"action": "metrics"' in line]


def alarms_over(swarm, start: float, end: float) -> dict:
    return fired(swarm["members"], STACK, MANAGERS, WORKERS, start, end)


def states(swarm, key: str, start: float, end: float) -> list[tuple[float, str]]:
    """One alarm's state at each evaluation in [start, end], over the whole run's data."""
    return states_of(swarm["members"], STACK, MANAGERS, WORKERS, key, swarm["ready"], start, end)


def wait_for_alarm(swarm, key: str, start: float, seconds: float) -> dict:
    """Wait until `key` fires in [start, now] (up to `seconds`); the alarms' first ALARM times."""
    found = {}

    def tripped() -> bool:
        found.update(alarms_over(swarm, start, time.time()))
        return found[key] is not None

    wait_until(tripped, seconds, interval=LAB_METRICS_PERIOD, what=f"the alarm {key}")
    return found


def test_a_healthy_swarm_trips_no_alarm(swarm):
    time.sleep(max(0.0, swarm["ready"] + HEALTHY_SECONDS - time.time()))
    found = alarms_over(swarm, swarm["ready"], swarm["ready"] + HEALTHY_SECONDS)
    assert len(found) == 9  # every swarm alarm was evaluated (workers-spot-fallback among them: dev runs spot)
    assert {key: at for key, at in found.items() if at is not None} == {}


def test_alarm_a_nodes_disk_fills_up(swarm):
    start = time.time()
    (swarm["disk"] / "filler").write_bytes(b"\0" * 900 * 1024)
    try:
        found = wait_for_alarm(swarm, "node-disk-high", start, 6 * LAB_METRICS_PERIOD)
        assert found["node-disk-high"] - start >= 2 * LAB_METRICS_PERIOD - LAB_METRICS_PERIOD  # 2 periods to alarm
    finally:
        (swarm["disk"] / "filler").unlink()


def test_alarm_the_service_runs_fewer_replicas_than_desired(swarm):
    client = swarm["client"]
    start = time.time()
    service = client.services.create(
        "busybox-does-not-exist:1",
        name="unplaceable",
        mode=docker.types.ServiceMode("replicated", replicas=2),
        constraints=["node.labels.nowhere==true"],  # no node has it: the replicas stay pending
    )
    try:
        found = wait_for_alarm(swarm, "replicas-below-desired", start, 10 * LAB_METRICS_PERIOD)
        assert found["replicas-below-desired"] - start >= 4 * LAB_METRICS_PERIOD  # 5 periods, not at once
    finally:
        service.remove()


def test_alarm_a_rollout_is_rolled_back(swarm, lab_app_image, broken_image):
    client = swarm["client"]
    service = client.services.create(
        lab_app_image["pull"],
        name="rolling",
        mode=docker.types.ServiceMode("replicated", replicas=2),
        constraints=["node.role==worker"],
        update_config=docker.types.UpdateConfig(
            parallelism=1, delay=1_000_000_000, failure_action="rollback", monitor=15_000_000_000, order="start-first"
        ),
        rollback_config=docker.types.RollbackConfig(parallelism=1, order="start-first"),
    )
    swarm["rolled_back"] = service.id  # for the next scenario, which removes it
    wait_until(lambda: sum(t["Status"]["State"] == "running" for t in service.tasks()) == 2, 120, what="2 up")
    start = time.time()
    service.reload()
    service.update(image=broken_image)
    found = wait_for_alarm(swarm, "service-rolled-back", start, 240)
    assert found["service-rolled-back"] >= start
    # Swarm's reason, logged by the leader while UpdateStatus still had it (its credential refresh,
    # which follows a rollback at once, clears it).
    noted = [
        json.loads(line)
        for manager in swarm["managers"]
        for line in manager.agent_log().splitlines()
        if '"action": "service-rolled-back"' in line
    ]
    assert [line["service"] for line in noted] == ["rolling"] and noted[0]["reason"]


def test_alarm_rollback_holds_through_a_credential_refresh(swarm):
    """Once the rollback ends, the leader re-sends the service's registry credentials (swarm's
    rollback was an update it did not make), and its agent restarts (as after a leader change) and
    re-sends them all again: spec-preserving updates, which clear UpdateStatus. The bad version is
    still not deployed, so the alarm holds, with no OK mail; a new spec that rolls out clears it."""
    client = swarm["client"]
    service = client.services.get(swarm["rolled_back"])
    try:
        wait_until(
            lambda: "UpdateStatus" not in client.services.get(service.id).attrs,
            120,
            what="the leader's refresh after the rollback",
        )
        leader_id = next(n.id for n in client.nodes.list() if (n.attrs.get("ManagerStatus") or {}).get("Leader"))
        leader = next(m for m in swarm["managers"] if m.client.info()["Swarm"]["NodeID"] == leader_id)
        refreshes = leader.agent_log().count('"action": "registry-credentials-refreshed"')
        restarted = time.time()
        leader.stop_agent()
        leader.start_agent(swarm["url"], swarm["queue"])
        wait_until(
            lambda: leader.agent_log().count('"action": "registry-credentials-refreshed"') > refreshes,
            60,
            what="the restarted leader's refresh",
        )
        time.sleep(4 * LAB_METRICS_PERIOD)
        held = states(swarm, "service-rolled-back", restarted, time.time())
        assert held and {state for _, state in held} == {"ALARM"}, held

        deployed = time.time()
        service.reload()
        service.update(env=["VER=fixed"])
        found = {}

        def cleared() -> bool:
            found["states"] = states(swarm, "service-rolled-back", deployed, time.time())
            return found["states"][-1][1] == "OK"

        wait_until(cleared, 180, interval=LAB_METRICS_PERIOD, what="the alarm OK after the next deploy")
    finally:
        service.remove()


def test_alarm_a_node_dies(swarm):
    """A worker's engine and agent killed: its heartbeat stops, and missing data is breaching."""
    worker = swarm["workers"][0]
    start = time.time()
    os.killpg(worker.agent.pid, signal.SIGKILL)
    worker.stop_engine(kill=True)
    found = wait_for_alarm(swarm, "node-heartbeat-missing", start, 10 * LAB_METRICS_PERIOD)
    assert found["node-heartbeat-missing"] - start >= 4 * LAB_METRICS_PERIOD  # 5 periods under the node count


def test_alarm_a_manager_has_no_quorum(swarm):
    """Two of three managers gone: the survivor sees no leader, within a period."""
    survivor, *others = swarm["managers"]
    start = time.time()
    for node in others:
        os.killpg(node.agent.pid, signal.SIGKILL)
        node.stop_engine(kill=True)
    found = wait_for_alarm(swarm, "swarm-no-leader", start, 12 * LAB_METRICS_PERIOD)
    assert found["swarm-no-leader"] >= start
    # From the managers' own count: the survivor reports 0 reachable, the others nothing (5 "minutes").
    found = wait_for_alarm(swarm, "managers-below-quorum", start, 12 * LAB_METRICS_PERIOD)
    assert start <= found["managers-below-quorum"] <= start + 5 * LAB_METRICS_PERIOD
    # Not only silence: the survivor itself reports that it sees no leader.
    said = [p for p in datapoints([survivor]) if p.metric == "SwarmLeaderSeen" and p.timestamp >= start]
    assert said and said[-1].value == 0.0


def test_alarm_a_node_cannot_join_the_swarm(lab_aws, nodes):
    """A worker of a stack whose swarm does not exist gives up joining and asks to be replaced."""
    url = lab_aws["url"]
    queue = create_stack(url, "alarmsjoin")
    node = nodes.add("aj1", "worker", "alarmsjoin", bootstrap_timeout=20)
    start = time.time()
    node.start_agent(url, queue)
    node.agent.wait(120)
    assert '"action": "bootstrap-gave-up"' in node.agent_log()
    found = fired([node], "alarmsjoin", 1, 1, start, time.time() + LAB_METRICS_PERIOD)
    assert found["node-bootstrap-gave-up"] is not None
