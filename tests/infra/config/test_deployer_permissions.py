"""infra/config/deployer_permissions.py: the deployer's IAM policy, derived from what the program
makes on every stack with every optional feature, and the committed document it writes."""

from __future__ import annotations

import json
import re

import pytest

from infra.config.deployer_permissions import PERMISSIONS, POLICY_FILE, main, policy_document, rendered
from tests.support.stack_variants import STACK_VARIANTS, variant_run

pytestmark = pytest.mark.unit

# IAM and AWS STS quotas: a managed policy's document is at most 6,144 characters, white space not counted.
MANAGED_POLICY_MAX_CHARACTERS = 6144
# The Service Authorization Reference's action names: service prefix, colon, an action (or a wildcard
# before or after it).
ACTION = re.compile(r"[a-z0-9-]+:\*?[A-Za-z]+\*?")


def aws_types_and_calls() -> set[str]:
    """Every AWS resource type the program registers and every AWS data source it reads."""
    found: set[str] = set()
    for stack, variant in STACK_VARIANTS:
        run = variant_run(stack, variant)
        found |= {r.type for r in run.registered if r.custom and r.type.startswith("aws:")}
        found |= {token for token, _ in run.calls if token.startswith("aws:")}
    return found


def uncovered(made: set[str], permissions: dict[str, tuple[str, ...]]) -> tuple[list[str], list[str]]:
    """(types made and not listed, types listed and no longer made)."""
    return sorted(made - permissions.keys()), sorted(permissions.keys() - made)


def test_every_type_the_program_makes_on_any_stack_is_listed_and_nothing_else():
    assert uncovered(aws_types_and_calls(), PERMISSIONS) == ([], [])


def test_a_type_left_out_is_caught():
    made = aws_types_and_calls()
    fewer = {k: v for k, v in PERMISSIONS.items() if k != "aws:sqs/queue:Queue"}
    assert uncovered(made, fewer) == (["aws:sqs/queue:Queue"], [])
    assert uncovered(made - {"aws:route53/record:Record"}, PERMISSIONS) == ([], ["aws:route53/record:Record"])


def test_the_committed_document_is_what_make_docs_writes():
    assert POLICY_FILE.read_text() == rendered()
    assert main(["--check"]) == 0


def test_the_document_fits_a_managed_policy_and_names_real_actions():
    document = policy_document()
    assert len(re.sub(r"\s", "", json.dumps(document))) <= MANAGED_POLICY_MAX_CHARACTERS
    actions = [
        a
        for statement in document["Statement"]
        for a in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    ]
    assert [a for a in actions if not ACTION.fullmatch(a)] == []
    assert "iam:PassRole" in actions and "ecr:BatchDeleteImage" in actions


def test_pass_role_goes_only_to_ec2_and_auto_scaling():
    statement = next(s for s in policy_document()["Statement"] if s["Action"] == "iam:PassRole")
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "autoscaling.amazonaws.com"]}
    }
    everything_else = policy_document()["Statement"][0]["Action"]
    assert "iam:PassRole" not in everything_else


def test_reads_are_collapsed_and_writes_are_not():
    actions = policy_document()["Statement"][0]["Action"]
    assert {"ec2:Describe*", "iam:Get*", "ssm:Get*"} <= set(actions)
    assert "ec2:RunInstances" in actions and not any(a.endswith("*") and ":Create" in a for a in actions)
