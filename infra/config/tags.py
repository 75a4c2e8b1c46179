"""The tags every taggable AWS resource carries: project, stack, owner (and a Name)."""

from __future__ import annotations

from typing import Protocol

import pulumi

from infra.config.names import PROJECT, resource_name


class Owned(Protocol):
    """Any settings view that tags what it makes: it names the stack's owner."""

    @property
    def owner(self) -> str | None: ...


def tags(owned: Owned, name: str | None = None) -> dict[str, str]:
    base = {"project": PROJECT, "stack": pulumi.get_stack(), "owner": owned.owner or "unknown"}
    return base | ({"Name": resource_name(pulumi.get_stack(), name)} if name else {})
