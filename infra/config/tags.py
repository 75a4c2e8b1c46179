"""The tags every taggable AWS resource carries: project, stack, owner (and a Name)."""

from __future__ import annotations

import pulumi

from infra.config.settings import Settings


def tags(settings: Settings, name: str | None = None) -> dict[str, str]:
    base = {"project": "restdemo", "stack": pulumi.get_stack(), "owner": settings.owner or "unknown"}
    return base | ({"Name": f"restdemo-{pulumi.get_stack()}-{name}"} if name else {})
