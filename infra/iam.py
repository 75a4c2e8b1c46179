"""IAM documents for the swarm's roles, as pure functions of the stack's ARNs (tested directly).

Least privilege: managers form and heal the swarm; workers only join. Each statement
names the stack's own resources, except the calls AWS does not scope to a resource.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from restdemo_agent.contract import TLS_FILES, tls_parameter, token_parameter


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)


def allow(actions: list[str], resources: list[str] | str) -> dict:
    return {"Effect": "Allow", "Action": sorted(actions), "Resource": resources}


def assume_role(service: str) -> str:
    """Trust policy: only `service` (ec2.amazonaws.com, autoscaling.amazonaws.com) assumes the role."""
    return policy({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})


@dataclass(frozen=True)
class StackArns:
    """The ARNs a node role is scoped to, resolved."""

    region: str
    account: str
    table: str
    queue: str
    log_group: str
    ssm_prefix: str
    repositories: list[str]
    groups: list[str]

    def parameter(self, name: str) -> str:
        return f"arn:aws:ssm:{self.region}:{self.account}:parameter{name}"


def group_arn(region: str, account: str, group_name: str) -> str:
    return f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{group_name}"


def node_statements(arns: StackArns) -> list[dict]:
    """What every node does: pull images, ship logs, answer lifecycle notifications."""
    return [
        allow(["ecr:GetAuthorizationToken"], "*"),  # AWS allows no narrower resource
        allow(
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], arns.repositories
        ),
        allow(
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [arns.log_group, f"{arns.log_group}:*"],
        ),
        allow(
            ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
            [arns.queue],
        ),
        allow(
            [
                "autoscaling:CompleteLifecycleAction",
                "autoscaling:RecordLifecycleActionHeartbeat",
                "autoscaling:SetInstanceHealth",
            ],
            arns.groups,
        ),
        # Describe* calls cannot be scoped to resources.
        allow(
            ["autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeLifecycleHooks", "ec2:DescribeInstances"],
            "*",
        ),
    ]


def manager_statements(arns: StackArns) -> list[dict]:
    """Managers claim the primary record, publish both join tokens and read the Docker API's TLS material."""
    return [
        allow(["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], [arns.table]),
        allow(
            ["ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter"],
            [arns.parameter(token_parameter(arns.ssm_prefix, role)) for role in ("manager", "worker")],
        ),
        allow(["ssm:GetParameter"], [arns.parameter(tls_parameter(arns.ssm_prefix, name)) for name in TLS_FILES]),
        allow(["ecr:DescribeImages", "ecr:DescribeRepositories"], arns.repositories),
    ]


def worker_statements(arns: StackArns) -> list[dict]:
    """Workers read the primary record and the worker join token, nothing else of the swarm's state."""
    return [
        allow(["dynamodb:GetItem"], [arns.table]),
        allow(["ssm:GetParameter"], [arns.parameter(token_parameter(arns.ssm_prefix, "worker"))]),
    ]
