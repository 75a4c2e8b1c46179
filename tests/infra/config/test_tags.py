"""infra/config/tags.py: every taggable AWS resource says its project, stack and owner."""

from __future__ import annotations

import sys

import pytest

from tests.support.aws_stack import AWS_STACKS, GROUP
from tests.support.pulumi_program import REPO

sys.path.insert(0, str(REPO / "policy"))
from rules import takes_tags  # noqa: E402

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


def test_every_taggable_aws_resource_carries_project_stack_owner(run):
    """Taggable as the aws provider's schema says (the policy pack's rule reads it the same way)."""
    for resource in run.registered:
        if not resource.type.startswith("aws:") or not takes_tags(resource.type):
            continue
        if resource.type == GROUP:
            found = {t["key"]: t["value"] for t in resource.inputs["tags"]}
        else:
            found = resource.inputs.get("tags", {})
        assert {k: found.get(k) for k in ("project", "stack", "owner")} == {
            "project": "restdemo",
            "stack": run.stack,
            "owner": "platform-team",
        }, resource.type
