"""The agent's decisions, tested directly."""

from __future__ import annotations

import pytest

from restdemo_agent.contract import token_parameter
from restdemo_agent.plan import (
    HANDLE_MINE,
    HANDLE_OTHERS,
    HANDLE_UNKNOWN,
    HANDLE_WORKER,
    Node,
    bootstrap_action,
    confirm_every,
    credentials_refresh_due,
    dead_nodes,
    drain_done,
    ecr_image,
    heartbeat_every,
    identities,
    leaving_keeps_quorum,
    lifecycle_handler,
    lifecycle_message_for,
    may_claim,
    may_give_up_instance,
    mismatched,
    primary_is_stale,
    quorum_may_live_elsewhere,
    recovery_survivor,
    rolled_back_services,
    should_take_over,
    spec_digest,
    strays,
    superseded,
    to_quarantine,
    worker_orphaned,
)

pytestmark = pytest.mark.unit


def node(id, role="worker", state="ready", instance=None, leader=False, reachable=True, availability="active"):
    return Node(id, role, state, availability, instance or f"i-{id}", leader, reachable)


@pytest.mark.parametrize(
    "role,member,claimed,action",
    [
        ("manager", True, None, "stay"),
        ("worker", True, None, "stay"),
        ("manager", False, True, "init"),
        ("manager", False, False, "join"),
        ("worker", False, None, "join"),
    ],
)
def test_who_initialises(role, member, claimed, action):
    assert bootstrap_action(role, member, claimed) == action


def test_which_token():
    assert token_parameter("/restdemo/dev", "worker") == "/restdemo/dev/join-token/worker"
    assert token_parameter("/restdemo/dev", "manager") == "/restdemo/dev/join-token/manager"
    with pytest.raises(ValueError):
        token_parameter("/restdemo/dev", "boss")


def test_take_over_only_by_the_leader_when_the_primary_is_gone_or_down():
    leader = node("m2", "manager", leader=True)
    primary = {"node_id": "m1", "address": "10.0.0.1"}
    assert should_take_over(primary, [leader], leader)  # gone from the swarm
    assert should_take_over(primary, [node("m1", "manager", state="down"), leader], leader)
    assert not should_take_over(primary, [node("m1", "manager"), leader], leader)  # alive
    follower = node("m3", "manager")
    assert not should_take_over(primary, [follower], follower)  # not the leader
    assert not should_take_over({"node_id": "m2"}, [leader], leader)  # already me
    assert not should_take_over(None, [leader], leader)


def test_dead_nodes_are_down_and_their_instance_is_gone():
    nodes = [node("w1", state="down"), node("w2", state="down"), node("w3"), node("m1", "manager", leader=True)]
    # w1's instance is gone; w2's still runs (only slow); w3 is fine.
    assert [n.id for n in dead_nodes(nodes, running_instances={"i-w2", "i-w3", "i-m1"})] == ["w1"]


def test_a_node_whose_instance_is_unknown_is_never_removed():
    nodes = [Node("w1", "worker", "down", "active", None), node("m1", "manager", leader=True)]
    assert dead_nodes(nodes, running_instances=set()) == []


def test_removing_dead_managers_never_breaks_quorum():
    managers = [
        node("m1", "manager", leader=True),
        node("m2", "manager", state="down", reachable=False),
        node("m3", "manager", state="down", reachable=False),
    ]
    # 1 reachable of 3: no quorum now; removing one would leave 1 of 2 (quorum 2): not allowed.
    assert dead_nodes(managers, running_instances={"i-m1"}) == []
    managers = [
        node("m1", "manager", leader=True),
        node("m2", "manager"),
        node("m3", "manager", state="down", reachable=False),
    ]
    assert [n.id for n in dead_nodes(managers, running_instances={"i-m1", "i-m2"})] == ["m3"]


def test_drain_waits_for_tasks_to_stop_here_and_run_elsewhere():
    running_here = [{"Status": {"State": "running"}}]
    assert not drain_done(running_here, {"restdemo": 3}, {"restdemo": 3})
    assert not drain_done([{"Status": {"State": "shutdown"}}], {"restdemo": 2}, {"restdemo": 3})
    assert drain_done([{"Status": {"State": "shutdown"}}], {"restdemo": 3}, {"restdemo": 3})


def test_lifecycle_messages_are_matched_to_this_instance():
    body = {"LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "EC2InstanceId": "i-1"}
    assert lifecycle_message_for(body, "i-1")
    assert not lifecycle_message_for(body, "i-2")
    assert not lifecycle_message_for({**body, "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"}, "i-1")


def test_only_images_of_this_registry_need_its_credentials():
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert ecr_image(f"{registry}/restdemo-dev:v1@sha256:00", registry)
    assert not ecr_image("docker.io/library/haproxy:2.8", registry)


def test_who_handles_a_termination_notice():
    leader, follower = node("m1", "manager", leader=True), node("m2", "manager")
    nodes = [leader, follower, node("w1")]
    assert lifecycle_handler("i-m2", nodes, follower) == HANDLE_MINE  # a manager retires itself
    assert lifecycle_handler("i-m2", nodes, leader) == HANDLE_OTHERS
    assert lifecycle_handler("i-w1", nodes, leader) == HANDLE_WORKER  # the leader drains workers
    assert lifecycle_handler("i-w1", nodes, follower) == HANDLE_OTHERS
    assert lifecycle_handler("i-never-joined", nodes, leader) == HANDLE_UNKNOWN
    assert lifecycle_handler("i-never-joined", nodes, follower) == HANDLE_OTHERS
    # A ready node nobody has identified yet may be that instance: the notice waits. A drained one
    # (quarantined) runs no replica: nothing to drain, so the notice is completed.
    waiting = Node("n9", "manager", "ready", "active", None, address="10.0.2.9")
    assert lifecycle_handler("i-never-joined", [*nodes, waiting], leader) == HANDLE_OTHERS
    drained = Node("n8", "worker", "ready", "drain", None, address="10.0.1.8", quarantined=True)
    assert lifecycle_handler("i-never-joined", [*nodes, drained], leader) == HANDLE_UNKNOWN


@pytest.mark.parametrize(
    "managers,leaving,safe",
    [
        (["m1"], "m1", False),  # the last manager: never
        (["m1", "m2"], "m1", True),  # 1 of 1 stays reachable
        (["m1", "m2", "m3"], "m1", True),
        (["m1", "m2", "m3:down"], "m1", False),  # 1 reachable of the 2 that stay: no quorum
        (["m1", "m2", "m3", "m4:down"], "m1", True),  # 2 of 3 stay reachable
    ],
)
def test_leaving_keeps_quorum(managers, leaving, safe):
    nodes = [
        node(m.split(":")[0], "manager", state="down" if m.endswith(":down") else "ready", reachable=":down" not in m)
        for m in managers
    ]
    assert leaving_keeps_quorum([*nodes, node("w1")], leaving) is safe


def test_heartbeats_three_times_per_hook_timeout_at_least_once_a_minute():
    assert [heartbeat_every(t) for t in (30, 120, 600, 7200)] == [10, 40, 60, 60]


def test_a_primary_record_is_stale_when_nobody_confirmed_it():
    assert primary_is_stale(None, 1000, 300)
    assert not primary_is_stale({"updated": "900"}, 1000, 300)
    assert primary_is_stale({"updated": "600"}, 1000, 300)
    assert primary_is_stale({"status": "initialising"}, 1000, 300)  # from before records were dated


def test_credentials_are_never_refreshed_during_a_rollout():
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"

    def service(state=None, image=f"{registry}/restdemo-dev:v1"):
        spec = {"TaskTemplate": {"ContainerSpec": {"Image": image}}}
        return {"Spec": spec, **({"UpdateStatus": {"State": state}} if state else {})}

    assert credentials_refresh_due(service(), registry, 100, None, 3600)
    assert credentials_refresh_due(service("completed"), registry, 100, None, 3600)
    assert credentials_refresh_due(service("rollback_completed"), registry, 100, None, 3600)
    for state in ("updating", "paused", "rollback_started", "rollback_paused"):
        assert not credentials_refresh_due(service(state), registry, 100, None, 3600)
    assert not credentials_refresh_due(service(), registry, 100, 50, 3600)  # not due yet
    assert not credentials_refresh_due(service(image="haproxy:2.8"), registry, 100, None, 3600)
    # A deploy since the last refresh (its version moved on): its own, shorter-lived login is replaced.
    deployed = {**service("completed"), "Version": {"Index": 812}}
    assert credentials_refresh_due(deployed, registry, 100, 50, 3600, last_version=790)
    assert not credentials_refresh_due(deployed, registry, 100, 50, 3600, last_version=812)
    assert not credentials_refresh_due(
        {**deployed, "UpdateStatus": {"State": "updating"}}, registry, 100, 50, 3600, 790
    )


def test_a_worker_is_orphaned_when_the_live_record_names_a_manager_it_does_not_know():
    record = {"status": "ready", "address": "10.0.1.5", "updated": "1000"}
    assert worker_orphaned(["10.0.0.9"], record, 1010, 300)
    assert not worker_orphaned(["10.0.1.5", "10.0.0.9"], record, 1010, 300)
    assert not worker_orphaned(["10.0.0.9"], {**record, "updated": "100"}, 1010, 300)  # stale: no live swarm
    assert not worker_orphaned(["10.0.0.9"], {**record, "status": "initialising"}, 1010, 300)
    assert not worker_orphaned([], None, 1010, 300)


@pytest.mark.parametrize(
    "primary,answers,running,claim",
    [
        (None, False, [], True),
        (None, False, ["i-2", "i-3"], True),  # a group's first launch: all boot at once, one claim wins
        ({"status": "ready", "updated": "990"}, False, [], False),  # fresh: a live swarm
        ({"status": "ready", "updated": "100"}, True, [], False),  # stale record, but its manager answers
        ({"status": "ready", "updated": "100"}, False, [], True),  # stale and silent, no manager left: gone
        # Stale and silent, but other managers' instances run: their engines may hold the swarm.
        ({"status": "ready", "updated": "100"}, False, ["i-2"], False),
        ({"status": "initialising", "updated": "100"}, True, ["i-2"], True),  # a claim that never finished
        ({"status": "initialising", "updated": "990"}, False, [], False),  # a claim in progress
    ],
)
def test_when_a_booting_manager_may_claim_the_primary_record(primary, answers, running, claim):
    assert may_claim(primary, 1000, 300, answers, running) is claim


@pytest.mark.parametrize(
    "seen,chosen",
    [
        ({"me": 100.0, "b": 60.0}, "me"),
        ({"me": 60.0, "b": 100.0}, "b"),  # b saw the last leader: its raft log is the newest
        ({"me": 100.0, "b": 95.0}, "b"),  # within one recording period: a tie, the lowest id
        ({"me": None, "b": 50.0}, "b"),
        ({"me": None, "b": None}, "b"),  # nothing recorded: still one answer for every survivor
        ({"me": None}, "me"),
        ({"me": 10.0, "c": 50.0, "a": 50.0}, "a"),
    ],
)
def test_a_lost_quorum_is_recovered_on_the_manager_that_saw_a_leader_last(seen, chosen):
    assert recovery_survivor(seen, tolerance=30) == chosen


def test_a_leader_seen_lately_elsewhere_may_mean_a_partition_not_a_lost_quorum():
    assert quorum_may_live_elsewhere({"a": 990.0, "b": None}, 1000, within=60) == "a"
    assert quorum_may_live_elsewhere({"a": 900.0, "b": None}, 1000, within=60) is None
    assert quorum_may_live_elsewhere({}, 1000, within=60) is None


def test_the_leader_confirms_the_record_three_times_per_staleness_window():
    assert (confirm_every(300), confirm_every(20)) == (30, 20 / 3)


def test_a_rolled_back_service_stays_reported_until_its_spec_changes():
    """swarmkit's UpdateService clears UpdateStatus on every update, the leader's credential refresh
    (the same spec sent again) too: the service stays reported until a new spec, or until it is gone."""
    spec = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "web:v1"}}}
    rolled = {"ID": "s1", "Spec": spec, "UpdateStatus": {"State": "rollback_completed"}}
    held = rolled_back_services([rolled], {})
    assert held == {"s1": spec_digest(spec)}
    refreshed = {"ID": "s1", "Spec": dict(spec)}  # no UpdateStatus any more, the same spec
    assert rolled_back_services([refreshed], held) == held
    deployed = {"ID": "s1", "Spec": {**spec, "TaskTemplate": {"ContainerSpec": {"Image": "web:v3"}}}}
    assert rolled_back_services([deployed], held) == {}
    assert rolled_back_services([], held) == {}  # removed
    assert rolled_back_services([{**refreshed, "UpdateStatus": {"State": "completed"}}], {}) == {}


@pytest.mark.parametrize(
    "state,gives_up",
    [("inactive", True), ("active", False), ("pending", False), ("locked", False), ("error", False), (None, False)],
)
def test_only_an_engine_without_swarm_state_gives_its_instance_up(state, gives_up):
    """A lone survivor of a lost quorum holds the last raft log; an engine that does not answer may too."""
    assert may_give_up_instance(state) is gives_up


def unlabelled(id, address, role="worker"):
    return Node(id, role, "ready", "active", None, address=address)


AWS_SAYS = {
    "10.0.1.10": {"instance_id": "i-worker", "zone": "eu-west-1a", "role": "worker"},
    "10.0.2.20": {"instance_id": "i-manager", "zone": "eu-west-1b", "role": "manager"},
}


def test_a_node_is_named_after_the_instance_at_its_address():
    assert identities([unlabelled("n1", "10.0.1.10")], AWS_SAYS, set()) == {
        "n1": {"instance_id": "i-worker", "availability_zone": "eu-west-1a", "role": "worker"}
    }


@pytest.mark.parametrize(
    "nodes,labelled,why",
    [
        ([unlabelled("n1", "10.9.9.9")], set(), "no instance of the stack's groups at that address"),
        ([unlabelled("n1", "10.0.1.10"), unlabelled("n2", "10.0.1.10")], set(), "two engines on one host"),
        ([unlabelled("n2", "10.0.1.10")], {"i-worker"}, "another node carries that instance already"),
        ([unlabelled("n1", "10.0.1.10", role="manager")], set(), "a worker's instance whose engine is a manager"),
        ([unlabelled("n1", "10.0.2.20", role="worker")], set(), "a manager's instance whose engine is a worker"),
        ([unlabelled("n1", "")], set(), "no address recorded"),
    ],
)
def test_a_node_no_manager_can_tell_apart_gets_no_identity(nodes, labelled, why):
    assert identities(nodes, AWS_SAYS, labelled) == {}, why


def test_only_active_workers_no_manager_can_identify_are_quarantined():
    stray, known = unlabelled("x1", "10.9.9.9"), unlabelled("w1", "10.0.1.10")
    manager = unlabelled("m9", "10.9.9.8", role="manager")
    drained = Node("x2", "worker", "ready", "drain", None, address="10.9.9.7")
    found = identities([stray, known, manager, drained], AWS_SAYS, set())
    assert [n.id for n in to_quarantine([stray, known, manager, drained], found)] == ["x1"]


def test_an_instance_that_joins_again_under_a_new_node_id_keeps_its_identity():
    """Its engine lost its swarm state: the old record is down and holds the instance; the new node
    at the instance's address gets it, and the old record goes."""
    old = Node("w1-old", "worker", "down", "active", "i-worker")
    again = unlabelled("w1-new", "10.0.1.10")
    live = {n.instance_id for n in [old] if n.state != "down"}
    found = identities([again], AWS_SAYS, live)
    assert found["w1-new"]["instance_id"] == "i-worker"
    assert superseded([old, again], found) == [old]
    # While the old one is up, the instance is its: the new node gets nothing.
    assert identities([again], AWS_SAYS, {"i-worker"}) == {}


def test_only_workers_unidentified_for_long_are_strays():
    since = {"x1": 0.0, "x2": 100.0, "m9": 0.0}
    nodes = [unlabelled("x1", "10.9.9.1"), unlabelled("x2", "10.9.9.2"), unlabelled("m9", "10.9.9.3", role="manager")]
    assert [n.id for n in strays(nodes, since, now=900.0, after=900.0)] == ["x1"]


def test_a_notice_goes_to_the_live_node_of_an_instance_not_its_old_record():
    """A manager that joined again under a new node id: its old, down record carries the instance too."""
    old = Node("m1-old", "manager", "down", "active", "i-m1", reachable=False)
    me = Node("m1-new", "manager", "ready", "active", "i-m1")
    leader = node("m2", "manager", leader=True)
    assert lifecycle_handler("i-m1", [old, me, leader], me) == HANDLE_MINE
    assert lifecycle_handler("i-m1", [old, me, leader], leader) == HANDLE_OTHERS


def test_labels_aws_does_not_confirm_are_mismatched():
    right = Node("w1", "worker", "ready", "active", "i-worker", address="10.0.1.10")
    twin = Node("w1-twin", "worker", "ready", "active", "i-worker", address="10.0.1.10")
    elsewhere = Node("w2", "worker", "ready", "active", "i-worker", address="10.9.9.9")
    assert mismatched([right], AWS_SAYS) == []
    assert mismatched([right, twin], AWS_SAYS) == [right, twin]  # one instance, two nodes: neither is trusted
    assert mismatched([elsewhere], AWS_SAYS) == [elsewhere]


def test_a_rolled_back_service_stays_reported_when_the_leader_scales_it():
    """Scaling (ADR 0034) is an update too: another replica count is the same spec for the rollback's
    page; a digest an older agent stored (with the count) is still recognised."""
    spec = {"Name": "web", "Mode": {"Replicated": {"Replicas": 2}}, "TaskTemplate": {"ContainerSpec": {"Image": "a"}}}
    held = rolled_back_services([{"ID": "s1", "Spec": spec, "UpdateStatus": {"State": "rollback_completed"}}], {})
    scaled = {"ID": "s1", "Spec": {**spec, "Mode": {"Replicated": {"Replicas": 5}}}}
    assert rolled_back_services([scaled], held) == held
    older = {"s1": spec_digest(spec, counted=True)}
    assert rolled_back_services([{"ID": "s1", "Spec": spec}], older) == held
    assert spec_digest(spec) != spec_digest(spec, counted=True)
