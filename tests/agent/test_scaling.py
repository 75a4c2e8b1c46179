"""agent/src/restdemo_agent/scaling.py: a service's bounds from its labels, a node's CPU record, the
leader's reading of the records (no node counting more than swarm runs there) and its decision; and
the agents recording and scaling through the state table (moto) and a stand-in swarm."""

from __future__ import annotations

import json
import time

import pytest

from restdemo_agent.contract import (
    SCALE_CPU_LABEL,
    SCALE_IN_COOLDOWN_LABEL,
    SCALE_MAX_LABEL,
    SCALE_MIN_LABEL,
    SCALE_OUT_COOLDOWN_LABEL,
)
from restdemo_agent.identity import Identity
from restdemo_agent.scaling import (
    Bounds,
    Sample,
    at_maximum,
    bounds_of,
    load_percent,
    node_load,
    read_records,
    record_fields,
    recorded_instance,
    scale_to,
    stale_records,
    updated_at,
)
from tests.agent.test_interruption import MANAGER, REGION, agent_on, aws, instance_session  # noqa: F401 (fixture)

pytestmark = pytest.mark.unit

LABELS = {
    SCALE_MIN_LABEL: "2",
    SCALE_MAX_LABEL: "6",
    SCALE_CPU_LABEL: "50",
    SCALE_OUT_COOLDOWN_LABEL: "60",
    SCALE_IN_COOLDOWN_LABEL: "300",
}
BOUNDS = Bounds(minimum=2, maximum=6, cpu_percent=50, out_cooldown=60, in_cooldown=300)
NOW = 1_800_000_000.0
HALF_A_CPU = 500_000_000  # nano CPUs


def stamp(at: float) -> str:
    """As swarm writes UpdatedAt: RFC 3339 with nanoseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + ".123456789Z"


def service(replicas: int = 2, labels: dict | None = None, updated: float = NOW - 3600, state: str | None = None):
    found = {
        "ID": "svc1",
        "UpdatedAt": stamp(updated),
        "Spec": {
            "Name": "web",
            "Labels": LABELS if labels is None else labels,
            "Mode": {"Replicated": {"Replicas": replicas}},
            "TaskTemplate": {"Resources": {"Limits": {"NanoCPUs": HALF_A_CPU}}},
        },
    }
    if state:
        found["UpdateStatus"] = {"State": state}
    return found


def test_bounds_are_read_only_when_every_label_is_what_the_program_writes():
    assert bounds_of(LABELS) == BOUNDS
    assert bounds_of({}) is None and bounds_of(None) is None
    for label, bad in (
        (SCALE_MIN_LABEL, "7"),  # above the maximum
        (SCALE_MIN_LABEL, "0"),
        (SCALE_MAX_LABEL, "101"),
        (SCALE_CPU_LABEL, "0"),
        (SCALE_CPU_LABEL, "lots"),
        (SCALE_OUT_COOLDOWN_LABEL, "-1"),
        (SCALE_IN_COOLDOWN_LABEL, "1e9"),
    ):
        assert bounds_of(LABELS | {label: bad}) is None, (label, bad)
    assert bounds_of({k: v for k, v in LABELS.items() if k != SCALE_CPU_LABEL}) is None


def test_a_nodes_load_is_each_tasks_cpu_time_over_the_time_between_two_samples():
    before = {"c1": Sample("svc1", 10_000_000_000, 100.0), "c2": Sample("svc1", 0, 100.0)}
    after = {
        "c1": Sample("svc1", 13_000_000_000, 110.0),  # 3 s of CPU in 10 s: 0.3 CPU
        "c2": Sample("svc1", 1_000_000_000, 110.0),  # 0.1 CPU
        "c3": Sample("svc2", 5_000_000_000, 110.0),  # new since: nothing to compare with
    }
    assert node_load(before, after) == {"svc1": (400_000_000.0, 2)}
    # A container restarted under the same id (its counter went back) or a clock that did not move.
    assert node_load(after, {"c1": Sample("svc1", 1, 120.0), "c2": Sample("svc1", 2_000_000_000, 110.0)}) == {}
    assert json.loads(record_fields({"svc1": (400_000_000.4, 2)})) == {"svc1": [400_000_000, 2]}


def record(services, recorded: float = NOW) -> dict:
    return {"services": json.dumps(services), "recorded": f"{recorded:.3f}"}


def test_the_leader_reads_recent_well_formed_records_of_instances_only():
    items = {
        "load#AROA:i-1": record({"svc1": [300_000_000, 1], "svc2": ["x", 1], "svc3": [1, True], "svc4": [-1, 1]}),
        "load#AROA:i-2": record({"svc1": [100, 1]}, recorded=NOW - 181),  # three minutes old: stopped recording
        "load#i-3": record({"svc1": [100, 1]}),  # no role id: nobody's session
        "load#AROA:i-4": {"services": "[1, 2]", "recorded": f"{NOW}"},
        "load#AROA:i-5": {"services": "{", "recorded": f"{NOW}"},
        "load#AROA:i-6": record({"svc1": [100, 1]}, recorded=NOW + 61),  # more than a period ahead
    }
    assert read_records(items, NOW, 60) == {"i-1": (NOW, {"svc1": (300_000_000.0, 1)})}
    assert recorded_instance("load#AROAEXAMPLE:i-0abc") == "i-0abc" and recorded_instance("notice#A:i-1") is None
    # Deleted: a record no agent wrote, or one not renewed for 30 periods (its node is gone).
    old = {"load#AROA:i-7": record({}, recorded=NOW - 1801), "load#AROA:i-8": record({}, recorded=NOW - 1799)}
    assert stale_records(old | {"load#i-3": record({}), "load#AROA:i-9": {"recorded": "soon"}}, NOW, 60) == [
        "load#AROA:i-7",
        "load#AROA:i-9",
        "load#i-3",
    ]


def test_a_record_not_as_the_agent_writes_it_is_no_record_and_is_deleted_whatever_it_holds():
    """Root on a worker writes its own record as it likes (within IAM's key and fields): nothing in it
    may raise in the leader, nor keep it from being deleted."""
    bad = [
        "[" * 1000,  # deep enough to exhaust the parser's recursion
        '{"svc1": [0, Infinity]}',
        '{"svc1": [NaN, 1]}',
        '{"svc1": [1e999, 1]}',
        '{"svc1": [1, ' + "9" * 400 + "]}",
        '{"svc1": [' + "9" * 400 + ", 1]}",
        '{"svc1": [1, 2.5]}',
        '{"svc1": [1, 100000]}',
        '{"svc1": [1' + " " * 70000 + ", 1]}",
    ]
    for text in bad:
        item = {"services": text, "recorded": f"{NOW:.3f}"}
        found = read_records({"load#AROA:i-1": item}, NOW, 60)
        assert found in ({}, {"i-1": (NOW, {})}), text[:40]
        assert load_percent("svc1", HALF_A_CPU, found, {"i-1": 1}, since=0, period=60) is None, text[:40]
    assert stale_records({"load#AROA:i-1": {"services": "[" * 1000, "recorded": f"{NOW}"}}, NOW, 60) == [
        "load#AROA:i-1"
    ]
    # Stamped far in the future: deleted too, not kept for ever.
    assert stale_records({"load#AROA:i-1": record({"svc1": [1, 1]}, recorded=9e12)}, NOW, 60) == ["load#AROA:i-1"]


def test_a_node_counts_no_more_tasks_than_swarm_runs_there_nor_more_cpu_each_than_the_limit():
    """i-1 runs two tasks at 40 % of their limit; i-2 (root on it, say) claims ten tasks at four CPUs:
    it counts for the one task swarm runs there, at its limit."""
    loads = {"i-1": (NOW, {"svc1": (400_000_000.0, 2)}), "i-2": (NOW, {"svc1": (40_000_000_000.0, 10)})}

    def share(running, limit=HALF_A_CPU, since=0.0):
        return load_percent("svc1", limit, loads, running, since=since, period=60)

    assert share({"i-1": 2, "i-2": 1}) == 60.0  # (0.4 + 0.5) / 1.5
    assert share({"i-1": 2}) == 40.0  # i-2 runs none of it
    assert share({}) is None  # no task reported
    assert share({"i-1": 2}, limit=0) is None  # no limit to take a share of
    # A record whose sampling began before swarm last changed the service reads the count before.
    assert share({"i-1": 2}, since=NOW - 60) == 40.0 and share({"i-1": 2}, since=NOW - 59) is None


def test_the_count_brings_the_load_to_the_target_within_the_bounds_after_the_cooldown():
    # 2 replicas at 90 % of their limit against 50 %: ceil(2 x 90 / 50) = 4.
    assert scale_to(service(2), 90.0, NOW) == 4
    assert scale_to(service(2), 400.0, NOW) == 6  # no more than the maximum
    assert scale_to(service(5), 10.0, NOW) == 2  # no fewer than the minimum
    assert scale_to(service(4), 30.0, NOW) == 3  # in part of the way, not straight to the minimum
    assert scale_to(service(4), 54.0, NOW) is None  # within 10 % of the target
    assert scale_to(service(4), None, NOW) is None  # no reading: left as it is
    # Out: a minute after swarm last changed it; in: five minutes.
    assert scale_to(service(2, updated=NOW - 59), 90.0, NOW) is None
    assert scale_to(service(2, updated=NOW - 61), 90.0, NOW) == 4
    assert scale_to(service(4, updated=NOW - 299), 10.0, NOW) is None
    assert scale_to(service(4, updated=NOW - 301), 10.0, NOW) == 2


def test_never_during_an_update_or_a_rollback_and_at_once_when_the_bounds_moved():
    for state in ("updating", "paused", "rollback_started", "rollback_paused"):
        assert scale_to(service(2, state=state), 90.0, NOW) is None
    assert scale_to(service(2, state="completed"), 90.0, NOW) == 4
    # An `up` raised the minimum to 3 (or lowered the maximum): the count follows without waiting.
    assert scale_to(service(2, labels=LABELS | {SCALE_MIN_LABEL: "3"}, updated=NOW), None, NOW) == 3
    assert scale_to(service(6, labels=LABELS | {SCALE_MAX_LABEL: "4"}, updated=NOW), 90.0, NOW) == 4
    assert scale_to(service(2, labels={}), 90.0, NOW) is None  # no bounds: the program's count
    assert scale_to(service(0), 90.0, NOW) is None  # stopped by hand (`docker service scale web=0`)
    assert scale_to(service(2, labels=LABELS | {"restdemo.scale.paused": "true"}), 90.0, NOW) is None
    # Someone else's update (an `up` sending its refresh's count) left it below the agent's: at once.
    assert scale_to(service(3, updated=NOW), None, NOW, restore=5) == 5
    assert scale_to(service(3, updated=NOW), None, NOW, restore=9) == 6  # within the bounds
    assert scale_to(service(5, updated=NOW), None, NOW, restore=4) is None  # not below it
    assert scale_to(service(3, state="updating"), None, NOW, restore=5) is None  # after the rollout
    assert updated_at({"UpdatedAt": "2026-12-08T00:00:01.5Z"}) == 1796688001.5


def test_held_at_the_maximum_only_while_the_load_asks_for_more():
    assert at_maximum(service(6), 60.0) is True  # ceil(6 x 60 / 50) = 8
    assert at_maximum(service(6), 52.0) is False  # within the tolerance: 6 are enough
    assert at_maximum(service(6), 50.0) is False
    assert at_maximum(service(6), 30.0) is False  # it will scale in
    assert at_maximum(service(4), 90.0) is False  # it will scale out first
    assert at_maximum(service(6), None) is False  # no reading says so
    assert at_maximum(service(6, labels={}), 90.0) is None


# --- the agents, through the state table (moto) ---


class SwarmStandIn:
    """One worker node's containers, and the swarm the leader sees: a service, its tasks, the nodes."""

    def __init__(self, replicas: int = 2):
        self.cpu: dict[str, Sample] = {}
        self.service = {**service(replicas, updated=time.time() - 3600), "Version": {"Index": 10}}
        self.scaled: list[int] = []

    def task_cpu(self):
        return dict(self.cpu)

    def services(self):
        return [self.service]

    def node_descriptions(self):
        return [{"ID": "n2", "Spec": {"Role": "worker", "Labels": {"instance_id": "i-w2"}}}]

    def tasks(self):
        count = self.service["Spec"]["Mode"]["Replicated"]["Replicas"]
        return [{"ServiceID": "svc1", "NodeID": "n2", "Status": {"State": "running"}} for _ in range(count)]

    def scale(self, found, replicas):
        self.scaled.append(replicas)
        self.update(replicas)

    def update(self, replicas: int) -> None:
        """Any update of the service: swarm bumps its version and its UpdatedAt."""
        index = self.service["Version"]["Index"] + 1
        self.service = {**service(replicas, updated=time.time()), "Version": {"Index": index}}

    def service_version(self, service_id):
        return self.service["Version"]["Index"]


def test_a_worker_records_its_tasks_load_and_the_leader_scales_on_it(aws, capsys):  # noqa: F811
    swarm = SwarmStandIn()
    me = Identity("i-w2", f"{REGION}a", "10.0.0.12")
    worker = agent_on(swarm, aws, "worker", me, sts=instance_session("i-w2"))
    at = time.time()
    swarm.cpu = {"c1": Sample("svc1", 0, at), "c2": Sample("svc1", 0, at)}
    worker.record_load()
    assert worker.state.loads() == {}  # a first sample: nothing to compare with yet
    # Both tasks at 0.45 CPU over the next second: 90 % of their half-CPU limit.
    swarm.cpu = {"c1": Sample("svc1", 450_000_000, at + 1), "c2": Sample("svc1", 450_000_000, at + 1)}
    worker.load_period = -1  # the next metrics period
    worker.record_load()
    ((key, item),) = worker.state.loads().items()
    assert key.startswith("load#AROA") and key.endswith(":i-w2")
    assert json.loads(item["services"]) == {"svc1": [900_000_000, 2]}

    leader = agent_on(swarm, aws, "manager", Identity("i-m1", f"{REGION}a", "10.0.0.10"), env=MANAGER)
    leader.scale_replicas()
    assert swarm.scaled == [4]  # ceil(2 x 90 / 50)
    leader.scaled_at = -1e18
    leader.scale_replicas()
    assert swarm.scaled == [4]  # cooling down: swarm changed it a moment ago
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"replicas-scaled"' in x]
    assert (line["service"], line["was"], line["replicas"], line["cpu_percent"]) == ("web", 2, 4, 90.0)
    assert leader.held_at_maximum == {"web": False}


def load_record(aws, used: int, tasks: int, instance: str = "i-w2") -> None:  # noqa: F811
    aws["dynamodb"].put_item(
        TableName="restdemo-dev-state",
        Item={
            "pk": {"S": f"load#AROA:{instance}"},
            "services": {"S": json.dumps({"svc1": [used, tasks]})},
            "recorded": {"S": f"{time.time():.3f}"},
        },
    )


def test_a_count_an_up_lowered_is_put_back_once_its_update_ends(aws, capsys):  # noqa: F811
    """The agent scaled web to 4; an `up` then sent the count its refresh had read (2): the leader
    puts 4 back at its next look, without a cooldown, and not while the deploy's rollout runs."""
    swarm = SwarmStandIn()
    leader = agent_on(swarm, aws, "manager", Identity("i-m1", f"{REGION}a", "10.0.0.10"), env=MANAGER)
    leader.refreshed_versions["svc1"] = 10  # its last credential refresh left version 10
    load_record(aws, 2 * 450_000_000, 2)  # 90 % against 50 %
    leader.scale_replicas()
    assert swarm.scaled == [4] and leader.scaled_counts == {"svc1": (4, 11)}
    assert leader.refreshed_versions["svc1"] == 11  # its own update: no credential refresh for it
    swarm.update(2)  # the `up`
    swarm.service["UpdateStatus"] = {"State": "updating"}
    leader.scaled_at = -1e18
    leader.scale_replicas()
    assert swarm.scaled == [4]  # not during the rollout
    swarm.service["UpdateStatus"] = {"State": "completed"}
    leader.scaled_at = -1e18
    leader.scale_replicas()
    assert swarm.scaled == [4, 4]
    restored = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"replicas-scaled"' in x][-1]
    assert (restored["was"], restored["replicas"], restored["restored"]) == (2, 4, True)


def test_a_malformed_record_stops_no_scaling_and_is_deleted(aws):  # noqa: F811
    swarm = SwarmStandIn()
    leader = agent_on(swarm, aws, "manager", Identity("i-m1", f"{REGION}a", "10.0.0.10"), env=MANAGER)
    aws["dynamodb"].put_item(
        TableName="restdemo-dev-state",
        Item={"pk": {"S": "load#AROA:i-evil"}, "services": {"S": "[" * 1000}, "recorded": {"S": "0"}},
    )
    load_record(aws, 2 * 450_000_000, 2)
    leader.scale_replicas()
    assert swarm.scaled == [4]
    assert list(leader.state.loads()) == ["load#AROA:i-w2"]


def test_with_no_reading_the_leader_sends_no_held_line_rather_than_its_last(aws):  # noqa: F811
    swarm = SwarmStandIn(replicas=6)
    leader = agent_on(swarm, aws, "manager", Identity("i-m1", f"{REGION}a", "10.0.0.10"), env=MANAGER)
    load_record(aws, 6 * 400_000_000, 6)
    leader.scale_replicas()
    assert leader.held_at_maximum == {"web": True}
    aws["dynamodb"].delete_table(TableName="restdemo-dev-state")
    leader.scaled_at = -1e18
    leader.scale_replicas()
    assert leader.held_at_maximum == {}
