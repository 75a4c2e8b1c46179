"""Every registered resource's identity (type, name, parent) per stack, against a golden list.

Pulumi keys a resource by its URN: project, stack, the parent chain's types, the type and the
name. Each entry records the type, the name, the parent (type and name) and the URN the mocks
give (which names only the immediate parent's type): entry by entry, the parent chain. Moving
code between modules must never change one, or `pulumi up` would delete and re-create the
resource (a new VPC, a new swarm). The lists in `golden/` were written from the program before
the layout changed. Regenerate them (`RESTDEMO_WRITE_GOLDEN=1`) to add new resources, or for a
deliberate change of identity, with an alias for each resource that keeps its old URN; the diff
must then show only the new entries.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.support.pulumi_program import REPO, STACKS, run_program

pytestmark = pytest.mark.unit

GOLDEN = REPO / "tests" / "infra" / "golden"


def identities(stack: str) -> list[dict[str, str]]:
    run = run_program(stack)
    by_urn = {r.urn: r for r in run.registered}

    def parent_of(resource) -> str:
        parent = by_urn.get(resource.parent)
        return f"{parent.type}::{parent.name}" if parent else ""

    return sorted(
        ({"type": r.type, "name": r.name, "parent": parent_of(r), "urn": r.urn} for r in run.registered),
        key=lambda entry: (entry["type"], entry["name"]),
    )


@pytest.mark.parametrize("stack", STACKS)
def test_no_resource_changes_identity(stack):
    found = identities(stack)
    path = GOLDEN / f"{stack}.json"
    if os.environ.get("RESTDEMO_WRITE_GOLDEN") == "1":
        path.write_text("[\n" + ",\n".join(json.dumps(entry) for entry in found) + "\n]\n")
    golden = json.loads(path.read_text())
    assert found == golden, "a resource changed its type, name or parent: its URN, and so its identity"
