"""IAM documents for the swarm's roles and its KMS key, as pure functions of the stack's ARNs
(tested directly, and evaluated request by request in tests/infra/swarm/test_iam.py).

Least privilege: each role holds exactly the actions its node calls (the agent, cloud-init,
the awslogs driver, the SSM agent for Session Manager), on the stack's own ARNs, except the
calls AWS does not scope to a resource. Managers form and heal the swarm; workers only
join: they cannot write the state table, read the lifecycle queue or end a lifecycle action.
The join tokens and TLS material are SecureStrings under the stack's own KMS key, whose
policy lets a node role decrypt only its own role's parameters (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.config.iam_policy import account_administers_the_key, allow, policy
from infra.config.names import regional_name
from restdemo_agent.contract import (
    LOAD_FIELDS,
    LOAD_PREFIX,
    NOTICE_FIELDS,
    NOTICE_PREFIX,
    PRIMARY_KEY,
    ROLES,
    TLS_FILES,
    WORKER_METRICS_NAMESPACE,
    tls_parameter,
    token_parameter,
)


@dataclass(frozen=True)
class StackArns:
    """The ARNs a node role is scoped to, resolved. The key's policy needs only the first four."""

    region: str
    account: str
    stack: str
    ssm_prefix: str
    table: str = ""
    queue: str = ""
    log_groups: dict[str, list[str]] = field(default_factory=dict)  # role -> the ARNs of the groups it writes
    repositories: list[str] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)  # role -> its auto scaling group's ARN
    key: str = ""  # the stack's KMS key
    kept_secrets: list[str] = field(default_factory=list)  # awsSecrets' ARNs: Secrets Manager's and SSM's
    web_target_groups: list[str] = field(default_factory=list)  # the load balancer's, which the workers join

    def parameter(self, name: str) -> str:
        return f"arn:aws:ssm:{self.region}:{self.account}:parameter{name}"

    def role(self, role: str) -> str:
        return f"arn:aws:iam::{self.account}:role/{node_role_name(self.stack, self.region, role)}"

    def tokens(self) -> list[str]:
        return [self.parameter(token_parameter(self.ssm_prefix, role)) for role in ROLES]

    def secrets(self, role: str) -> list[str]:
        """The SecureStrings a role may decrypt: workers their join token; managers both tokens and
        the Docker API's TLS material."""
        if role == "worker":
            return [self.parameter(token_parameter(self.ssm_prefix, "worker"))]
        return [*self.tokens(), *(self.parameter(tls_parameter(self.ssm_prefix, name)) for name in TLS_FILES)]

    @property
    def ssm_service(self) -> str:
        return f"ssm.{self.region}.amazonaws.com"

    def kept(self, service: str) -> list[str]:
        """awsSecrets' ARNs in one service: "secretsmanager" or "ssm"."""
        return [arn for arn in self.kept_secrets if arn.split(":")[2] == service]


def node_role_name(stack: str, region: str, role: str) -> str:
    """Named, so the KMS key's policy can name the role before the role exists; with the region,
    since IAM names are account-wide and a stack name may be used in two regions."""
    return regional_name(stack, region, role)


def group_arn(region: str, account: str, group_name: str) -> str:
    return f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{group_name}"


# Session Manager's own minimum on the instance: the SSM agent registers and opens its channels
# (Systems Manager User Guide, "Create a custom IAM role for Session Manager"; the broader
# AmazonSSMManagedInstanceCore also reads every parameter in the account). No resource-level scoping.
SESSION_MANAGER_ACTIONS = [
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]


def node_statements(arns: StackArns, role: str) -> list[dict]:
    """What every node does: pull images (dockerd, after cloud-init's ECR login), ship container,
    daemon and Session Manager logs to its role's log groups, and answer Session Manager."""
    return [
        allow(["ecr:GetAuthorizationToken"], "*"),  # AWS allows no narrower resource
        allow(
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], arns.repositories
        ),
        allow(
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [arn for group in arns.log_groups[role] for arn in (group, f"{group}:*")],
        ),
        # Session Manager looks its log group up before streaming a session to it; a list call.
        allow(["logs:DescribeLogGroups", *SESSION_MANAGER_ACTIONS], "*"),
    ]


def decrypt(arns: StackArns, actions: list[str], parameters: list[str]) -> dict:
    """KMS use of the stack's key, through Parameter Store only, for these parameters only: SSM
    encrypts a SecureString with the encryption context PARAMETER_ARN = the parameter's ARN."""
    statement = allow(actions, [arns.key])
    statement["Condition"] = {
        "StringEquals": {"kms:EncryptionContext:PARAMETER_ARN": parameters, "kms:ViaService": arns.ssm_service}
    }
    return statement


def kept_secret_statements(arns: StackArns) -> list[dict]:
    """The leader's agent reads awsSecrets (ADR 0029): exactly those secrets and parameters; and decrypts
    them under whatever key their owner chose, through the service that holds them, for them only
    (Secrets Manager decrypts with the encryption context SecretARN, Parameter Store with PARAMETER_ARN)."""
    statements = []
    for service, action, context in (
        ("secretsmanager", "secretsmanager:GetSecretValue", "SecretARN"),
        ("ssm", "ssm:GetParameter", "PARAMETER_ARN"),
    ):
        kept = arns.kept(service)
        if kept:
            statements.append(allow([action], kept))
            statements.append(
                {
                    **allow(["kms:Decrypt"], "*"),  # the key is the secret owner's, not the stack's
                    "Condition": {
                        "StringEquals": {
                            f"kms:EncryptionContext:{context}": kept,
                            "kms:ViaService": f"{service}.{arns.region}.amazonaws.com",
                        }
                    },
                }
            )
    return statements


def manager_statements(arns: StackArns) -> list[dict]:
    """Managers claim and confirm the primary record, publish both join tokens, read the Docker API's
    TLS material, drain and retire nodes from the lifecycle queue and let new members into service;
    the leader reads the secrets the stack keeps in AWS."""
    return [
        *kept_secret_statements(arns),
        # Scan: the workers' spot interruption notices and load records, read by the leader; DeleteItem of
        # those only.
        allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan"], [arns.table]),
        {
            **allow(["dynamodb:DeleteItem"], [arns.table]),
            "Condition": {
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{NOTICE_PREFIX}*", f"{LOAD_PREFIX}*"]}
            },
        },
        allow(["ssm:GetParameter"], arns.secrets("manager")),
        allow(["ssm:PutParameter"], arns.tokens()),
        decrypt(arns, ["kms:Decrypt"], arns.secrets("manager")),
        decrypt(arns, ["kms:Encrypt"], arns.tokens()),  # PutParameter of a standard SecureString
        allow(["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"], [arns.queue]),
        allow(
            ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
            sorted(arns.groups.values()),
        ),
        # `recover`: the lost managers' instances replaced (a node replaces itself by powering off).
        allow(["autoscaling:SetInstanceHealth"], [arns.groups["manager"]]),
        # A scaling workers' group: the workers running a service's last replica kept from scale-in.
        # And the workers' on-demand base raised while spot launches fail, put back after (spot_fallback).
        allow(["autoscaling:SetInstanceProtection", "autoscaling:UpdateAutoScalingGroup"], [arns.groups["worker"]]),
        # A worker EC2 reclaims (spot) leaves the load balancer before it goes.
        allow(["elasticloadbalancing:DeregisterTargets"], sorted(arns.web_target_groups)),
        # Describe* calls cannot be scoped to resources.
        allow(
            [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLifecycleHooks",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribePolicies",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeInstances",
            ],
            "*",
        ),
    ]


def worker_statements(arns: StackArns) -> list[dict]:
    """Workers read the primary record and the worker join token, and write one record: their own
    spot interruption notice. Nothing else of the swarm's state, queue or lifecycle actions, and no
    instance's health: a worker that must go powers itself off."""
    # DynamoDB's fine-grained access control (Developer Guide, "Using IAM policy conditions for
    # fine-grained access control"): GetItem and PutItem always carry the item's partition key.
    return [
        # The primary record only: not the notices, leases or recovery records.
        {
            **allow(["dynamodb:GetItem"], [arns.table]),
            "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [PRIMARY_KEY]}},
        },
        # The one key `notice#<its aws:userid>` (role-id:instance-id on an instance role's session), with
        # the notice's fields only: a worker can ask only for its own node to be drained
        # (restdemo_agent.interruption).
        {
            **allow(["dynamodb:PutItem"], [arns.table]),
            "Condition": {
                "ForAllValues:StringEquals": {
                    "dynamodb:LeadingKeys": [f"{NOTICE_PREFIX}${{aws:userid}}"],
                    "dynamodb:Attributes": list(NOTICE_FIELDS),
                }
            },
        },
        # And `load#<its aws:userid>`, its tasks' CPU, with the record's fields only: a worker can speak
        # only for its own tasks, and the leader counts no more of them than swarm runs there
        # (restdemo_agent.scaling).
        {
            **allow(["dynamodb:PutItem"], [arns.table]),
            "Condition": {
                "ForAllValues:StringEquals": {
                    "dynamodb:LeadingKeys": [f"{LOAD_PREFIX}${{aws:userid}}"],
                    "dynamodb:Attributes": list(LOAD_FIELDS),
                }
            },
        },
        # Its own metrics, in the workers' namespace only: its logs go to a group that extracts none.
        {
            **allow(["cloudwatch:PutMetricData"], "*"),
            "Condition": {"StringEquals": {"cloudwatch:namespace": WORKER_METRICS_NAMESPACE}},
        },
        allow(["ssm:GetParameter"], arns.secrets("worker")),
        decrypt(arns, ["kms:Decrypt"], arns.secrets("worker")),
        # The engine watchdog reads its own lifecycle state (a Describe call: no resource scoping).
        allow(["autoscaling:DescribeAutoScalingInstances"], "*"),
    ]


def role_statements(arns: StackArns, role: str) -> list[dict]:
    own = manager_statements(arns) if role == "manager" else worker_statements(arns)
    return [*node_statements(arns, role), *own]


def key_policy(arns: StackArns) -> str:
    """The stack's KMS key. The account administers it (IAM decides who else, e.g. the deployer
    writing the TLS material); whatever IAM the node roles are given, the key itself denies them
    any use but Parameter Store's, and any parameter but their own role's."""
    node_roles = [arns.role(role) for role in ROLES]
    deny_all = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}

    def only(role: str, parameters: list[str], sid: str, actions: str | list[str] = "kms:*") -> dict:
        return deny_all | {
            "Sid": sid,
            "Action": actions,
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": arns.role(role)},
                "StringNotEquals": {"kms:EncryptionContext:PARAMETER_ARN": parameters},
            },
        }

    return policy(
        account_administers_the_key(arns.account),
        deny_all
        | {
            "Sid": "NodesOnlyThroughParameterStore",
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": node_roles},
                "StringNotEquals": {"kms:ViaService": arns.ssm_service},
            },
        },
        only("worker", arns.secrets("worker"), "WorkersOnlyTheWorkerToken"),
        only("manager", arns.secrets("manager"), "ManagersOnlyTheSwarmSecrets"),
        only("manager", arns.tokens(), "ManagersEncryptOnlyTheJoinTokens", ["kms:Encrypt", "kms:ReEncrypt*"]),
    )
