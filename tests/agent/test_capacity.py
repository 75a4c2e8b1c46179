"""agent/src/restdemo_agent/capacity.py: the workers' reserved share, and the workers kept from
scale-in because they run a service's last replica; the leader setting that protection (moto)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from restdemo_agent.capacity import (
    batches,
    instance_of,
    last_replica_instances,
    protection_changes,
    reserved_percent,
    waits_for_room,
)
from restdemo_agent.contract import RESERVED_POLICY, WORKER_CONSTRAINTS
from tests.agent.test_aws import REGION
from tests.support.moto_groups import empty_group

pytestmark = pytest.mark.unit

GB, CPU = 2**30, 10**9


def node(id, role="worker", availability="active", state="ready", cpus=2, memory_gb=4, instance=None) -> dict:
    return {
        "ID": id,
        "Spec": {"Role": role, "Availability": availability, "Labels": {"instance_id": instance or f"i-{id}"}},
        "Status": {"State": state},
        "Description": {"Resources": {"NanoCPUs": cpus * CPU, "MemoryBytes": memory_gb * GB}},
    }


def task(service, node_id=None, cpu=0.0, memory_gb=0.0, state="running", err=None) -> dict:
    reservations = {"NanoCPUs": int(cpu * CPU), "MemoryBytes": int(memory_gb * GB)}
    return {
        "ServiceID": service,
        "NodeID": node_id,
        "Status": {"State": state, **({"Err": err} if err else {})},
        # As the program places every service from two workers on: on workers only.
        "Spec": {"Resources": {"Reservations": reservations}, "Placement": {"Constraints": list(WORKER_CONSTRAINTS)}},
    }


# swarmkit's scheduler, for a task no worker has room for (the managers, with room, kept off by the
# workers-only constraints); and for one no node's constraints admit.
NO_ROOM = "no suitable node (scheduling constraints not satisfied on 3 nodes; insufficient resources on 2 nodes)"
NO_NODE = "no suitable node (scheduling constraints not satisfied on 5 nodes)"


def sized(nodes: list[dict], cpus: int = 2, memory_gb: int = 4) -> dict[str, tuple[int, int]]:
    """What EC2 says each node's instance type has (a t3.medium: 2 vCPUs, 4 GiB)."""
    return {instance_of(n): (cpus * CPU, memory_gb * GB) for n in nodes}


NODES = [node("w1"), node("w2"), node("w3", availability="drain"), node("m1", role="manager"), node("w4", state="down")]


def test_the_reserved_share_is_the_higher_of_cpu_and_memory_on_the_active_workers():
    # w1 and w2 hold 4 CPUs and 8 GB; w3 (drained), w4 (down) and the manager hold nothing for services.
    tasks = [task("web", "w1", cpu=1, memory_gb=1), task("web", "w2", cpu=1, memory_gb=1), task("db", "m1", cpu=2)]
    assert reserved_percent(NODES, tasks, sized(NODES)) == 50.0  # 2 of 4 CPUs; 2 of 8 GB
    tasks.append(task("api", "w2", memory_gb=5))
    assert reserved_percent(NODES, tasks, sized(NODES)) == 87.5  # 7 of 8 GB


def test_tasks_waiting_for_room_count_so_the_group_grows_when_they_wait():
    placed = [task("web", "w1", cpu=2), task("web", "w2", cpu=2)]
    pending = [task("web", None, cpu=2, state="pending", err=NO_ROOM)] * 2
    assert reserved_percent(NODES, placed, sized(NODES)) == 100.0
    assert reserved_percent(NODES, placed + pending, sized(NODES)) == 200.0
    assert reserved_percent([node("m1", role="manager")], pending, {}) == 100.0  # no worker at all
    assert reserved_percent([], [], sized([])) == 0.0


def test_a_waiting_task_holds_the_share_at_100_however_the_room_is_split_and_others_do_not_count():
    # Ten workers 60 % reserved each: 4 CPUs free in all, none with the 1.5 a task wants.
    many = [node(f"w{i}") for i in range(10)]
    placed = [task("web", f"w{i}", cpu=1.2) for i in range(10)]
    assert reserved_percent(many, placed, sized(many)) == 60.0
    assert (
        reserved_percent(many, [*placed, task("api", None, cpu=1.5, state="pending", err=NO_ROOM)], sized(many))
        == 100.0
    )
    # Waiting for a node its constraints admit (a manager's, say): no worker helps, none is added.
    assert reserved_percent(many, [*placed, task("db", None, cpu=1, state="pending", err=NO_NODE)], sized(many)) == 60.0


def test_a_task_counts_as_waiting_for_room_when_a_new_worker_would_take_it():
    """swarmkit counts each node under the first filter it fails (ready, resources, plugins, constraints,
    platform, host ports, max replicas): the managers, with room, fail the workers-only constraints."""

    def waiting(err: str, constraints: list[str] | None = None) -> bool:
        pending = task("web", None, state="pending", err=err)
        pending["Spec"]["Placement"] = {"Constraints": list(WORKER_CONSTRAINTS) if constraints is None else constraints}
        return waits_for_room(pending)

    assert waiting("no suitable node (insufficient resources on 3 nodes)")
    # What staging says: 3 managers with room, turned away by the program's workers-only constraints.
    staging = "no suitable node (scheduling constraints not satisfied on 3 nodes; insufficient resources on 2 nodes)"
    assert waiting(staging)
    assert waiting("no suitable node (insufficient resources on 1 node; 1 node not available for new tasks)")
    assert waiting("no suitable node (insufficient resources on 1 node; host-mode port already in use on 1 node)")
    # A constraint of the service's own: a new worker may not meet it either.
    assert not waiting(staging, [*WORKER_CONSTRAINTS, "node.labels.disk==ssd"])
    assert not waiting("no suitable node (insufficient resources on 1 node; unsupported platform on 2 nodes)")
    assert not waiting("no suitable node (1 node not available for new tasks)")  # no want of room
    assert not waiting("insufficient resources")  # not the scheduler's sentence
    assert not waits_for_room(task("web", "w1", err="no suitable node (insufficient resources on 3 nodes)"))


def test_a_task_no_worker_could_hold_does_not_grow_the_group():
    placed = [task("web", "w1", cpu=1), task("web", "w2", cpu=1)]
    too_big = task("api", None, cpu=3, state="pending", err=NO_ROOM)  # workers have 2 CPUs
    assert reserved_percent(NODES, [*placed, too_big], sized(NODES)) == 50.0


def test_a_worker_counts_for_no_more_than_its_instance_type_whatever_its_engine_claims():
    """Root on a worker can make its engine report any size: 2**62 would sink the share to 0 and
    scale the group in; a negative one would send it to the moon and the group to its maximum."""
    tasks = [task("web", "w1", cpu=1, memory_gb=1), task("web", "w2", cpu=1, memory_gb=1)]
    honest = reserved_percent(NODES, tasks, sized(NODES))
    assert honest == 50.0
    huge, negative = node("w2", cpus=2**62, memory_gb=2**62), node("w2", cpus=-(2**62), memory_gb=-(2**62))
    assert reserved_percent([NODES[0], huge], tasks, sized(NODES)) == honest
    # Below nothing is nothing: w2's tasks against w1's 2 CPUs, not against a negative total.
    assert reserved_percent([NODES[0], negative], tasks, sized(NODES)) == 100.0
    # An instance EC2 does not know (a label no instance has): nothing of it counts.
    assert reserved_percent(NODES, tasks, sized(NODES[:1])) == 100.0  # 2 CPUs reserved of w1's 2


def test_the_leader_takes_each_workers_size_from_ec2(workers):
    autoscaling, ec2 = workers
    ec2.create_launch_template(LaunchTemplateName="medium", LaunchTemplateData={"InstanceType": "t3.medium"})
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=GROUP, LaunchTemplate={"LaunchTemplateName": "medium"})
    one, two = group_instances(autoscaling, desired=2)

    class Engine:
        def node_descriptions(self):  # w2 claims 64 CPUs and 1 TB; w9's instance is long gone
            gone = node("w9", state="down", instance="i-0123456789abcdef0")
            return [node("w1", instance=one), node("w2", cpus=64, memory_gb=1024, instance=two), gone]

        def tasks(self):
            return [task("web", "w1", cpu=1), task("web", "w2", cpu=2)]

    # 3 of the two t3.mediums' 4 vCPUs, not of 66.
    assert leader(workers, Engine()).workers_reserved_percent() == 75.0


def test_a_worker_running_a_services_only_running_replica_is_kept_from_scale_in():
    tasks = [
        task("web", "w1"),
        task("web", "w2"),  # two replicas: neither node is needed for web
        task("db", "w2"),  # db's only one: w2
        task("admin", "m1"),  # on a manager: managers never scale in
        task("api", "w1", state="starting"),
        task("api", "w4"),  # api's only running one, on w4
    ]
    assert last_replica_instances(NODES, tasks) == {"i-w2", "i-w4"}
    # Both of a service's replicas on one worker: that worker holds every copy.
    assert last_replica_instances(NODES, [task("cache", "w1"), task("cache", "w1"), task("web", "w2")]) == {
        "i-w1",
        "i-w2",
    }


def test_protection_follows_the_group_as_it_is_in_batches_auto_scaling_takes():
    # i-4 is launching or terminating: Auto Scaling refuses the whole call for it.
    assert protection_changes({"i-1", "i-2", "i-4"}, {"i-1", "i-2", "i-3"}, {"i-2", "i-3", "i-4"}) == (
        {"i-3"},
        {"i-1"},
    )
    assert protection_changes(set(), set(), {"i-1"}) == (set(), set())
    assert [len(b) for b in batches({f"i-{n:03d}" for n in range(120)})] == [50, 50, 20]


GROUP = "restdemo-dev-workers"


@pytest.fixture
def workers(monkeypatch):
    """moto's Auto Scaling with the dev workers' group: (autoscaling client, ec2 client)."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        ec2, autoscaling = boto3.client("ec2", region_name=REGION), boto3.client("autoscaling", region_name=REGION)
        empty_group(ec2, autoscaling, GROUP)
        yield autoscaling, ec2


def group_instances(autoscaling, desired: int | None = None) -> dict[str, bool]:
    """The group's instances (sorted) and whether each is protected; first set to `desired` instances."""
    if desired is not None:
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=GROUP, DesiredCapacity=desired)
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return {
        i["InstanceId"]: i["ProtectedFromScaleIn"] for i in sorted(group["Instances"], key=lambda i: i["InstanceId"])
    }


def scale_on_reservations(autoscaling) -> None:
    """The program's target-tracking policy on the group (workerMaxCount): the leader's sign that it scales."""
    autoscaling.put_scaling_policy(
        AutoScalingGroupName=GROUP,
        PolicyName=RESERVED_POLICY,
        PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "CustomizedMetricSpecification": {
                "MetricName": "WorkersReservedPercent",
                "Namespace": "restdemo",
                "Dimensions": [{"Name": "Stack", "Value": "dev"}],
                "Statistic": "Maximum",
            },
            "TargetValue": 70.0,
        },
    )


def leader(workers, engine, **environ):
    from restdemo_agent.agent import Agent
    from restdemo_agent.aws import Lifecycle
    from restdemo_agent.contract import AgentEnvironment
    from restdemo_agent.identity import Identity
    from tests.agent.test_interruption import MANAGER
    from tests.support.agent_env import WORKER_ENVIRONMENT

    autoscaling, ec2 = workers
    environment = AgentEnvironment.from_environ(
        {**WORKER_ENVIRONMENT, **MANAGER, "RESTDEMO_ROLE": "manager", **environ}
    )
    return Agent(
        environment, Identity("i-m", "a", "10.0.0.1"), engine, None, Lifecycle(None, autoscaling, ""), ec2, None
    )


def test_the_leader_protects_exactly_the_last_replicas_workers_in_the_group(workers, capsys):
    autoscaling, _ = workers
    one, two, three = group_instances(autoscaling, desired=3)
    autoscaling.set_instance_protection(AutoScalingGroupName=GROUP, InstanceIds=[one], ProtectedFromScaleIn=True)

    class Engine:
        def node_descriptions(self):
            return [node("w1", instance=one), node("w2", instance=two), node("w3", instance=three)]

        def tasks(self):
            return [task("web", "w1"), task("web", "w3"), task("db", "w2")]

    scale_on_reservations(autoscaling)
    scaling = leader(workers, Engine())
    scaling.protect_last_replicas()
    scaling.protect_last_replicas()  # within the period: nothing asked again
    assert group_instances(autoscaling) == {one: False, two: True, three: False}
    logged = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["protected"], x["instances"]) for x in logged if x["action"] == "scale-in-protection"] == [
        (True, [two]),
        (False, [one]),
    ]


def test_with_scaling_off_the_leader_lifts_the_protection_it_left(workers):
    """A group that stops scaling must not keep instances its count no longer wants."""
    autoscaling, _ = workers
    ids = list(group_instances(autoscaling, desired=2))
    autoscaling.set_instance_protection(AutoScalingGroupName=GROUP, InstanceIds=ids, ProtectedFromScaleIn=True)
    fixed = leader(workers, None)
    fixed.protect_last_replicas()
    assert not fixed.workers_scale
    assert list(group_instances(autoscaling).values()) == [False, False]


def test_a_reservation_step_scales_the_workers_out_and_the_quiet_after_it_keeps_them():
    """The leader's metric (reserved_percent) through the policy the program sends (staging with
    workerMaxCount 10, target 60) and Auto Scaling's target tracking (tests/support/target_tracking.py)."""
    from tests.support.stack_variants import variant_run
    from tests.support.target_tracking import TargetTracking

    run = variant_run("staging", "workersScale")
    policy = run.one("aws:autoscaling/policy:Policy").inputs
    tracking = TargetTracking.from_inputs(
        policy, run.named("aws:autoscaling/group:Group", "swarm-workers-group").inputs
    )
    assert (tracking.target, tracking.min_size, tracking.max_size) == (60.0, 2, 10)
    workers = [node("w1"), node("w2")]  # 4 CPUs
    quiet = [task("web", f"w{i % 2 + 1}", cpu=0.5) for i in range(2)]
    minutes = [reserved_percent(workers, quiet, sized(workers))] * 30
    assert minutes[-1] == 25.0 and tracking.desired(2, minutes) == 2  # at its minimum
    # The step: web to 8 replicas of half a CPU, and an api of two 1-CPU tasks that find no room.
    step = [task("web", f"w{i % 2 + 1}", cpu=0.5) for i in range(8)]
    step += [task("api", None, cpu=1, state="pending", err=NO_ROOM)] * 2
    minutes += [reserved_percent(workers, step, sized(workers))] * 3
    assert minutes[-1] == 150.0
    assert tracking.desired(2, minutes) == 5  # ceil(2 x 150 / 60)
    # Five workers hold it all: 6 of 10 CPUs, at the target; nothing scales either way.
    bigger = [node(f"w{i}") for i in range(1, 6)]
    placed = [task("web", f"w{i % 5 + 1}", cpu=0.5) for i in range(8)] + [
        task("api", "w4", cpu=1),
        task("api", "w5", cpu=1),
    ]
    minutes += [reserved_percent(bigger, placed, sized(bigger))] * 30
    assert minutes[-1] == 60.0 and tracking.desired(5, minutes) == 5
