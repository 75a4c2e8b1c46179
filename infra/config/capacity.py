"""What the workers' group is made of: on-demand and spot, and the instance types it may launch.

Pure decisions, read by the settings (what is allowed) and by `NodeGroup` (the group's mixed
instances policy). Managers never take any of it: they hold the swarm's raft log, and a spot
reclaim of two of three managers in one capacity pool at once would lose the quorum (ADR 0031).
"""

from __future__ import annotations

import math
import re

# The allocation AWS recommends for spot (EC2 Auto Scaling User Guide, "Allocation strategies for
# multiple instance types"): the lowest-priced pools among those with the most capacity, so fewer
# interruptions than lowest-price at about its price.
SPOT_ALLOCATION_STRATEGY = "price-capacity-optimized"
# On-demand capacity launches in the order the types are listed: workerInstanceType first.
ON_DEMAND_ALLOCATION_STRATEGY = "prioritized"
# A mixed instances policy lists up to 40 instance types (EC2 Auto Scaling User Guide, "Auto Scaling
# groups with multiple instance types and purchase options"): workerInstanceType and 39 more.
MAX_INSTANCE_TYPES = 40

# EC2 instance type names: family (a letter series, a generation digit, attribute letters) and size.
# Graviton (arm64) families carry a `g` attribute right after the generation (t4g, m7g, c7gn, r8gd,
# x2gd, im4gn, is4gen, g5g, hpc7g) and a1 is the first Graviton (EC2 User Guide, "Instance type naming
# conventions"; "AWS Graviton"); every other family here is x86_64.
_TYPE = re.compile(r"(?P<family>[a-z][a-z0-9-]*?\d+[a-z-]*)\.(?P<size>[a-z0-9-]+)")
_GRAVITON = re.compile(r"[a-z]+\d+g[a-z]*|a1")


def architecture(instance_type: str) -> str:
    """`arm64` or `x86_64`: the AMI a group launches must be built for it."""
    found = _TYPE.fullmatch(instance_type)
    return "arm64" if found and _GRAVITON.fullmatch(found["family"]) else "x86_64"


def size(instance_type: str) -> str:
    return instance_type.partition(".")[2]


def instance_types(primary: str, more: list[str]) -> list[str]:
    """The types the workers' group may launch, the primary first (on-demand's priority)."""
    return [primary, *more]


def uses_mixed_instances(more_types: list[str], on_demand_percent: int) -> bool:
    """A group of one type, all on-demand, keeps its plain launch template (as before spot)."""
    return bool(more_types) or on_demand_percent < 100


def runs_spot(count: int, on_demand_base: int, on_demand_percent: int) -> bool:
    return on_demand_count(count, on_demand_base, on_demand_percent) < count


def on_demand_count(count: int, on_demand_base: int, on_demand_percent: int) -> int:
    """How many of `count` instances a group launches on-demand: the base, then the percent of the rest,
    a fraction rounded to favour on-demand (EC2 Auto Scaling User Guide, "Purchase options": "rounds up
    ... to the next integer for On-Demand Instances")."""
    base = min(on_demand_base, count)
    return base + math.ceil((count - base) * on_demand_percent / 100)


def workers_may_run_spot(settings) -> bool:
    """Judged at the workers' group's largest: workers a scaling group adds above its base may be spot."""
    largest = max(settings.worker_count, settings.worker_max_count)
    return runs_spot(largest, settings.worker_on_demand_base, settings.worker_on_demand_percent)


def workers_scale(settings) -> bool:
    """The workers' group scales when its maximum is above its count (workerMaxCount)."""
    return settings.worker_max_count > settings.worker_count


def type_problems(primary: str, more: list[str], *, primary_setting: str, more_setting: str) -> list[str]:
    """Every extra type of the same size and architecture as the primary, each once: the group's
    capacity counts instances, so a bigger type would be paid for and not used, and one AMI serves
    one architecture."""
    problems = []
    for extra in more:
        if extra == primary or more.count(extra) > 1:
            problems.append(f"{more_setting} lists {extra} twice (with {primary_setting}, each type once)")
        elif size(extra) != size(primary):
            problems.append(
                f"{more_setting}: {extra} is not the size of {primary_setting} {primary} ({size(primary)}): "
                "the group counts instances, every type must be one size"
            )
        elif architecture(extra) != architecture(primary):
            problems.append(
                f"{more_setting}: {extra} is {architecture(extra)}, {primary_setting} {primary} is "
                f"{architecture(primary)}: the nodes' one AMI serves one architecture"
            )
    return list(dict.fromkeys(problems))


def ami_architecture(ami_name: str) -> str | None:
    """The architecture an Amazon Linux image name says (`...-kernel-6.1-x86_64`, `...-arm64`); None
    for an AMI id or another name, which say nothing until AWS is asked."""
    for arch in ARCHITECTURES:
        if ami_name.endswith(f"-{arch}"):
            return arch
    return None


# Each EC2 architecture and the OCI platform of the images its nodes run.
ARCHITECTURES = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}


def ami_for(ami: str, arch: str) -> str:
    """The image a group of `arch` boots: Amazon publishes each Amazon Linux release for both
    architectures under one name but its last part (`...-kernel-6.1-x86_64`, `...-kernel-6.1-arm64`),
    so one pinned release serves x86 managers and Graviton workers alike. An AMI id or another name
    is one image, taken as given (the settings refuse it for groups of two architectures)."""
    named = ami_architecture(ami)
    return ami if named is None else ami.removesuffix(named) + arch


def node_platforms(instance_types: list[str]) -> list[str]:
    """The platforms the images are built for: those of every architecture the nodes run, in a fixed
    order (amd64 first), so the same types always give the same build."""
    found = {architecture(instance_type) for instance_type in instance_types}
    return [platform for arch, platform in ARCHITECTURES.items() if arch in found]


def image_platforms(settings) -> list[str]:
    """What the images are built for: on AWS every platform the nodes run (a multi-platform index when
    there are two); locally `imagePlatform`, or none given (the engine's own)."""
    if settings.platform == "aws":
        return node_platforms([settings.manager_instance_type, settings.worker_instance_type])
    return [settings.image_platform] if settings.image_platform else []
