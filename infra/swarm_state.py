"""SwarmState: what the node agents share: the state table (the primary manager's record),
the lifecycle queue the termination hooks notify, the role that lets Auto Scaling send to
it, and the stack's log group.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.iam import allow, assume_role, policy
from infra.settings import Settings
from infra.tags import tags

# A message is hidden from other agents this long after one receives it.
VISIBILITY_TIMEOUT_SECONDS = 60
# Long polling: an agent waits up to this long for a notification in one call (SQS allows 0-20).
RECEIVE_WAIT_SECONDS = 20


class SwarmState(pulumi.ComponentResource):
    """Outputs: `table_name`, `table_arn`, `queue_url`, `queue_arn`, `log_group_name`, `log_group_arn`,
    `hook_role_arn`."""

    def __init__(self, name: str, *, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("restdemo:swarm:SwarmState", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        swarm = opts.parent if opts else None

        def moved(old_name: str) -> pulumi.ResourceOptions:
            """Named resources were children of the Swarm as `old_name`: a stack that has them keeps them."""
            return pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=old_name, parent=swarm)])

        stack = pulumi.get_stack()
        prefix = f"restdemo-{stack}"
        table = aws.dynamodb.Table(
            f"{name}-table",
            name=f"{prefix}-state",
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            attributes=[aws.dynamodb.TableAttributeArgs(name="pk", type="S")],
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            tags=tags(settings, "state"),
            opts=moved("swarm-state"),
        )
        queue = aws.sqs.Queue(
            f"{name}-lifecycle",
            name=f"{prefix}-lifecycle",
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS,
            # A notification outlives the longest drain it can ask for, by an hour.
            message_retention_seconds=int(settings.drain_timeout) + 3600,
            receive_wait_time_seconds=RECEIVE_WAIT_SECONDS,
            tags=tags(settings, "lifecycle"),
            opts=moved("swarm-lifecycle"),
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/restdemo/{stack}",
            retention_in_days=settings.log_retention_days,
            tags=tags(settings, "logs"),
            opts=moved("swarm-logs"),
        )
        hook_role = aws.iam.Role(
            f"{name}-lifecycle-hook",
            assume_role_policy=assume_role("autoscaling.amazonaws.com"),
            tags=tags(settings, "lifecycle-hook"),
            opts=child,
        )
        hook_policy = aws.iam.RolePolicy(
            f"{name}-lifecycle-hook",
            role=hook_role.id,
            policy=queue.arn.apply(lambda arn: policy(allow(["sqs:GetQueueUrl", "sqs:SendMessage"], [arn]))),
            opts=child,
        )
        self.table_name, self.table_arn = table.name, table.arn
        self.queue_url, self.queue_arn = queue.url, queue.arn
        self.log_group_name, self.log_group_arn = log_group.name, log_group.arn
        self.hook_role_arn = hook_role.arn
        # A hook whose role cannot yet send to the queue fails to create: wait for the policy too.
        self.hook_ready = [hook_role, hook_policy]
        self.register_outputs({"table_name": self.table_name, "queue_url": self.queue_url})
