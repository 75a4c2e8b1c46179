"""PullCredentials: the registry login `pulumi up` hands swarm with the service, from a role that can
only pull.

Swarm stores the login sent with a service update (`X-Registry-Auth`) and gives it to every node
that runs a replica. The deploy identity's own ECR token can push, so it must never be that login;
and none at all is no option: the docker provider sends an empty login (`e30=`, base64 of `{}`)
when it has none, and swarm replaces the stored one with it (kreuzwerker/terraform-provider-docker
`retrieveAndMarshalAuth`; moby `daemon/cluster/services.go` UpdateService). So the program assumes a
role of its own that may only pull the stack's repositories, and asks ECR for that role's token.
The leader's agent replaces it with the managers' own (pull-only too) once the update is done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from infra.config.iam_policy import account_trusts, allow, policy
from infra.config.names import regional_name
from infra.config.settings import SettingsView
from infra.config.tags import tags


@dataclass(frozen=True)
class PullSettings(SettingsView):
    """What `PullCredentials` reads of the settings: the region of the pull-only role."""

    owner: str | None
    aws_region: str | None


# What pulling an image takes (ECR User Guide, "Private repository policy examples": pull).
PULL = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


def puller_role_name(stack: str, region: str) -> str:
    """Named, so the repositories' policies can keep it from writing before it exists."""
    return regional_name(stack, region, "puller")


def puller_policy(repository_arns: list[str]) -> str:
    return policy(allow(["ecr:GetAuthorizationToken"], "*"), allow(PULL, sorted(repository_arns)))


class PullCredentials(pulumi.ComponentResource):
    """A pull-only role for the stack's repositories, and the ECR login it gets, for swarm to store.

    Takes:
        name: the prefix of every child's name.
        settings: its slice of the settings (its region, tags).
        repository_arns: the repositories the role may pull from.
        server: the registry's address the login is for.
        opts: resource options.

    Gives:
        role_arn: the pull-only role.
        registry_auth: the docker provider's `registry_auth` entry: the role's ECR login (its password secret),
            valid while the role's session is (an hour).
    """

    def __init__(
        self,
        name: str,
        *,
        settings: PullSettings,
        repository_arns: list[pulumi.Input[str]],
        server: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:image:PullCredentials", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = pulumi.get_stack()
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        role = aws.iam.Role(
            f"{name}-role",
            name=puller_role_name(stack, settings.aws_region),
            description=f"restdemo {stack}: pulls the stack's images, for swarm (never pushes)",
            # The account decides through IAM who may assume it: the deployer, when it runs `up`.
            assume_role_policy=account.apply(lambda account_id: json.dumps(account_trusts(account_id))),
            tags=tags(settings, "puller"),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-role",
            role=role.id,
            policy=pulumi.Output.all(*repository_arns).apply(lambda arns: puller_policy(list(arns))),
            opts=child,
        )
        provider = aws.Provider(
            f"{name}-provider",
            region=settings.aws_region,
            # The default hour: a deploy role (itself assumed, from CI) may chain to a role for an hour at
            # most. The login lasts no longer than the session; the leader replaces it after the update.
            assume_roles=[aws.ProviderAssumeRoleArgs(role_arn=role.arn, session_name="restdemo-pull")],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        token = aws.ecr.get_authorization_token_output(opts=pulumi.InvokeOutputOptions(parent=self, provider=provider))
        self.role_arn = role.arn
        self.registry_auth = docker.ProviderRegistryAuthArgs(
            address=server, username=token.user_name, password=pulumi.Output.secret(token.password)
        )
        self.register_outputs({"role_arn": self.role_arn})
