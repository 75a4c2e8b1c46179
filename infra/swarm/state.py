"""SwarmState: what the node agents share: the state table (the primary manager's record),
the lifecycle queue the termination hooks notify, the role that lets Auto Scaling send to
it, and the stack's log group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config import names
from infra.config.iam_policy import allow, assume_role, policy
from infra.config.names import stack_prefix
from infra.config.settings import SettingsView
from infra.config.tags import tags


@dataclass(frozen=True)
class StateSettings(SettingsView):
    """What `SwarmState` reads of the settings: the drain hook's bound and the logs' retention."""

    owner: str | None
    drain_timeout: float
    log_retention_days: int


# A message is hidden from other agents this long after one receives it.
VISIBILITY_TIMEOUT_SECONDS = 60
# Long polling: an agent waits up to this long for a notification in one call (SQS allows 0-20).
RECEIVE_WAIT_SECONDS = 20


# The instance a shell opens on unless INSTANCE names one: a manager in service and healthy (the
# group's first listed may be one being replaced, or one whose engine is dead).
HEALTHY_MANAGER_QUERY = (
    "AutoScalingGroups[0].Instances[?LifecycleState=='InService' && HealthStatus=='Healthy'] | [0].InstanceId"
)


def manager_shell(region: str, document: str, group: str) -> str:
    """The `managerShell` output: a Session Manager shell through the stack's document, on
    `$INSTANCE` when set, else on an in-service, healthy manager of the group."""
    healthy = (
        f"aws autoscaling describe-auto-scaling-groups --region {region} --auto-scaling-group-names {group} "
        f'--query "{HEALTHY_MANAGER_QUERY}" --output text'
    )
    return f"aws ssm start-session --region {region} --document-name {document} --target ${{INSTANCE:-$({healthy})}}"


# The stack's log groups, by what writes them. Only the managers' agents write the swarm's group, the
# one CloudWatch Logs extracts metrics from (EMF): the swarm's alarms read those. Everything else goes
# to its role's groups in the Infrequent Access class, which extracts no metrics ("Log classes",
# CloudWatch Logs User Guide): a worker taken over can write no metric through its logs, and no
# line into a manager's logs or sessions.
SWARM_LOGS = "swarm"
LOG_GROUPS = (SWARM_LOGS, "managers", "workers", "sessions/managers", "sessions/workers")
INFREQUENT_ACCESS = "INFREQUENT_ACCESS"


def log_group_name(stack: str, which: str) -> str:
    """`/restdemo/<stack>` for the swarm's (the name the stack's one group had), else below it."""
    return names.log_group_name(stack, None if which == SWARM_LOGS else which)


def role_log_groups(role: str) -> list[str]:
    """The groups a node of `role` writes: its own containers' and journals', its sessions'; the
    managers' agents the swarm's too."""
    own = [f"{role}s", f"sessions/{role}s"]
    return [SWARM_LOGS, *own] if role == "manager" else own


def session_preferences(log_group: str) -> str:
    """A Standard_Stream session document's inputs: stream to CloudWatch Logs (encrypted at rest by
    CloudWatch; `cloudWatchEncryptionEnabled` would need the log group under a KMS key)."""
    return json.dumps(
        {
            "schemaVersion": "1.0",
            "description": "restdemo: shell sessions on swarm nodes, logged to the stack's log group",
            "sessionType": "Standard_Stream",
            "inputs": {
                "cloudWatchLogGroupName": log_group,
                "cloudWatchEncryptionEnabled": False,
                "cloudWatchStreamingEnabled": True,
                "idleSessionTimeout": "20",
                "runAsEnabled": False,
                "shellProfile": {"linux": "cd ~ && exec bash"},
            },
        },
        sort_keys=True,
    )


class SwarmState(pulumi.ComponentResource):
    """What the node agents share: the state table, the lifecycle queue and its hook role, the log groups.

    Takes:
        name: the prefix of every child's name (`<name>-table`, `<name>-lifecycle`, `<name>-logs`, ...).
        settings: its slice of the settings (tags, drain timeout, log retention).
        opts: resource options; `opts.parent` (the Swarm) is the named resources' former parent, in their aliases.

    Gives:
        table_name: the DynamoDB state table's name.
        table_arn: the state table's ARN.
        queue_url: the lifecycle queue's URL.
        queue_arn: the lifecycle queue's ARN.
        log_group_name: the swarm's log group (`/restdemo/<stack>`: the managers' agents, the metrics).
        log_group_arn: its ARN.
        log_group_names, log_group_arns: every log group, by what writes it (LOG_GROUPS).
        hook_role_arn: the role Auto Scaling assumes to send to the queue.
        session_document: the name of the managers' Session Manager document.
        worker_session_document: the workers' one.
        hook_ready: the hook role and its policy, for a lifecycle hook to depend on.
    """

    def __init__(self, name: str, *, settings: StateSettings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("restdemo:swarm:SwarmState", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        swarm = opts.parent if opts else None
        stack = pulumi.get_stack()
        prefix = stack_prefix(stack)
        table = self._table(name, settings, prefix, swarm)
        queue = self._lifecycle_queue(name, settings, prefix, swarm)
        log_groups = {which: self._log_group(name, settings, stack, which, swarm) for which in LOG_GROUPS}
        sessions = {
            role: self._session_document(name, settings, prefix, role, log_groups[f"sessions/{role}s"], child)
            for role in ("manager", "worker")
        }
        hook_role, hook_policy = self._hook_role(name, settings, queue, child)
        self.table_name, self.table_arn = table.name, table.arn
        self.queue_url, self.queue_arn = queue.url, queue.arn
        self.log_group_name, self.log_group_arn = log_groups[SWARM_LOGS].name, log_groups[SWARM_LOGS].arn
        self.log_group_names = {which: group.name for which, group in log_groups.items()}
        self.log_group_arns = {which: group.arn for which, group in log_groups.items()}
        self.hook_role_arn = hook_role.arn
        self.session_document = sessions["manager"].name
        self.worker_session_document = sessions["worker"].name
        # A hook whose role cannot yet send to the queue fails to create: wait for the policy too.
        self.hook_ready = [hook_role, hook_policy]
        self.register_outputs({"table_name": self.table_name, "queue_url": self.queue_url})

    def _moved(self, old_name: str, swarm: pulumi.Resource | None) -> pulumi.ResourceOptions:
        """Named resources were children of the Swarm as `old_name`: a stack that has them keeps them."""
        return pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=old_name, parent=swarm)])

    def _table(
        self, name: str, settings: StateSettings, prefix: str, swarm: pulumi.Resource | None
    ) -> aws.dynamodb.Table:
        return aws.dynamodb.Table(
            f"{name}-table",
            name=f"{prefix}-state",
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            attributes=[aws.dynamodb.TableAttributeArgs(name="pk", type="S")],
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            tags=tags(settings, "state"),
            opts=self._moved("swarm-state", swarm),
        )

    def _lifecycle_queue(
        self, name: str, settings: StateSettings, prefix: str, swarm: pulumi.Resource | None
    ) -> aws.sqs.Queue:
        return aws.sqs.Queue(
            f"{name}-lifecycle",
            name=f"{prefix}-lifecycle",
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS,
            # A notification outlives the longest drain it can ask for, by an hour.
            message_retention_seconds=int(settings.drain_timeout) + 3600,
            receive_wait_time_seconds=RECEIVE_WAIT_SECONDS,
            tags=tags(settings, "lifecycle"),
            opts=self._moved("swarm-lifecycle", swarm),
        )

    def _log_group(
        self, name: str, settings: StateSettings, stack: str, which: str, swarm: pulumi.Resource | None
    ) -> aws.cloudwatch.LogGroup:
        if which == SWARM_LOGS:  # the stack's one group as it was: same name, same resource
            return aws.cloudwatch.LogGroup(
                f"{name}-logs",
                name=log_group_name(stack, which),
                retention_in_days=settings.log_retention_days,
                tags=tags(settings, "logs"),
                opts=self._moved("swarm-logs", swarm),
            )
        label = which.replace("/", "-")
        return aws.cloudwatch.LogGroup(
            f"{name}-logs-{label}",
            name=log_group_name(stack, which),
            log_group_class=INFREQUENT_ACCESS,
            retention_in_days=settings.log_retention_days,
            tags=tags(settings, f"logs-{label}"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _session_document(
        self,
        name: str,
        settings: StateSettings,
        prefix: str,
        role: str,
        log_group: aws.cloudwatch.LogGroup,
        child: pulumi.ResourceOptions,
    ) -> aws.ssm.Document:
        # The stack's own Session Manager documents, one per role: a session opened with one
        # (managerShell) streams its input and output to its role's session log group. Not the
        # account-wide preferences (SSM-SessionManagerRunShell), which other stacks in the account share.
        suffix = "session" if role == "manager" else f"{role}-session"  # the managers' kept its name
        return aws.ssm.Document(
            f"{name}-session" if role == "manager" else f"{name}-{role}-session",
            name=f"{prefix}-{suffix}",
            document_type="Session",
            document_format="JSON",
            content=log_group.name.apply(session_preferences),
            tags=tags(settings, suffix),
            opts=child,
        )

    def _hook_role(
        self, name: str, settings: StateSettings, queue: aws.sqs.Queue, child: pulumi.ResourceOptions
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The role Auto Scaling assumes to notify the lifecycle queue, and its policy."""
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
        return hook_role, hook_policy
