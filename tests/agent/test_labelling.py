"""agent/src/restdemo_agent/labelling.py: the managers' labelling of nodes, on node specs as swarm
keeps them (the spec changes are plan.py's own), with AWS's answer given as data."""

from __future__ import annotations

import json

import pytest

from restdemo_agent import labelling
from restdemo_agent.engine import to_node
from restdemo_agent.labelling import NodeLabeller
from restdemo_agent.plan import labelled_spec, quarantined_spec, unlabelled_spec

pytestmark = pytest.mark.unit

WORKER = {"instance_id": "i-worker", "zone": "eu-west-1a", "role": "worker"}
MANAGER = {"instance_id": "i-manager", "zone": "eu-west-1b", "role": "manager"}
AWS_SAYS = {"10.0.1.10": WORKER, "10.0.2.20": MANAGER}
WORKER_LABELS = {"instance_id": "i-worker", "availability_zone": "eu-west-1a", "role": "worker"}


class Swarm:
    """Node records as swarm keeps them, updated the way the engine updates them: each change is
    decided on the spec as it is at that moment (Engine.edit_node)."""

    def __init__(self):
        self.specs, self.status, self.removed, self.demoted = {}, {}, [], []

    def add(self, node_id, address, role="worker", state="ready", labels=None, availability="active"):
        self.specs[node_id] = {"Role": role, "Availability": availability, "Labels": dict(labels or {})}
        self.status[node_id] = {"State": state, "Addr": address}

    def nodes(self):
        return [self.attrs(node_id) for node_id in self.specs]

    def attrs(self, node_id):
        spec, status = json.loads(json.dumps(self.specs[node_id])), self.status[node_id]
        attrs = {"ID": node_id, "Spec": spec, "Status": status}
        if spec["Role"] == "manager":
            attrs["ManagerStatus"] = {"Reachability": "reachable" if status["State"] == "ready" else "unreachable"}
        return to_node(attrs)

    def edit(self, node_id, change):
        changed = change(self.specs[node_id])
        if changed is not None:
            self.specs[node_id] = changed
        return changed is not None

    def label_node(self, node_id, labels):
        self.edit(node_id, lambda spec: labelled_spec(spec, labels))

    def quarantine(self, node_id):
        return self.edit(node_id, quarantined_spec)

    def release(self, node_id):
        self.edit(node_id, lambda spec: labelled_spec(spec, {}))

    def unlabel(self, node_id):
        self.edit(node_id, unlabelled_spec)

    def remove_node(self, node_id):
        self.removed.append(node_id)
        del self.specs[node_id], self.status[node_id]

    def demote_and_remove(self, node):
        self.demoted.append(node.id)
        self.remove_node(node.id)


def lines(capsys, action):
    return [line for line in map(json.loads, capsys.readouterr().out.splitlines()) if line["action"] == action]


def answering(instances):
    calls = []

    def lookup():
        calls.append(1)
        return instances

    return lookup, calls


def test_new_nodes_get_the_identity_of_the_instance_at_their_address_and_strangers_are_drained(capsys):
    swarm = Swarm()
    swarm.add("w1", "10.0.1.10")
    swarm.add("x1", "10.99.0.1")
    lookup, calls = answering(AWS_SAYS)
    labeller = NodeLabeller(swarm, lookup)
    nodes = labeller.run(swarm.nodes())
    assert swarm.specs["w1"]["Labels"] == WORKER_LABELS
    assert swarm.specs["x1"] == {
        "Role": "worker",
        "Availability": "drain",
        "Labels": {"restdemo.unidentified": "drained"},
    }
    assert [(n.id, n.instance_id, n.quarantined) for n in nodes] == [("w1", "i-worker", False), ("x1", None, True)]
    assert [line["node_id"] for line in lines(capsys, "unidentified-node-drained")] == ["x1"]
    # Not looked up again within LOOKUP_SECONDS; after it, reported no second time.
    labeller.run(swarm.nodes())
    assert len(calls) == 1 and capsys.readouterr().out == ""
    labeller.looked_up = {k: v - labelling.LOOKUP_SECONDS for k, v in labeller.looked_up.items()}
    labeller.instances_at -= labelling.INSTANCES_SECONDS
    labeller.run(swarm.nodes())
    assert len(calls) == 2 and lines(capsys, "unidentified-node") == []
    # Its instance in the group at last: labelled, and active again with only the quarantine label gone.
    swarm.specs["x1"]["Labels"]["team"] = "blue"  # set by someone meanwhile: kept
    swarm.status["x1"]["Addr"], swarm.specs["w1"]["Labels"] = "10.0.1.10", {}
    swarm.remove_node("w1")
    labeller.looked_up.clear()
    labeller.run(swarm.nodes())
    assert swarm.specs["x1"] == {
        "Role": "worker",
        "Availability": "active",
        "Labels": {"team": "blue", **WORKER_LABELS},
    }


def test_while_aws_does_not_answer_every_new_worker_is_drained_and_a_manager_only_reported(capsys):
    swarm = Swarm()
    swarm.add("w1", "10.0.1.10")
    swarm.add("m2", "10.0.2.20", role="manager")

    def throttled():
        raise RuntimeError("Rate exceeded")

    NodeLabeller(swarm, throttled).run(swarm.nodes())
    assert (swarm.specs["w1"]["Availability"], swarm.specs["m2"]["Availability"]) == ("drain", "active")
    assert [line["message"] for line in lines(capsys, "label-error")] == ["Rate exceeded"]


@pytest.mark.parametrize("first", ["the one AWS failed", "the one AWS answered"])
def test_two_managers_crossing_never_leave_a_labelled_node_drained(first):
    """Both read the node list at once; one's lookup fails (it drains), the other's succeeds (it
    labels). Whichever writes first, the node ends labelled and active."""
    swarm = Swarm()
    swarm.add("w1", "10.0.1.10")
    seen = swarm.nodes()  # both managers' view, before either writes

    def throttled():
        raise RuntimeError("Rate exceeded")

    failing, answering_one = NodeLabeller(swarm, throttled), NodeLabeller(swarm, answering(AWS_SAYS)[0])
    order = [failing, answering_one] if first == "the one AWS failed" else [answering_one, failing]
    for labeller in order:
        labeller.run(seen)
    assert swarm.specs["w1"] == {"Role": "worker", "Availability": "active", "Labels": WORKER_LABELS}


def test_a_node_left_labelled_and_quarantined_is_released():
    swarm = Swarm()
    swarm.add("w1", "10.0.1.10", labels={**WORKER_LABELS, "restdemo.unidentified": "drained"}, availability="drain")
    NodeLabeller(swarm, answering(AWS_SAYS)[0]).run(swarm.nodes())
    assert swarm.specs["w1"] == {"Role": "worker", "Availability": "active", "Labels": WORKER_LABELS}


def test_a_worker_unidentified_for_long_is_removed_a_manager_never(capsys):
    """Anyone with the worker token can make node records (each one every manager keeps), even
    without an engine: a worker with no identity after STRAY_SECONDS goes, whatever its state."""
    swarm = Swarm()
    swarm.add("x1", "10.99.0.1", state="unknown")
    swarm.add("m9", "10.99.0.2", role="manager", state="unknown")
    labeller = NodeLabeller(swarm, answering(AWS_SAYS)[0])
    assert [n.id for n in labeller.run(swarm.nodes())] == ["x1", "m9"]
    labeller.unidentified_since = {k: v - labelling.STRAY_SECONDS for k, v in labeller.unidentified_since.items()}
    assert [n.id for n in labeller.run(swarm.nodes())] == ["m9"]
    assert swarm.removed == ["x1"]
    assert [line["node_id"] for line in lines(capsys, "unidentified-node-removed")] == ["x1"]


def test_labels_an_older_agent_copied_are_checked_once_against_aws(capsys):
    """At its start an agent checks every labelled node: a worker whose labels name another instance
    (copied from its engine's, which root on it wrote) loses them and is quarantined until it is
    identified again; a manager's mismatch is reported only."""
    swarm = Swarm()
    swarm.add("w1", "10.0.1.10", labels=WORKER_LABELS)
    swarm.add("forger", "10.0.1.11", labels={**WORKER_LABELS, "instance_id": "i-manager"})
    swarm.add("m1", "10.0.2.20", role="manager", labels={"instance_id": "i-other", "role": "manager"})
    labeller = NodeLabeller(swarm, answering(AWS_SAYS)[0])
    labeller.run(swarm.nodes())
    assert swarm.specs["w1"]["Labels"] == WORKER_LABELS
    assert swarm.specs["forger"] == {
        "Role": "worker",
        "Availability": "drain",
        "Labels": {"restdemo.unidentified": "drained"},
    }
    assert swarm.specs["m1"]["Labels"] == {"instance_id": "i-other", "role": "manager"}
    assert [line["node_id"] for line in lines(capsys, "identity-mismatch")] == ["forger", "m1"]
    swarm.specs["forger"]["Labels"]["instance_id"] = "i-manager"  # forged again: no second check
    labeller.run(swarm.nodes())
    assert lines(capsys, "identity-mismatch") == []


@pytest.mark.parametrize("role", ["worker", "manager"])
def test_an_instance_that_joined_again_keeps_its_identity_and_its_old_record_goes(role):
    """Its engine lost its swarm state and joined under a new node id: the old record is down and
    holds the instance. The new node gets the identity; the old record is removed (a manager's
    demoted first, while the reachable managers keep a quorum) and is not in the list returned."""
    instance = WORKER if role == "worker" else MANAGER
    address = "10.0.1.10" if role == "worker" else "10.0.2.20"
    labels = {"instance_id": instance["instance_id"], "availability_zone": instance["zone"], "role": role}
    swarm = Swarm()
    swarm.add("m1", "10.0.3.1", role="manager", labels={"instance_id": "i-m1", "role": "manager"})
    swarm.add("m2", "10.0.3.2", role="manager", labels={"instance_id": "i-m2", "role": "manager"})
    swarm.add("old", address, role=role, state="down", labels=labels)
    swarm.add("new", address, role=role)
    aws = {**AWS_SAYS, "10.0.3.1": {**MANAGER, "instance_id": "i-m1"}, "10.0.3.2": {**MANAGER, "instance_id": "i-m2"}}
    nodes = NodeLabeller(swarm, answering(aws)[0]).run(swarm.nodes())
    assert swarm.specs["new"]["Labels"] == labels
    assert swarm.removed == ["old"] and swarm.demoted == (["old"] if role == "manager" else [])
    assert "old" not in [n.id for n in nodes]


def test_a_node_that_joins_after_aws_was_asked_is_looked_up_afresh_not_drained(capsys):
    """AWS's answer is kept 30 s; an instance launched and joined within them is not in it. Read from
    the kept answer, a new worker was drained as a stranger, and one that died before the next look
    was never identified: its record outlived its instance by STRAY_SECONDS."""
    swarm = Swarm()
    swarm.add("w1", "10.0.1.10")
    running, calls = dict(AWS_SAYS), []

    def lookup():  # each answer a new one, as AWS's
        calls.append(1)
        return dict(running)

    labeller = NodeLabeller(swarm, lookup)
    labeller.run(swarm.nodes())
    running["10.0.1.11"] = {"instance_id": "i-new", "zone": "eu-west-1b", "role": "worker"}
    swarm.add("w2", "10.0.1.11")
    labeller.run(swarm.nodes())
    assert len(calls) == 2
    assert swarm.specs["w2"]["Labels"]["instance_id"] == "i-new" and swarm.specs["w2"]["Availability"] == "active"
    assert lines(capsys, "unidentified-node-drained") == []
    labeller.run(swarm.nodes())  # nothing new: the kept answer serves
    assert len(calls) == 2
