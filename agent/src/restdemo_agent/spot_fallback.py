"""A workers' group that cannot launch spot capacity falls back to on-demand, and says so (#31).

Auto Scaling never launches on-demand in place of spot by itself: a spot launch that finds no
capacity in any of the group's instance types fails, is recorded as a failed scaling activity whose
status message names it ("Could not launch Spot Instances. ...", EC2 Auto Scaling User Guide,
"Troubleshoot instance launch failures"), and is tried again, while the group stays below its
desired count. The leader reads the workers' group and its activities of the last hour once a
metrics period. After a failed spot launch, it raises the group's `OnDemandBaseCapacity` to the
on-demand workers it runs plus those it is short: the missing workers launch on-demand, and the spot
workers it runs stay (a base above the on-demand count it has would have Auto Scaling replace them,
API reference, InstancesDistribution: "a gradual replacement of instances"). It reports
`WorkersSpotFallback` (the `workers-spot-fallback` alarm tells the stack's topic). An hour after the
last such failure it puts back the program's base (the group's tag `restdemo:on-demand-base`), and
Auto Scaling tries spot again; should that fail, the leader falls back again at once, with no
worker replaced. The program leaves the live base to the agent (`ignore_changes`); a change of the
base setting reaches the group through the tag.

An `up` sends the base its refresh read (`make up` refreshes first); the leader sets its own again
within a minute. Pure decisions here; the calls are in aws.py.
"""

from __future__ import annotations

from datetime import datetime

from restdemo_agent.contract import ON_DEMAND_BASE_TAG

# How long after the last failed spot launch the group stays on-demand.
RETRY_SPOT_SECONDS = 3600.0
FAILED = {"Failed", "Cancelled"}


def _seconds(stamp) -> float | None:
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def last_spot_failure(activities: list[dict]) -> float | None:
    """When the latest launch that failed for want of spot capacity ended (seconds since the epoch)."""
    failed = [
        _seconds(activity.get("EndTime") or activity.get("StartTime"))
        for activity in activities
        if activity.get("StatusCode") in FAILED
        and str(activity.get("Description", "")).startswith("Launching")
        and "spot" in str(activity.get("StatusMessage", "")).lower()
    ]
    return max((at for at in failed if at is not None), default=None)


def program_base(group: dict) -> int | None:
    """The on-demand base the program set (its tag), None without one or a mixed instances policy."""
    if "MixedInstancesPolicy" not in group:
        return None
    tagged = [t.get("Value", "") for t in group.get("Tags", []) if t.get("Key") == ON_DEMAND_BASE_TAG]
    return int(tagged[0]) if tagged and tagged[0].isdigit() else None


def current_base(group: dict) -> int:
    distribution = group["MixedInstancesPolicy"].get("InstancesDistribution") or {}
    return int(distribution.get("OnDemandBaseCapacity", 0))


def members(group: dict) -> list[str]:
    """The group's instances that count toward its desired capacity (not those leaving it)."""
    return [
        i["InstanceId"]
        for i in group.get("Instances", [])
        if not str(i.get("LifecycleState", "")).startswith(("Terminat", "Detach", "Standby", "EnteringStandby"))
    ]


def wanted_base(group: dict, activities: list[dict], spot: set[str], now: float) -> int | None:
    """The base to set on the group now, or None to leave it. Within an hour of a failed spot launch:
    the on-demand workers it runs plus those it is short of its desired count (`spot`: which of its
    instances are spot, as EC2 says), never below the program's; the program's otherwise."""
    program = program_base(group)
    if program is None:
        return None
    failed = last_spot_failure(activities)
    wanted = program
    if failed is not None and now - failed <= RETRY_SPOT_SECONDS:
        running = members(group)
        on_demand = len([i for i in running if i not in spot])
        short = max(0, int(group.get("DesiredCapacity", 0)) - len(running))
        wanted = max(program, on_demand + short)
    return wanted if wanted != current_base(group) else None


def on_fallback(group: dict, set_now: int | None = None) -> bool | None:
    """Whether the group runs above the program's base (all on-demand for want of spot), with the base
    just set if any; None when it has no base of the program's."""
    program = program_base(group)
    base = current_base(group) if set_now is None else set_now
    return None if program is None else base > program
