"""Spot interruptions, drained before the instance goes (ADR 0031).

A worker's agent reads its instance's metadata (IMDSv2) every round for the two-minute
interruption notice (`spot/instance-action`) and the rebalance recommendation
(`events/recommendations/rebalance`, logged only: see `to_record`). A worker cannot drain its own
node (only managers change nodes), so it records the notice in the state table under
`notice#<its aws:userid>`; its IAM
role lets it write that one key and no other, so a worker can only ever ask for itself to be
drained. The leader reads the notices each round and drains the worker node whose instance
the key names, while the instance still answers: its tasks start elsewhere first.

Pure decisions here; the metadata is read by `Metadata` (identity.py's endpoint), the table
by `SwarmState`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from restdemo_agent.contract import NOTICE_PREFIX
from restdemo_agent.plan import Node

INSTANCE_ACTION_PATH = "spot/instance-action"
REBALANCE_PATH = "events/recommendations/rebalance"
INTERRUPTION, REBALANCE = "interruption", "rebalance"
# A notice whose instance is no node of the swarm (it is gone, or never joined) is deleted after
# this long: an interrupted instance is terminated two minutes after its notice.
NOTICE_KEPT_SECONDS = 600.0


@dataclass(frozen=True)
class Notice:
    kind: str  # INTERRUPTION or REBALANCE
    at: str  # the time AWS names: the interruption's, or the recommendation's noticeTime


def notice_from(instance_action: str | None, rebalance: str | None) -> Notice | None:
    """What the metadata says, the interruption first (it is the sooner end). A body that is not
    what EC2 documents (User Guide, "Spot Instance interruption notices", "EC2 instance rebalance
    recommendations") is taken as no notice: the instance's group drains it anyway if it goes."""
    for kind, body, field in ((INTERRUPTION, instance_action, "time"), (REBALANCE, rebalance, "noticeTime")):
        if not body:
            continue
        try:
            parsed = json.loads(body)
        except ValueError:
            continue
        if isinstance(parsed, dict) and isinstance(parsed.get(field), str):
            return Notice(kind, parsed[field])
    return None


def noticed_instance(key: str) -> str | None:
    """The instance a notice's key names: `notice#<role id>:<instance id>`, an instance role
    session's aws:userid (IAM User Guide, "Policy variables": role-id:ec2-instance-id)."""
    if not key.startswith(NOTICE_PREFIX) or ":" not in key:
        return None
    instance = key.rpartition(":")[2]
    return instance if instance.startswith("i-") else None


def well_formed(item: dict) -> bool:
    """A notice as the agent writes it: a known kind, a time AWS gave, when it was recorded. The item
    is the worker's to write (only its key is fixed), so anything else is no notice."""
    try:
        recorded = float(item.get("recorded", ""))
    except ValueError:
        return False
    return item.get("kind") == INTERRUPTION and 0 < len(item.get("at", "")) <= 64 and recorded > 0


def to_record(notice: Notice | None, recorded: Notice | None) -> bool:
    """Whether a worker records what its metadata says: an interruption, once. A rebalance
    recommendation is only logged: the group, with capacity rebalancing, launches a replacement first
    and then retires the instance at risk through the drain hook, so draining at once would take the
    node's capacity away before there is any other (two recommended at once: both)."""
    return notice is not None and notice.kind == INTERRUPTION and notice != recorded


# A worker's availability while its tasks still run on it.
UNDRAINED = ("active", "pause")


def to_drain(notices: dict[str, dict], nodes: list[Node]) -> list[tuple[str, Node]]:
    """(key, node) for each well-formed interruption notice naming a ready worker node not draining
    yet (active, or paused by an operator: its tasks still die with it): managers are on-demand and are
    never drained on a worker's word."""
    workers = {n.instance_id: n for n in nodes if n.role == "worker" and n.instance_id}
    found = []
    for key in sorted(notices):
        node = workers.get(noticed_instance(key) or "")
        if node and node.availability in UNDRAINED and node.state == "ready" and well_formed(notices[key]):
            found.append((key, node))
    return found


def to_delete(notices: dict[str, dict], nodes: list[Node], now: float) -> list[str]:
    """Notices done with: malformed ones, those whose node is draining already or no worker (a manager,
    which no notice drains), and those naming no node for long."""
    instances = {n.instance_id: n for n in nodes if n.instance_id}
    done = []
    for key, item in sorted(notices.items()):
        node = instances.get(noticed_instance(key) or "")
        if not well_formed(item):
            done.append(key)
        elif node is not None and not (node.role == "worker" and node.availability in UNDRAINED):
            done.append(key)
        elif node is None and now - float(item["recorded"]) > NOTICE_KEPT_SECONDS:
            done.append(key)
    return done
