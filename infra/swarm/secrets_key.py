"""SecretsKey: the stack's own KMS key for its SecureStrings (the swarm's join tokens, the
Docker API's TLS material), so that no other principal of the account decrypts them through
the account-wide `aws/ssm` key. Its policy (`infra.swarm.iam.key_policy`) names the node roles by
ARN, so it is created before them; the node roles' own IAM statements match it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config.settings import SettingsView
from infra.config.tags import tags
from infra.swarm.iam import StackArns, key_policy
from restdemo_agent.contract import secrets_key_alias, ssm_prefix


@dataclass(frozen=True)
class SecretsKeySettings(SettingsView):
    """What `SecretsKey` reads of the settings: the key's region."""

    owner: str | None
    aws_region: str | None


# KMS waits this long before a scheduled deletion takes effect (7-30); the most time to notice.
DELETION_WINDOW_DAYS = 30


class SecretsKey(pulumi.ComponentResource):
    """The stack's own KMS key for its SecureStrings, and its alias.

    Takes:
        name: the key's and the alias's resource name.
        settings: its slice of the settings (region, tags).
        opts: resource options.

    Gives:
        arn: the key's ARN.
        key_id: the key's id.
        alias: the alias's name (`alias/restdemo-<stack>`).
    """

    def __init__(self, name: str, *, settings: SecretsKeySettings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("restdemo:swarm:SecretsKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = pulumi.get_stack()
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        scope = identity.account_id.apply(
            lambda account: StackArns(
                region=settings.aws_region, account=account, stack=stack, ssm_prefix=ssm_prefix(stack)
            )
        )
        key = aws.kms.Key(
            name,
            description=f"restdemo {stack}: swarm join tokens and Docker API TLS material",
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=scope.apply(key_policy),
            tags=tags(settings, "secrets"),
            opts=child,
        )
        alias = aws.kms.Alias(name, name=secrets_key_alias(stack), target_key_id=key.key_id, opts=child)
        self.arn, self.key_id, self.alias = key.arn, key.key_id, alias.name
        self.register_outputs({"arn": self.arn})
