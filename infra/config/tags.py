"""The tags every taggable AWS resource carries: project, stack, owner (and a Name)."""

from __future__ import annotations

import pulumi

from infra.config.names import PROJECT, resource_name
from infra.config.settings import Settings


def tags(settings: Settings, name: str | None = None) -> dict[str, str]:
    base = {"project": PROJECT, "stack": pulumi.get_stack(), "owner": settings.owner or "unknown"}
    return base | ({"Name": resource_name(pulumi.get_stack(), name)} if name else {})
