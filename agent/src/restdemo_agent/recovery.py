"""`restdemo-agent recover`: a swarm that lost its quorum while a manager survived, made whole again
from that manager's raft log (Docker's "Recover from losing the quorum": `--force-new-cluster`)."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request

from restdemo_agent.aws import Lifecycle, SwarmState, running_instances
from restdemo_agent.contract import READINESS_PORT
from restdemo_agent.engine import Engine
from restdemo_agent.identity import Identity
from restdemo_agent.log import log
from restdemo_agent.plan import quorum_may_live_elsewhere, recovery_survivor


class RecoveryRefused(Exception):
    """Recovering here would lose something, or there is nothing to recover: one line says why."""


# A recovery claimed by one survivor keeps the others out this long (one run takes about a minute).
RECOVERY_HOLD_SECONDS = 600.0
# How long, and how often, the swarm must be seen without a leader before a new cluster is forced:
# an election takes seconds.
NO_LEADER_LOOKS, NO_LEADER_EVERY = 3, 5.0


def recover(
    me: Identity,
    engine: Engine,
    state: SwarmState,
    lifecycle: Lifecycle,
    ec2,
    *,
    recorded_every: float,
    readiness_port: int = READINESS_PORT,
    here: bool = False,
    leader_timeout: float = 60.0,
) -> dict:
    """On a surviving manager: check that the quorum is lost (no leader for a while, nobody else saw
    one lately), choose the survivor (the one that saw a leader last, unless `here`), claim the
    recovery, force a new cluster on it, remove the managers that are gone and have their
    instances replaced by the group, and point the primary record at it. The workers and the
    services stay: they are in the raft log kept. Run again on the manager that now leads (after
    a step failed), it finishes the steps after the new cluster. `recorded_every`: how often each
    agent records that it saw a leader. Returns what was done."""
    node_id, leading = _check_survivor(
        me, engine, state, here=here, recorded_every=recorded_every, readiness_port=readiness_port
    )
    if (holder := state.claim_recovery(node_id, time.time(), RECOVERY_HOLD_SECONDS)) is not None:
        raise RecoveryRefused(
            f"manager {holder.get('node_id')} is recovering this swarm (since {holder.get('updated')})"
        )
    if not leading:
        engine.force_new_cluster(me.address)
        log("force-new-cluster", node_id=node_id, instance_id=me.instance_id)
    deadline = time.monotonic() + leader_timeout
    while (leader := engine.leader()) is None or leader.id != node_id:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no leader {leader_timeout:.0f} s after --force-new-cluster")
        time.sleep(1)
    removed = _remove_lost_managers(engine, lifecycle, ec2, node_id)
    primary = state.primary()
    previous = primary.get("instance_id") if primary else None
    if not state.mark_ready(me.address, me.instance_id, node_id, time.time(), previous):
        raise RuntimeError("the primary record changed under the recovery; run recover again")
    log("primary-recovered", node_id=node_id, instance_id=me.instance_id)
    return {"node_id": node_id, "removed": removed}


def agent_answers(address: str, port: int, timeout: float = 3.0) -> bool:
    """Do a manager's agent and engine answer (its readiness endpoint, any status: a survivor without
    a quorum says 503)? Not a TCP connect to 2377: the kernel completes that handshake for a hung or
    stopped dockerd too, and a hung manager cannot be recovered on."""
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/ready", timeout=timeout) as answer:
            answer.read()
        return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError, http.client.HTTPException):  # refused, timed out, not HTTP
        return False


def _check_survivor(
    me: Identity, engine: Engine, state: SwarmState, *, here: bool, recorded_every: float, readiness_port: int
):
    """This node's id, and whether it leads already (a second run); raises RecoveryRefused when
    there is nothing to recover or recovering here would lose something."""
    swarm = engine.swarm()
    # A manager whose engine restarted without a quorum stays `pending` (it cannot reach a leader).
    if swarm.get("LocalNodeState") not in ("active", "pending") or not swarm.get("ControlAvailable"):
        raise RecoveryRefused("this node is not a manager of a swarm: run recover on a surviving manager")
    node_id = swarm["NodeID"]
    for look in range(NO_LEADER_LOOKS):
        if (leader := engine.leader()) is not None:
            if leader.id == node_id:
                return node_id, True  # this manager leads already: finish the steps after the new cluster
            raise RecoveryRefused(f"the swarm has a leader ({leader.id}): there is no lost quorum to recover")
        if look < NO_LEADER_LOOKS - 1:
            time.sleep(NO_LEADER_EVERY)
    others = [m for m in engine.remote_managers() if m.get("NodeID") != node_id]
    seen = {m["NodeID"]: state.leader_seen(m["NodeID"]) for m in others}
    if (elsewhere := quorum_may_live_elsewhere(seen, time.time(), 2 * recorded_every)) is not None:
        raise RecoveryRefused(
            f"manager {elsewhere} saw a leader in the last {2 * recorded_every:.0f} s: the quorum may be alive "
            "across a partition; run recover once no manager has seen one for that long"
        )
    alive = {m["NodeID"] for m in others if agent_answers(m.get("Addr", "").rpartition(":")[0], readiness_port)}
    survivors = {node: at for node, at in seen.items() if node in alive} | {node_id: state.leader_seen(node_id)}
    chosen = recovery_survivor(survivors, recorded_every)
    if chosen != node_id and not here:
        raise RecoveryRefused(
            f"recover on manager {chosen}: it survived too and saw a leader last (or ties and comes first by node "
            "id), so its raft log is kept; --here keeps this manager's instead"
        )
    return node_id, False


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
    """Ready and reachable: a manager of the new cluster (one that joined since). The old ones have
    no manager status there (`to_node` reads them as unreachable), and their state is unknown or down."""
    return node.state == "ready" and node.reachable
