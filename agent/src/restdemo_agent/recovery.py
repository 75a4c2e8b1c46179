"""`restdemo-agent recover`: a swarm that lost its quorum while a manager survived, made whole again
from that manager's raft log (Docker's "Recover from losing the quorum": `--force-new-cluster`)."""

from __future__ import annotations

import time

from restdemo_agent.aws import Lifecycle, SwarmState, running_instances
from restdemo_agent.engine import Engine
from restdemo_agent.identity import Identity
from restdemo_agent.log import log
from restdemo_agent.plan import recovery_survivor


class RecoveryRefused(Exception):
    """Recovering here would lose something, or there is nothing to recover: one line says why."""


def recover(
    me: Identity,
    engine: Engine,
    state: SwarmState,
    lifecycle: Lifecycle,
    ec2,
    *,
    here: bool = False,
    leader_timeout: float = 60.0,
) -> dict:
    """On a surviving manager: choose the survivor (this one, unless another saw a leader later and
    `here` is not given), force a new cluster on it, remove the managers that are gone from the
    swarm and have their instances replaced by the group, and point the primary record at this
    manager. The workers and the services stay: they are in the raft log kept. Run again on the
    manager that now leads (after a step failed), it finishes the steps after the new cluster.
    Returns what was done."""
    node_id = _check_survivor(me, engine, state, here)
    if (leader := engine.leader()) is None or leader.id != node_id:
        engine.force_new_cluster(me.address)
        log("force-new-cluster", node_id=node_id, instance_id=me.instance_id)
    deadline = time.monotonic() + leader_timeout
    while (leader := engine.leader()) is None or leader.id != node_id:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no leader {leader_timeout:.0f} s after --force-new-cluster")
        time.sleep(1)
    removed = _remove_lost_managers(engine, lifecycle, ec2, node_id)
    primary = state.primary()
    state.mark_ready(me.address, me.instance_id, node_id, time.time(), primary.get("instance_id") if primary else None)
    log("primary-recovered", node_id=node_id, instance_id=me.instance_id)
    return {"node_id": node_id, "removed": removed}


def _check_survivor(me: Identity, engine: Engine, state: SwarmState, here: bool) -> str:
    swarm = engine.swarm()
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise RecoveryRefused("this node is not a manager of a swarm: run recover on a surviving manager")
    node_id = swarm["NodeID"]
    leader = engine.leader()
    if leader is not None and leader.id != node_id:
        raise RecoveryRefused(f"the swarm has a leader ({leader.id}): there is no lost quorum to recover")
    if leader is not None:
        return node_id  # this manager leads already: a run after a failed step finishes the rest
    others = [m for m in engine.remote_managers() if m.get("NodeID") != node_id]
    alive = [m["NodeID"] for m in others if engine.manager_answers(m.get("Addr", "").rpartition(":")[0])]
    seen = {node: state.leader_seen(node) for node in (node_id, *alive)}
    chosen = recovery_survivor(node_id, seen)
    if chosen != node_id and not here:
        raise RecoveryRefused(
            f"manager {chosen} also survived and saw a leader later than this one: run recover there, "
            "or pass --here to keep this manager's raft log instead"
        )
    return node_id


def _remove_lost_managers(engine: Engine, lifecycle: Lifecycle, ec2, node_id: str) -> list[str]:
    """The old managers are no longer in the raft: out of the swarm, and their instances, where
    they still run, marked unhealthy so the group launches managers that join this one. A manager
    that is ready and reachable (one that joined since) stays."""
    removed = []
    lost = [n for n in engine.nodes() if n.role == "manager" and n.id != node_id and not _live(n)]
    running = running_instances(ec2, [n.instance_id for n in lost if n.instance_id])
    for node in lost:
        # Out of the raft since --force-new-cluster, so removed as they are: swarm refuses to demote
        # them ("can't find manager in raft memberlist").
        engine.remove_node(node.id)
        if node.instance_id in running:
            lifecycle.mark_unhealthy(node.instance_id)
        log("removed-lost-manager", node_id=node.id, instance_id=node.instance_id, replaced=node.instance_id in running)
        removed.append(node.id)
    return removed


def _live(node) -> bool:
    return node.state == "ready" and node.reachable
