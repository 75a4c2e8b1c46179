"""The managers' labelling of nodes: each node's identity from what AWS says of the instance at its
address, never from the node itself (ADR 0026). The decisions are plan.py's; this runs them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from restdemo_agent.contract import LABEL_INSTANCE_ID
from restdemo_agent.log import log
from restdemo_agent.plan import Node, identities, mismatched, strays, superseded, to_quarantine

# An unidentified node is looked up again at most this often; AWS's answer is kept this long (an
# instance is in its group minutes before its engine joins); a worker that stays unidentified
# this long is removed from the swarm (anyone with the worker token can make node records).
LOOKUP_SECONDS = 60.0
INSTANCES_SECONDS = 30.0
STRAY_SECONDS = 900.0


@dataclass
class NodeLabeller:
    """Takes the engine (node updates) and `lookup`: the stack's running instances by private address,
    {instance_id, zone, role}, as AWS says (aws.stack_instances). Gives `run(nodes)`: the nodes as
    labelled this round, without those it removed."""

    engine: object
    lookup: Callable[[], dict[str, dict]]
    reported: set[str] = field(default_factory=set)  # nodes already logged as matching no instance
    unidentified_since: dict[str, float] = field(default_factory=dict)  # node id -> when first seen so
    looked_up: dict[str, float] = field(default_factory=dict)  # node id -> when last looked up
    audited: bool = False  # the labels found at start checked against AWS
    instances: dict[str, dict] | None = None
    instances_at: float = -1e18

    def run(self, nodes: list[Node]) -> list[Node]:
        """Release nodes two managers left labelled and quarantined; look the due unlabelled ones up
        (and, once, every labelled one); remove strays. An error is logged and retried next round."""
        now = time.monotonic()
        unlabelled = [n for n in nodes if not n.instance_id]
        self.unidentified_since = {n.id: self.unidentified_since.get(n.id, now) for n in unlabelled}
        self.looked_up = {k: v for k, v in self.looked_up.items() if k in self.unidentified_since}
        ready = [n for n in unlabelled if n.state == "ready"]
        found: dict[str, dict] = {}
        drained: set[str] = set()
        gone: set[str] = set()
        try:
            for node in nodes:
                if node.instance_id and node.quarantined:
                    self.engine.release(node.id)
                    log("released", node_id=node.id, instance_id=node.instance_id)
            if not self.audited or any(now - self.looked_up.get(n.id, -1e18) >= LOOKUP_SECONDS for n in ready):
                found, drained, gone = self.from_aws(nodes, ready, now)
            for node in strays(unlabelled, self.unidentified_since, now, STRAY_SECONDS):
                if node.id not in gone:
                    self.engine.remove_node(node.id)
                    gone.add(node.id)
                    log("unidentified-node-removed", node_id=node.id, address=node.address, state=node.state)
        except Exception as exc:
            log("label-error", message=str(exc)[:300], kind=type(exc).__name__)
        return [
            replace(n, instance_id=found[n.id][LABEL_INSTANCE_ID])
            if n.id in found
            else replace(n, quarantined=True)
            if n.id in drained
            else n
            for n in nodes
            if n.id not in gone
        ]

    def from_aws(self, nodes: list[Node], ready: list[Node], now: float) -> tuple[dict, set[str], set[str]]:
        """Label the ready unlabelled nodes AWS knows, drain the workers it does not (all of them when
        it does not answer), remove the old record of an instance that joined again, and check once
        the labels found at start. Returns (labels set, nodes drained, nodes removed)."""
        for node in ready:
            self.looked_up[node.id] = now
        # A node first seen after AWS's answer was kept may be on an instance that answer predates.
        seen_last = max(
            (self.unidentified_since.get(n.id, now) for n in ready if n.id not in self.reported), default=None
        )
        try:
            instances = self.instances_now(now, newer_than=seen_last)
        except Exception as exc:  # fail closed: no replica on a node nobody could identify
            log("label-error", message=str(exc)[:300], kind=type(exc).__name__)
            instances = None
        live = {n.instance_id for n in nodes if n.instance_id and n.state != "down"}
        found = identities(ready, instances or {}, live)
        for node in ready:
            if node.id in found:
                self.engine.label_node(node.id, found[node.id])
                log("labelled", node_id=node.id, released=node.quarantined, **found[node.id])
            elif node.id not in self.reported:
                log("unidentified-node", node_id=node.id, address=node.address, role=node.role)
        self.reported = {n.id for n in ready if n.id not in found}
        drained = set()
        for node in to_quarantine(ready, found):
            if self.engine.quarantine(node.id):
                drained.add(node.id)
                log("unidentified-node-drained", node_id=node.id, address=node.address)
        gone = set()
        for node in superseded(nodes, found):
            if node.role == "manager":
                self.engine.demote_and_remove(node)
            else:
                self.engine.remove_node(node.id)
            gone.add(node.id)
            log("removed-superseded-node", node_id=node.id, instance_id=node.instance_id)
        if instances is not None and not self.audited:
            self.audit(nodes, instances)
        return found, drained, gone

    def audit(self, nodes: list[Node], instances: dict[str, dict]) -> None:
        """Labels an older agent set (copied from engine labels) that AWS does not confirm: a worker's
        are taken off, and it is quarantined until identified again; a manager's are reported only."""
        labelled = [n for n in nodes if n.instance_id and n.state == "ready" and not n.quarantined]
        for node in mismatched(labelled, instances):
            aws_says = instances.get(node.address)
            log("identity-mismatch", node_id=node.id, address=node.address, instance_id=node.instance_id, aws=aws_says)
            if node.role == "worker":
                self.engine.unlabel(node.id)
        self.audited = True

    def instances_now(self, now: float, newer_than: float | None = None) -> dict[str, dict]:
        """AWS's answer, kept INSTANCES_SECONDS, or asked again when it is older than `newer_than`."""
        stale = newer_than is not None and self.instances_at < newer_than
        if self.instances is None or stale or now - self.instances_at >= INSTANCES_SECONDS:
            self.instances, self.instances_at = self.lookup(), now
        return self.instances
