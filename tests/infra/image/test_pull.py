"""infra/image/pull.py: the registry login swarm stores comes from a role that can only pull."""

from __future__ import annotations

import json

import pytest

from infra.image.registry import WRITES
from tests.support.aws_stack import AWS_STACKS, policy_of
from tests.support.iam_eval import Request, resource_allows
from tests.support.pulumi_program import ACCOUNT, PULL_PASSWORD, run_program

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS

TOKEN = "aws:ecr/getAuthorizationToken:getAuthorizationToken"
REGION = "eu-west-1"


def role_arn(run, name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/restdemo-{run.stack}-{REGION}-{name}"


def test_the_login_sent_with_the_service_is_the_pull_only_roles(run):
    """The docker provider's registry login comes from ECR through a provider that assumed the
    pull-only role; the deploy identity's own token goes to the image builds only."""
    puller = run.named("pulumi:providers:aws", "pull-provider").inputs
    (assumed,) = json.loads(puller["assumeRoles"])
    assert (assumed["roleArn"], assumed["sessionName"]) == (role_arn(run, "puller"), "restdemo-pull")
    assert "duration" not in assumed  # a chained session may last an hour at most
    through = [provider for token, provider in run.call_providers if token == TOKEN]
    assert len([p for p in through if "::pull-provider::" in p]) == 1
    (login,) = json.loads(run.one("pulumi:providers:docker").inputs["registryAuth"])
    assert (login["address"], login["username"], login["password"]) == (
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
        "AWS",
        PULL_PASSWORD,
    )
    assert "registryAuth" in run.one("pulumi:providers:docker").secret_paths


def repositories(run) -> dict[str, dict | None]:
    """Each repository's ARN and its policy."""
    policies = {
        r.name: json.loads(r.inputs["policy"]) for r in run.of_type("aws:ecr/repositoryPolicy:RepositoryPolicy")
    }
    return {
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{r.inputs['name']}": policies.get(r.name)
        for r in run.of_type("aws:ecr/repository:Repository")
    }


def test_swarm_pull_credentials_cannot_push(run):
    """Whatever login swarm stores: the pull-only role's (from `up`) or the managers' own (the leader's
    refresh), evaluated against their policies and the repositories': every write denied, pulls
    allowed. So is a node's, and so would be the deployer's too-broad one, by the repositories' policy."""
    puller = json.loads(run.named("aws:iam/rolePolicy:RolePolicy", "pull-role").inputs["policy"])
    identities = {
        role_arn(run, "puller"): puller,
        role_arn(run, "manager"): policy_of(run, "manager"),
        role_arn(run, "worker"): policy_of(run, "worker"),
    }
    found = repositories(run)
    assert len(found) == 2 and all(found.values())
    everything = {"Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}
    for repository, repository_policy in found.items():
        for principal, identity in identities.items():
            for action in WRITES:
                assert not resource_allows(repository_policy, [identity], Request(principal, action, repository))
                # Even if someone widened the role's own policy.
                assert not resource_allows(repository_policy, [everything], Request(principal, action, repository))
            assert resource_allows(repository_policy, [identity], Request(principal, "ecr:BatchGetImage", repository))
        # The deployer, who builds and pushes, is not held back.
        deployer = f"arn:aws:iam::{ACCOUNT}:role/deploy"
        assert resource_allows(repository_policy, [everything], Request(deployer, "ecr:PutImage", repository))
    # The login `up` sent before: the deploy identity's token, which can push.
    assert resource_allows(
        None, [everything], Request(f"arn:aws:iam::{ACCOUNT}:role/deploy", "ecr:PutImage", repository)
    )


def test_the_pull_only_role_is_assumed_by_the_account_only_and_pulls_the_stacks_repositories(run):
    role = run.named("aws:iam/role:Role", "pull-role").inputs
    assert json.loads(role["assumeRolePolicy"])["Statement"] == [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ]
    statements = json.loads(run.named("aws:iam/rolePolicy:RolePolicy", "pull-role").inputs["policy"])["Statement"]
    assert {a for s in statements for a in s["Action"]} == {
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    }
    assert sorted(next(s["Resource"] for s in statements if "ecr:BatchGetImage" in s["Action"])) == sorted(
        repositories(run)
    )


def test_the_local_stack_has_no_login_to_send():
    local = run_program("local")
    assert local.of_type("restdemo:image:PullCredentials") == []
    assert "registryAuth" not in local.one("pulumi:providers:docker").inputs
