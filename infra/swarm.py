"""Swarm: the Docker-for-AWS-style cluster: manager and worker auto scaling groups, the
state the node agent shares (DynamoDB table, SSM parameters, lifecycle queue), logs,
least-privilege instance roles, and cloud-init that starts the agent on every node.

The groups use EC2 health checks only: a bad deploy or a lost quorum must never make
AWS replace nodes. The managers' group waits until that many managers answer the
agent's readiness check behind the admin NLB, so a first `pulumi up` deploys the
service only once the swarm exists. A manager instance refresh launches the new
manager before the old one leaves, so quorum never drops.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.admin_endpoint import AdminEndpoint
from infra.cloud_init import DOCKER_TLS_PORT, READINESS_PORT, NodeConfig, render
from infra.firewall import allow_in, allow_out, security_group
from infra.load_balancer import LoadBalancer
from infra.network import Network
from infra.service import CONTAINER_PORT
from infra.settings import Settings
from infra.tags import tags

AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
SSM_MANAGED_POLICY = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
SWARM_PORTS = [("tcp", 7946), ("udp", 7946), ("udp", 4789)]  # gossip, and the overlay's VXLAN
SWARM_MANAGEMENT_PORT = 2377


def ssm_prefix(stack: str) -> str:
    """Where the stack's join tokens and TLS material live in SSM Parameter Store."""
    return f"/restdemo/{stack}"


def max_healthy_percentage(size: int) -> int:
    """Room for exactly one extra instance: the replacement starts before the old one leaves."""
    return min(200, 100 + math.ceil(100 / max(size, 1)))


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)


def allow(actions: list[str], resources: list[str] | str) -> dict:
    return {"Effect": "Allow", "Action": sorted(actions), "Resource": resources}


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

    def parameter(self, path: str) -> str:
        return f"arn:aws:ssm:{self.region}:{self.account}:parameter{self.ssm_prefix}/{path}"


def node_policy(role: str, arns: StackArns) -> str:
    """Least privilege: managers initialise and heal the swarm; workers only join and drain."""
    statements = [
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
        allow(["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"], arns.groups),
        allow(["ec2:DescribeInstances"], "*"),  # Describe* calls cannot be scoped to resources
    ]
    if role == "manager":
        statements += [
            allow(["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], [arns.table]),
            allow(["ssm:GetParameter", "ssm:GetParameters", "ssm:PutParameter"], [arns.parameter("join-token/*")]),
            allow(["ssm:GetParameter"], [arns.parameter("tls/*")]),
            allow(["ecr:DescribeImages", "ecr:DescribeRepositories"], arns.repositories),
        ]
    else:
        statements += [
            allow(["dynamodb:GetItem"], [arns.table]),
            allow(["ssm:GetParameter"], [arns.parameter("join-token/worker")]),
        ]
    return policy(*statements)


def assume_role(service: str) -> str:
    return policy({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})


class Swarm(pulumi.ComponentResource):
    """Outputs: `managers`, `workers` (the groups), `log_group_name`, `state_table_name`, `queue_url`,
    `ssm_prefix`, `node_security_group_id`."""

    def __init__(
        self,
        name: str,
        *,
        settings: Settings,
        network: Network,
        web: LoadBalancer,
        admin: AdminEndpoint,
        registry_server: pulumi.Input[str],
        repository_arns: list[pulumi.Input[str]],
        agent_image: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:swarm:Swarm", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = pulumi.get_stack()
        prefix = f"restdemo-{stack}"
        self.ssm_prefix = ssm_prefix(stack)

        table = aws.dynamodb.Table(
            f"{name}-state",
            name=f"{prefix}-state",
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            attributes=[aws.dynamodb.TableAttributeArgs(name="pk", type="S")],
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
            tags=tags(settings, "state"),
            opts=child,
        )
        queue = aws.sqs.Queue(
            f"{name}-lifecycle",
            name=f"{prefix}-lifecycle",
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=60,
            message_retention_seconds=int(settings.drain_timeout) + 3600,
            receive_wait_time_seconds=20,
            tags=tags(settings, "lifecycle"),
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/restdemo/{stack}",
            retention_in_days=settings.log_retention_days,
            tags=tags(settings, "logs"),
            opts=child,
        )
        self.security_groups = self._security_groups(name, settings, network, web.security_group_id, child)

        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        group_names = {role: f"{prefix}-{role}s" for role in ("manager", "worker")}
        arns = pulumi.Output.all(identity.account_id, table.arn, queue.arn, log_group.arn, *repository_arns).apply(
            lambda v: StackArns(
                region=settings.aws_region,
                account=v[0],
                table=v[1],
                queue=v[2],
                log_group=v[3],
                ssm_prefix=self.ssm_prefix,
                repositories=list(v[4:]),
                groups=[
                    f"arn:aws:autoscaling:{settings.aws_region}:{v[0]}:autoScalingGroup:*:autoScalingGroupName/{g}"
                    for g in group_names.values()
                ],
            )
        )
        hook_role = aws.iam.Role(
            f"{name}-lifecycle-hook",
            assume_role_policy=assume_role("autoscaling.amazonaws.com"),
            tags=tags(settings, "lifecycle-hook"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-lifecycle-hook",
            role=hook_role.id,
            policy=queue.arn.apply(lambda arn: policy(allow(["sqs:GetQueueUrl", "sqs:SendMessage"], [arn]))),
            opts=child,
        )
        ami = aws.ssm.get_parameter_output(name=AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self))

        groups = {}
        for role in ("manager", "worker"):
            node = pulumi.Output.all(queue.url, log_group.name, table.name, registry_server, agent_image).apply(
                lambda v, role=role: NodeConfig(
                    role=role,
                    stack=stack,
                    region=settings.aws_region,
                    state_table=v[2],
                    ssm_prefix=self.ssm_prefix,
                    lifecycle_queue_url=v[0],
                    log_group=v[1],
                    registry=v[3],
                    agent_image=v[4],
                    tls_parameters=admin.tls_parameters if role == "manager" else None,
                    prune_interval_seconds=int(settings.prune_interval),
                )
            )
            groups[role] = self._node_group(
                name,
                role,
                settings,
                group_names[role],
                node,
                arns,
                ami.value,
                network.node_subnet_ids,
                queue.arn,
                hook_role.arn,
                web.target_group_arn,
                admin,
                child,
            )
        self.managers, self.workers = groups["manager"], groups["worker"]
        # Every node serves the routing mesh; the managers join the ALB's group only after they
        # have been waited for on the admin NLB (whose check needs no service yet).
        aws.autoscaling.Attachment(
            f"{name}-managers-alb",
            autoscaling_group_name=self.managers.name,
            lb_target_group_arn=web.target_group_arn,
            opts=child,
        )
        self.log_group_name = log_group.name
        self.state_table_name = table.name
        self.queue_url = queue.url
        self.node_security_group_id = self.security_groups["node"].id
        self.register_outputs({"log_group_name": self.log_group_name, "managers": self.managers.name})

    def _security_groups(self, name, settings, network, alb_security_group_id, child):
        node = security_group(f"{name}-nodes", settings, network.vpc_id, "restdemo swarm nodes", child)
        manager = security_group(f"{name}-managers", settings, network.vpc_id, "restdemo swarm managers", child)

        def rule(suffix: str, group, port: int, description: str, **source):
            allow_in(f"{name}-{suffix}", group, port, description, child, **source)

        for protocol, port in SWARM_PORTS:
            rule(
                f"swarm-{protocol}-{port}",
                node,
                port,
                "swarm, between nodes only",
                protocol=protocol,
                source_group_id=node.id,
            )
        rule(
            "manager-2377", manager, SWARM_MANAGEMENT_PORT, "swarm management, from nodes only", source_group_id=node.id
        )
        rule(
            "mesh-8000",
            node,
            CONTAINER_PORT,
            "the routing mesh, from the ALB only",
            source_group_id=alb_security_group_id,
        )
        rule("readiness", node, READINESS_PORT, "the agent's readiness check, from the VPC only", cidr=network.vpc_cidr)
        for index, cidr in enumerate(settings.admin_cidrs):
            rule(
                f"docker-api-{index}", manager, DOCKER_TLS_PORT, "Docker API (mutual TLS), admin CIDRs", cidr=str(cidr)
            )
        for group, label in ((node, "nodes"), (manager, "managers")):
            allow_out(f"{name}-{label}-egress", group, "0.0.0.0/0", "AWS APIs, ECR, package mirrors", child)
        return {"node": node, "manager": manager}

    def _node_group(
        self,
        name,
        role,
        settings,
        group_name,
        node,
        arns,
        ami_id,
        subnet_ids,
        queue_arn,
        hook_role_arn,
        alb_target_group_arn,
        admin,
        child,
    ) -> aws.autoscaling.Group:
        instance_role = aws.iam.Role(
            f"{name}-{role}",
            assume_role_policy=assume_role("ec2.amazonaws.com"),
            tags=tags(settings, role),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-{role}", role=instance_role.id, policy=arns.apply(lambda a: node_policy(role, a)), opts=child
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-{role}-ssm", role=instance_role.name, policy_arn=SSM_MANAGED_POLICY, opts=child
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-{role}", role=instance_role.name, tags=tags(settings, role), opts=child
        )
        security_groups = [self.security_groups["node"].id]
        if role == "manager":
            security_groups.append(self.security_groups["manager"].id)
        size = settings.manager_count if role == "manager" else settings.worker_count
        template = aws.ec2.LaunchTemplate(
            f"{name}-{role}",
            image_id=ami_id,
            instance_type=settings.manager_instance_type if role == "manager" else settings.worker_instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            vpc_security_group_ids=security_groups,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=settings.node_volume_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            user_data=node.apply(lambda config: base64.b64encode(render(config).encode()).decode()),
            update_default_version=True,
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags(settings, role))
                for kind in ("instance", "volume")
            ],
            tags=tags(settings, role),
            opts=child,
        )
        group_options = pulumi.ResourceOptions(parent=self, depends_on=admin.parameters if role == "manager" else [])
        return aws.autoscaling.Group(
            f"{name}-{role}s",
            name=group_name,
            min_size=size,
            max_size=size,
            desired_capacity=size,
            vpc_zone_identifiers=subnet_ids,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=template.id, version=template.latest_version),
            health_check_type="EC2",
            health_check_grace_period=300,
            target_group_arns=[admin.target_group_arn] if role == "manager" else [alb_target_group_arn],
            wait_for_elb_capacity=size if role == "manager" else None,
            wait_for_capacity_timeout="20m",
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling",
                preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                    min_healthy_percentage=100,
                    max_healthy_percentage=max_healthy_percentage(size),
                    instance_warmup="300",
                    skip_matching=True,
                ),
            ),
            initial_lifecycle_hooks=[
                aws.autoscaling.GroupInitialLifecycleHookArgs(
                    name="drain",
                    lifecycle_transition=TERMINATING,
                    heartbeat_timeout=int(settings.drain_timeout),
                    default_result="CONTINUE",
                    notification_target_arn=queue_arn,
                    role_arn=hook_role_arn,
                    notification_metadata=json.dumps({"role": role, "stack": pulumi.get_stack()}),
                )
            ],
            termination_policies=["OldestLaunchTemplate", "OldestInstance"],
            tags=[
                aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=False)
                for k, v in tags(settings, f"{role}s").items()
            ],
            opts=group_options,
        )
