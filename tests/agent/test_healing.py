"""The swarm heals through the failures Docker for AWS users hit: one test per scenario, each on
real engines (one dockerd per network namespace), the agents as they run on nodes, and moto with
the lifecycle model (tests/support/lifecycle_model.py). Every scenario has a stack of its own
(table, queue, groups), so they do not see each other's state."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import docker
import pytest

from tests.agent.conftest import aws, bootstrap, create_stack, create_table, form, new_instance
from tests.agent.lab import LabNode
from tests.support.lifecycle_model import TERMINATING
from tests.support.net import wait_until

pytestmark = pytest.mark.agent


def actions(node: LabNode, name: str) -> list[dict]:
    lines = [json.loads(line) for line in node.agent_log().splitlines() if line.startswith("{")]
    return [line for line in lines if line["action"] == name]


def state_of(node: LabNode) -> str:
    return node.client.info()["Swarm"]["LocalNodeState"]


def put_primary(url: str, stack: str, **fields: str) -> None:
    aws(url, "dynamodb").put_item(
        TableName=f"restdemo-{stack}-state",
        Item={"pk": {"S": "primary_manager"}, **{k: {"S": v} for k, v in fields.items()}},
    )


def primary(url: str, stack: str) -> dict:
    item = aws(url, "dynamodb").get_item(TableName=f"restdemo-{stack}-state", Key={"pk": {"S": "primary_manager"}})
    return {k: v["S"] for k, v in item["Item"].items()}


def finished(process, seconds: float) -> int | None:
    """The exit code, or None (and the process ended) when it did not finish in time."""
    try:
        return process.wait(seconds)
    except Exception:
        process.kill()
        return None


def readiness(node: LabNode) -> int:
    try:
        with urllib.request.urlopen(f"http://{node.address}:44554/ready", timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


class LeaderProbe:
    """Asks the managers twice a second whether the swarm has a leader; counts the samples without."""

    def __init__(self, managers: list[LabNode]):
        self.managers, self.samples, self.leaderless = managers, 0, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def has_leader(self) -> bool:
        for manager in list(self.managers):
            try:
                nodes = manager.client.nodes.list()
                if any((n.attrs.get("ManagerStatus") or {}).get("Leader") for n in nodes):
                    return True
            except Exception:  # this one cannot answer: ask the next
                continue
        return False

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples += 1
            if not self.has_leader():
                self.leaderless.append(time.monotonic())
            self.stop.wait(0.5)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        print(f"leader probe: {self.samples} samples, {len(self.leaderless)} without a leader")


# --- bootstrap ------------------------------------------------------------------------------


def test_bootstrap_retry_outlasts_aws_errors_at_boot(lab_aws, nodes):
    """The state table does not answer at first (a partial stack, IAM still propagating): the agent
    retries instead of ending the node's setup for good."""
    url = lab_aws["url"]
    queue = create_stack(url, "retry", table=False)
    manager = nodes.add("rt1", "manager", "retry")
    process = bootstrap(manager, url, queue)
    wait_until(lambda: actions(manager, "bootstrap-retry"), 30, interval=0.5, what="a failed first attempt")
    create_table(url, "retry")
    assert finished(process, 90) == 0, manager.agent_log()[-2000:]
    assert [a["result"] for a in actions(manager, "bootstrap")] == ["init"]


def test_stale_primary_of_a_swarm_that_is_gone_is_claimed(lab_aws, nodes):
    """The record names a ready primary nobody confirmed for long, at an address where no manager
    answers (a dead single manager, a table left by a partial destroy): a new manager forms a swarm."""
    url = lab_aws["url"]
    queue = create_stack(url, "stale")
    old = str(time.time() - 3600)
    put_primary(url, "stale", address="10.77.0.250", instance_id="i-gone", node_id="gone", status="ready", updated=old)
    aws(url, "ssm").put_parameter(Name="/restdemo/stale/join-token/manager", Value="SWMTKN-1-gone", Type="SecureString")
    manager = nodes.add("st1", "manager", "stale")
    assert finished(bootstrap(manager, url, queue), 90) == 0, manager.agent_log()[-2000:]
    assert [a["result"] for a in actions(manager, "bootstrap")] == ["init"]
    record = primary(url, "stale")
    assert (record["instance_id"], record["status"]) == (manager.instance_id, "ready")


def test_crashed_claim_is_taken_over(lab_aws, nodes):
    """A claimant that crashed between its claim and `mark_ready` left the record `initialising`."""
    url = lab_aws["url"]
    queue = create_stack(url, "crashed")
    put_primary(url, "crashed", address="10.77.0.251", instance_id="i-crashed", status="initialising", updated="0")
    manager = nodes.add("cc1", "manager", "crashed")
    assert finished(bootstrap(manager, url, queue), 90) == 0, manager.agent_log()[-2000:]
    assert [a["result"] for a in actions(manager, "bootstrap")] == ["init"]
    assert primary(url, "crashed")["instance_id"] == manager.instance_id


def test_unreachable_primary_at_the_first_join_is_not_fatal(lab_aws, nodes):
    """dockerd gives a join to an unreachable manager up after 20 s but stays `pending`; every later
    join then answers "already part of a swarm". The agent leaves the pending join and retries."""
    url = lab_aws["url"]
    queue = create_stack(url, "unreach")
    manager = nodes.add("ur1", "manager", "unreach")
    assert finished(bootstrap(manager, url, queue), 90) == 0
    real = primary(url, "unreach")
    put_primary(url, "unreach", **{**real, "address": "10.77.0.252", "updated": str(time.time())})
    worker = nodes.add("ur2", "worker", "unreach", bootstrap_timeout=150)
    process = bootstrap(worker, url, queue)
    wait_until(lambda: actions(worker, "bootstrap-retry"), 60, interval=1, what="the join to nowhere given up")
    put_primary(url, "unreach", **{**real, "updated": str(time.time())})
    assert finished(process, 120) == 0, worker.agent_log()[-2000:]
    assert state_of(worker) == "active"
    worker_id = worker.client.info()["Swarm"]["NodeID"]
    assert manager.client.nodes.get(worker_id).attrs["Status"]["State"] == "ready"


# --- replacement ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def single(lab_aws, nodes):
    """dev's shape: one manager, one worker, their agents running."""
    url = lab_aws["url"]
    queue = create_stack(url, "single")
    manager, worker = nodes.add("sm1", "manager", "single"), nodes.add("sw1", "worker", "single")
    form([manager], url, queue)
    form([worker], url, queue)
    return {"url": url, "queue": queue, "manager": manager, "worker": worker, "managers": [manager]}


def test_single_manager_replacement_keeps_a_manager_and_its_quorum(lab_aws, nodes, single):
    """An instance refresh on a one-manager stack: the new manager is held (launch hook) until it is
    a member; only then does the old one drain, demote and leave, and complete its action."""
    lifecycle, url, queue = lab_aws["lifecycle"], single["url"], single["queue"]
    old = single["manager"]
    with LeaderProbe(single["managers"]) as probe:
        new = nodes.add("sm2", "manager", "single", launching=True)
        single["managers"].append(new)
        new.start_agent(url, queue)
        wait_until(lambda: lifecycle.state_of(new.instance_id) == "InService", 120, interval=1, what="sm2 joined")
        lifecycle.begin("restdemo-single-managers", old.instance_id, TERMINATING)
        wait_until(lambda: lifecycle.ended(old.instance_id), 120, interval=1, what="sm1 retired")
        wait_until(lambda: state_of(old) == "inactive", 30, what="sm1 left")
        time.sleep(12)  # two rounds of sm1's agent: a retired manager does not join again
        assert state_of(old) == "inactive"
    assert probe.leaderless == [] and probe.samples > 10
    (action,) = lifecycle.ended(old.instance_id)
    assert (action.result, action.ended_by) == ("CONTINUE", "complete")
    managers = [n for n in new.client.nodes.list() if n.attrs["Spec"]["Role"] == "manager"]
    assert [m.attrs["Status"]["Addr"] for m in managers] == [new.address]
    single["manager"] = new


def test_single_manager_replacement_after_the_manager_is_gone_for_good(lab_aws, nodes, single):
    """The only manager dies with its instance: its replacement finds the record stale and no manager
    answering, forms a new swarm; the orphaned worker leaves the dead swarm and joins the new one."""
    lifecycle, url, queue = lab_aws["lifecycle"], single["url"], single["queue"]
    dead, worker = single["manager"], single["worker"]
    dead.stop_agent()
    dead.stop_engine(kill=True)
    aws(url, "ec2").terminate_instances(InstanceIds=[dead.instance_id])
    new = nodes.add("sm3", "manager", "single", launching=True)
    new.start_agent(url, queue)
    wait_until(lambda: lifecycle.state_of(new.instance_id) == "InService", 150, interval=1, what="sm3 formed a swarm")
    assert [a["result"] for a in actions(new, "bootstrap")] == ["init"]

    def worker_joined() -> bool:
        seen = {n.attrs["Status"]["Addr"]: n for n in new.client.nodes.list()}
        return worker.address in seen and seen[worker.address].attrs["Status"]["State"] == "ready"

    wait_until(worker_joined, 150, interval=2, what="the orphaned worker in the new swarm")
    assert actions(worker, "orphaned")


@pytest.fixture(scope="module")
def refused(lab_aws, nodes):
    url = lab_aws["url"]
    queue = create_stack(url, "refused", drain_timeout=90)
    manager, worker = nodes.add("rm1", "manager", "refused"), nodes.add("rw1", "worker", "refused")
    form([manager], url, queue)
    form([worker], url, queue)
    return {"url": url, "queue": queue, "manager": manager}


def test_demote_refused_holds_the_termination_until_a_manager_can_take_over(lab_aws, nodes, refused):
    """The last manager is told to terminate (its replacement is late): leaving would lose the swarm,
    so its agent heartbeats and waits; once a new manager is reachable it demotes, leaves, completes."""
    lifecycle, url, queue, old = lab_aws["lifecycle"], refused["url"], refused["queue"], refused["manager"]
    lifecycle.begin("restdemo-refused-managers", old.instance_id, TERMINATING)
    wait_until(lambda: lifecycle.heartbeats(old.instance_id) >= 1, 45, interval=1, what="a heartbeat")
    assert lifecycle.ended(old.instance_id) == []
    assert old.client.info()["Swarm"]["ControlAvailable"] is True
    new = nodes.add("rm2", "manager", "refused", launching=True)
    new.start_agent(url, queue)
    # Patience, not a promise of speed: a Docker call on a manager being demoted can take the
    # client's 60 s timeout (seen once in CI), and the action must still end by completion.
    wait_until(lambda: lifecycle.ended(old.instance_id), 180, interval=1, what="rm1 retired once rm2 joined")
    (action,) = lifecycle.ended(old.instance_id)
    assert action.ended_by == "complete"
    # Bounded as the retirement above: a loaded engine's leave can wait on a Docker call (failed once at 30 s).
    wait_until(lambda: state_of(old) == "inactive", 90, what="rm1 left")
    assert new.client.info()["Swarm"]["ControlAvailable"] is True


def test_readiness_without_quorum_is_not_ready(lab_aws, nodes):
    """A manager whose two peers are gone keeps ControlAvailable but has no leader: /ready says 503,
    so the admin NLB stops sending it Docker API calls that would hang."""
    url = lab_aws["url"]
    queue = create_stack(url, "quorum")
    managers = [nodes.add(f"qm{i}", "manager", "quorum") for i in (1, 2, 3)]
    form(managers, url, queue)
    first, *others = managers
    wait_until(lambda: readiness(first) == 200, 60, interval=1, what="qm1 ready")
    for node in others:
        node.stop_agent()
        node.stop_engine(kill=True)
    wait_until(lambda: readiness(first) == 503, 90, interval=1, what="qm1 not ready without a quorum")


# --- lifecycle messages, drains, credentials, labels -----------------------------------------


@pytest.fixture(scope="module")
def ops(lab_aws, nodes):
    """One manager and two workers, the termination hook held at most 60 s (drainTimeout)."""
    url = lab_aws["url"]
    queue = create_stack(url, "ops", drain_timeout=60)
    manager = nodes.add("om1", "manager", "ops")
    workers = [nodes.add(f"ow{i}", "worker", "ops") for i in (1, 2)]
    form([manager], url, queue)
    form(workers, url, queue)
    return {"url": url, "queue": queue, "manager": manager, "workers": workers}


def test_labels_retry_keeps_the_labels_and_a_lost_update_raises(ops, monkeypatch):
    from docker.models.nodes import NodeCollection

    from restdemo_agent.engine import Engine

    client = ops["manager"].client
    node_id = client.info()["Swarm"]["NodeID"]
    stale = client.nodes.get(node_id)
    node = client.nodes.get(node_id)
    node.update({**node.attrs["Spec"], "Labels": {**node.attrs["Spec"].get("Labels", {}), "touched": "yes"}})
    real_get, served = NodeCollection.get, []

    def get(self, node_id):  # the first two reads are a version behind: real conflicts on update
        served.append(node_id)
        return stale if len(served) <= 2 else real_get(self, node_id)

    monkeypatch.setattr(NodeCollection, "get", get)
    Engine(client).update_node(node_id, Labels={"checked": "1"})
    monkeypatch.setattr(NodeCollection, "get", lambda self, node_id: stale)
    with pytest.raises(RuntimeError, match="not updated"):
        Engine(client).update_node(node_id, Labels={"lost": "1"})
    monkeypatch.undo()
    labels = client.nodes.get(node_id).attrs["Spec"]["Labels"]
    assert (labels["checked"], labels["touched"], "lost" in labels) == ("1", "yes", False)


def test_never_joined_instance_is_completed_at_once(lab_aws, ops):
    """A node terminated before it joined has nothing to drain: the leader completes its action
    instead of leaving the group to wait out the hook."""
    lifecycle = lab_aws["lifecycle"]
    instance, _ = new_instance(lab_aws, "worker", "ops")
    lifecycle.begin("restdemo-ops-workers", instance, TERMINATING)
    wait_until(lambda: lifecycle.ended(instance), 30, interval=1, what="the action completed")
    (action,) = lifecycle.ended(instance)
    assert action.ended_by == "complete"


def test_duplicate_message_drains_once_and_leaves_nothing_behind(lab_aws, ops):
    """SQS delivers at least once: the same notice twice drains once, completes once, and both
    messages go."""
    lifecycle, url, queue = lab_aws["lifecycle"], ops["url"], ops["queue"]
    worker, manager = ops["workers"][0], ops["manager"]
    action = lifecycle.begin("restdemo-ops-workers", worker.instance_id, TERMINATING)
    repeated = {
        "LifecycleHookName": "drain",
        "AutoScalingGroupName": "restdemo-ops-workers",
        "LifecycleActionToken": action.token,
        "EC2InstanceId": worker.instance_id,
        "LifecycleTransition": TERMINATING,
    }
    aws(url, "sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(repeated))
    wait_until(lambda: lifecycle.ended(worker.instance_id), 90, interval=1, what="w1 drained")

    def queue_empty() -> bool:
        attributes = aws(url, "sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        return attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"

    wait_until(queue_empty, 60, interval=1, what="both messages deleted")
    worker_id = worker.client.info()["Swarm"]["NodeID"]
    assert len([a for a in actions(manager, "drain") if a["node_id"] == worker_id]) == 1
    assert [a.ended_by for a in lifecycle.ended(worker.instance_id)] == ["complete"]


def test_drain_timeout_reaches_the_agent_which_heartbeats_and_completes_before_the_hook(lab_aws, ops, lab_app_image):
    """A drain that cannot finish (a task pinned to the node): the agent holds the action with
    heartbeats and completes it itself at the hook's timeout (drainTimeout, 60 s here), instead of a
    hard-coded 540 s that the hook would cut short."""
    lifecycle, manager = lab_aws["lifecycle"], ops["manager"]
    worker = ops["workers"][1]
    worker_id = worker.client.info()["Swarm"]["NodeID"]
    client = manager.client
    service = client.services.create(
        lab_app_image["pull"], name="pinned", constraints=[f"node.id=={worker_id}"], env=["VER=pinned"]
    )
    try:
        wait_until(lambda: any(t["Status"]["State"] == "running" for t in service.tasks()), 90, what="the pinned task")
        started = time.monotonic()
        lifecycle.begin("restdemo-ops-workers", worker.instance_id, TERMINATING)
        wait_until(lambda: lifecycle.ended(worker.instance_id), 90, interval=1, what="the action ended")
        elapsed = time.monotonic() - started
        (action,) = lifecycle.ended(worker.instance_id)
        assert action.ended_by == "complete" and elapsed < 60
        assert lifecycle.heartbeats(worker.instance_id) >= 1
        assert [a["node_id"] for a in actions(manager, "drain-timeout")] == [worker_id]
    finally:
        service.remove()


def test_refresh_during_rollout_keeps_the_rollback_target(lab_aws, ops, lab_app_image, broken_image):
    """A registry-credential refresh (a new leader does one at once) during a failing rollout must
    not make swarm roll back to the failing spec."""
    from restdemo_agent.agent import Agent
    from restdemo_agent.contract import AgentEnvironment
    from restdemo_agent.engine import Engine

    manager, url, queue = ops["manager"], ops["url"], ops["queue"]
    broken = broken_image
    good = lab_app_image["pull"]
    client = manager.client
    service = client.services.create(
        good,
        name="rolling",
        mode=docker.types.ServiceMode("replicated", replicas=2),
        update_config=docker.types.UpdateConfig(
            parallelism=1, delay=5_000_000_000, failure_action="rollback", monitor=20_000_000_000, order="start-first"
        ),
        rollback_config=docker.types.RollbackConfig(parallelism=1, order="start-first"),
    )
    try:
        wait_until(lambda: sum(t["Status"]["State"] == "running" for t in service.tasks()) == 2, 90, what="2 up")
        service.reload()
        service.update(image=broken)
        wait_until(
            lambda: (client.services.get(service.id).attrs.get("UpdateStatus") or {}).get("State") == "updating",
            30,
            what="the rollout under way",
        )
        environment = AgentEnvironment.from_environ(manager.environment(url, queue))
        agent = Agent(environment, None, Engine(client), None, None, None, aws(url, "ecr"))
        agent.refresh_registry_credentials()  # a new leader's first round: nothing refreshed yet

        def settled() -> str:
            return (client.services.get(service.id).attrs.get("UpdateStatus") or {}).get("State", "")

        # Every state an update ends in (a paused rollback too, so the assertion says which): under CI's
        # load the rollback once took longer than 180 s.
        ended = ("rollback_completed", "rollback_paused", "completed", "paused")
        wait_until(lambda: settled() in ended, 300, interval=2, what="done")
        current = client.services.get(service.id).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        assert (settled(), current) == ("rollback_completed", good)
    finally:
        service.remove()


def test_two_workers_terminating_at_once_are_drained_side_by_side(lab_aws, nodes, lab_app_image):
    """Drains that cannot finish, two at once (a scale-in of two workers): each is held and
    heartbeated on its own, so neither hook runs out while the other drains."""
    lifecycle, url = lab_aws["lifecycle"], lab_aws["url"]
    queue = create_stack(url, "pair", drain_timeout=60)
    manager = nodes.add("pm1", "manager", "pair")
    workers = [nodes.add(f"pw{i}", "worker", "pair") for i in (1, 2)]
    form([manager], url, queue)
    form(workers, url, queue)
    client = manager.client
    services = [
        client.services.create(
            lab_app_image["pull"],
            name=f"pinned-{w.name}",
            constraints=[f"node.id=={w.client.info()['Swarm']['NodeID']}"],
        )
        for w in workers
    ]
    try:
        for service in services:
            wait_until(
                lambda service=service: any(t["Status"]["State"] == "running" for t in service.tasks()),
                90,
                what="a pinned task",
            )
        for worker in workers:
            lifecycle.begin("restdemo-pair-workers", worker.instance_id, TERMINATING)
        wait_until(
            lambda: all(lifecycle.ended(w.instance_id) for w in workers), 120, interval=1, what="both actions ended"
        )
        assert [lifecycle.ended(w.instance_id)[0].ended_by for w in workers] == ["complete", "complete"]
    finally:
        for service in services:
            service.remove()
