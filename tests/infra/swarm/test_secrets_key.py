"""infra/swarm/secrets_key.py: the stack's own KMS key for its SecureStrings, under mocks.

What the key's policy allows and denies is evaluated request by request in test_iam.py."""

from __future__ import annotations

import json

import pytest

from tests.support.aws_stack import AWS_STACKS
from tests.support.pulumi_program import ACCOUNT, kms_key_arn

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


def test_one_key_per_stack_rotated_yearly_and_slow_to_delete(run):
    key = run.named("aws:kms/key:Key", "secrets")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30  # the most time KMS allows to notice a deletion
    assert key.inputs["description"] == f"restdemo {run.stack}: swarm join tokens and Docker API TLS material"
    assert key.inputs["tags"]["Name"] == f"restdemo-{run.stack}-secrets"
    alias = run.one("aws:kms/alias:Alias").inputs
    assert alias == {
        "name": f"alias/restdemo-{run.stack}",
        "targetKeyId": kms_key_arn("eu-west-1", "secrets", run.stack).rpartition("/")[2],
    }


def test_the_policy_names_this_stacks_node_roles_and_the_account(run):
    policy = json.loads(run.named("aws:kms/key:Key", "secrets").inputs["policy"])
    principals = json.dumps(policy)
    assert f"arn:aws:iam::{ACCOUNT}:root" in principals
    for role in ("manager", "worker"):
        assert f"arn:aws:iam::{ACCOUNT}:role/restdemo-{run.stack}-eu-west-1-{role}" in principals
    other = next(s for s in AWS_STACKS if s != run.stack)
    assert f"restdemo-{other}-" not in principals


def test_the_swarms_securestrings_are_under_this_key(run):
    key_id = kms_key_arn("eu-west-1", "secrets", run.stack).rpartition("/")[2]
    assert {p.inputs["keyId"] for p in run.of_type("aws:ssm/parameter:Parameter")} == {key_id}
