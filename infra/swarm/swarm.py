"""Swarm: the Docker-for-AWS-style cluster: a manager and a worker `NodeGroup`, the state
the node agents share (`SwarmState`), the nodes' security groups, and cloud-init that
starts the agent on every node.

The groups use EC2 health checks only: a bad deploy or a lost quorum must never make
AWS replace nodes. The managers' group waits, when it is created, until that many
managers answer the agent's readiness check behind the admin NLB, so a first `pulumi up`
deploys the service only once the swarm exists; then it joins the web target group too.
An instance refresh launches the new node before the old one leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws

from infra.admin.endpoint import AdminEndpoint
from infra.config.capacity import ami_for, architecture, instance_types, uses_mixed_instances, workers_scale
from infra.config.iam_policy import policy
from infra.config.settings import SettingsView
from infra.network.firewall import allow_in, allow_out, security_group
from infra.network.load_balancer import LoadBalancer
from infra.network.network import Network
from infra.swarm.cloud_init import NodeConfig, render
from infra.swarm.iam import StackArns, group_arn, role_statements
from infra.swarm.node_group import LifecycleTarget, NodeGroup, NodeGroupSettings, NodeGroupSpec, Purchase, Scaling
from infra.swarm.secrets_key import SecretsKey
from infra.swarm.state import StateSettings, SwarmState, role_log_groups
from restdemo_agent.contract import (
    DOCKER_TLS_PORT,
    ESP_PROTOCOL,
    READINESS_PORT,
    SWARM_MANAGEMENT_PORT,
    SWARM_NODE_PORTS,
    AgentEnvironment,
    group_name,
    ssm_prefix,
)


@dataclass(frozen=True)
class SwarmSettings(SettingsView):
    """What `Swarm` reads of the settings: the nodes, their agent and who may reach the managers."""

    owner: str | None
    aws_region: str | None
    admin_cidrs: list[IPv4Network]
    manager_count: int
    worker_count: int
    manager_instance_type: str
    worker_instance_type: str
    worker_instance_types: list[str]
    worker_on_demand_base: int
    worker_on_demand_percent: int
    worker_max_count: int
    worker_reserved_target: int
    node_ami: str | None
    node_volume_gb: int
    drain_timeout: float
    prune_interval: float
    engine_dead_after: float
    log_retention_days: int
    aws_secrets: list[str]


AMAZON = "amazon"


def worker_purchase(settings: SwarmSettings) -> Purchase | None:
    """The workers' types, on-demand base and share; None for one on-demand type (a plain template)."""
    if not uses_mixed_instances(settings.worker_instance_types, settings.worker_on_demand_percent):
        return None
    return Purchase(
        instance_types=instance_types(settings.worker_instance_type, settings.worker_instance_types),
        on_demand_base=settings.worker_on_demand_base,
        on_demand_percent=settings.worker_on_demand_percent,
    )


def node_amis(settings: SwarmSettings, parent: pulumi.Resource) -> dict[str, pulumi.Input[str]]:
    """Each role's AMI from the stack's pinned one: an id as given, or the named release's image for
    the role's architecture (x86 managers, Graviton workers), resolved among Amazon's own images,
    once per architecture."""
    roles = {"manager": settings.manager_instance_type, "worker": settings.worker_instance_type}
    if settings.node_ami.startswith("ami-"):
        return dict.fromkeys(roles, settings.node_ami)
    resolved = {
        arch: aws.ec2.get_ami_output(
            owners=[AMAZON],
            filters=[
                aws.ec2.GetAmiFilterArgs(name="name", values=[ami_for(settings.node_ami, arch)]),
                aws.ec2.GetAmiFilterArgs(name="architecture", values=[arch]),
            ],
            most_recent=True,
            # Amazon deprecates public AMIs (two years by default); a pinned one must keep resolving.
            include_deprecated=True,
            opts=pulumi.InvokeOutputOptions(parent=parent),
        ).id
        for arch in dict.fromkeys(architecture(instance_type) for instance_type in roles.values())
    }
    return {role: resolved[architecture(instance_type)] for role, instance_type in roles.items()}


class Swarm(pulumi.ComponentResource):
    """The cluster: the shared state, the nodes' security groups, and a manager and a worker NodeGroup.

    Takes:
        name: the prefix of every child's name (`<name>-state`, `<name>-nodes`, `<name>-managers`, ...).
        settings: its slice of the settings (region, node counts and types, AMI, drain timeout, admin CIDRs...).
        network: the VPC and subnets the nodes run in, and the egress they boot needing.
        web: the public ALB; its security group reaches the routing mesh, its target group holds the nodes.
        admin: the Docker API endpoint: its target group, TLS parameters (and their SSM resources), fingerprints.
        secrets_key: the stack's KMS key for the SecureStrings the nodes read and write.
        registry_server: the image registry's host, which the nodes log in to.
        repository_arns: the ECR repositories the nodes may pull from.
        agent_image: the node agent's image reference.
        opts: resource options.

    Gives:
        ssm_prefix: the SSM path of the stack's join tokens and TLS material (`/restdemo/<stack>`).
        managers: the managers' NodeGroup.
        workers: the workers' NodeGroup.
        log_group_name: the stack's CloudWatch log group.
        session_document: the name of the stack's Session Manager document (sessions logged to that group).
        state_table_name: the DynamoDB table the agents share.
        queue_url: the lifecycle queue the termination hooks notify.
        node_security_group_id: the security group every node is in.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: SwarmSettings,
        network: Network,
        web: LoadBalancer,
        admin: AdminEndpoint,
        secrets_key: SecretsKey,
        registry_server: pulumi.Input[str],
        repository_arns: list[pulumi.Input[str]],
        agent_image: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:swarm:Swarm", name, None, opts)
        stack = pulumi.get_stack()
        self.ssm_prefix = ssm_prefix(stack)
        state = SwarmState(
            f"{name}-state", settings=StateSettings.of(settings), opts=pulumi.ResourceOptions(parent=self)
        )
        groups = self._security_groups(
            name, settings, network, web.security_group_id, admin.security_group_id, web.ports
        )
        group_names = {role: group_name(stack, role) for role in ("manager", "worker")}
        arns = self._stack_arns(settings, state, secrets_key, repository_arns, group_names, web.target_group_arns)
        amis = node_amis(settings, self)
        user_data = self._user_data(settings, state, admin, secrets_key, registry_server, agent_image, group_names)
        specs = self._node_specs(settings, network, web, admin, state, groups, group_names, arns, amis, user_data)
        self.managers, self.workers = self._node_groups(name, settings, state, specs)
        self.log_group_name = state.log_group_name
        self.session_document = state.session_document
        self.state_table_name = state.table_name
        self.queue_url = state.queue_url
        self.node_security_group_id = groups["node"].id
        self.register_outputs({"log_group_name": self.log_group_name, "managers": self.managers.name})

    def _security_groups(self, name, settings, network, alb_security_group_id, admin_security_group_id, web_ports):
        child = pulumi.ResourceOptions(parent=self)
        node = security_group(f"{name}-nodes", settings, network.vpc_id, "restdemo swarm nodes", child)
        manager = security_group(f"{name}-managers", settings, network.vpc_id, "restdemo swarm managers", child)

        def rule(suffix: str, group, port: int, description: str, **source):
            allow_in(f"{name}-{suffix}", settings, group, port, description, child, **source)

        for protocol, port in SWARM_NODE_PORTS:
            rule(
                f"swarm-{protocol}-{port}",
                node,
                port,
                "swarm, between nodes only",
                protocol=protocol,
                source_group_id=node.id,
            )
        # The service's overlay network is encrypted (IPsec ESP between the nodes' VXLAN endpoints).
        rule(
            "swarm-esp",
            node,
            None,
            "overlay encryption, between nodes only",
            protocol=ESP_PROTOCOL,
            source_group_id=node.id,
        )
        rule(
            "manager-2377", manager, SWARM_MANAGEMENT_PORT, "swarm management, from nodes only", source_group_id=node.id
        )
        for port in web_ports:  # mesh-8000 by default, the name it always had
            rule(
                f"mesh-{port}", node, port, "the routing mesh, from the ALB only", source_group_id=alb_security_group_id
            )
        # The agent's readiness endpoint: the admin NLB's health check and `recover` on another manager.
        # Not the VPC: an idle connection from any container could hold its threads.
        rule(
            "readiness",
            manager,
            READINESS_PORT,
            "agent readiness, from the admin NLB only",
            source_group_id=admin_security_group_id,
        )
        rule(
            "readiness-managers",
            manager,
            READINESS_PORT,
            "agent readiness, from the managers (recover)",
            source_group_id=manager.id,
        )
        for index, cidr in enumerate(settings.admin_cidrs):
            rule(
                f"docker-api-{index}", manager, DOCKER_TLS_PORT, "Docker API (mutual TLS), admin CIDRs", cidr=str(cidr)
            )
        for group, label in ((node, "nodes"), (manager, "managers")):
            allow_out(f"{name}-{label}-egress", settings, group, "0.0.0.0/0", "AWS APIs, ECR, package mirrors", child)
        return {"node": node, "manager": manager}

    def _stack_arns(
        self,
        settings: SwarmSettings,
        state: SwarmState,
        secrets_key: SecretsKey,
        repository_arns: list[pulumi.Input[str]],
        group_names: dict[str, str],
        web_target_groups: list[pulumi.Input[str]],
    ) -> pulumi.Output[StackArns]:
        """What the node roles' policies are scoped to."""
        stack = pulumi.get_stack()
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        return pulumi.Output.all(
            account=identity.account_id,
            table=state.table_arn,
            queue=state.queue_arn,
            log_groups=pulumi.Output.all(**{w.replace("/", "_"): arn for w, arn in state.log_group_arns.items()}),
            key=secrets_key.arn,
            repositories=pulumi.Output.all(*repository_arns),
            web_target_groups=pulumi.Output.all(*web_target_groups),
        ).apply(
            lambda v: StackArns(
                region=settings.aws_region,
                account=v["account"],
                stack=stack,
                ssm_prefix=self.ssm_prefix,
                table=v["table"],
                queue=v["queue"],
                log_groups={
                    role: [v["log_groups"][which.replace("/", "_")] for which in role_log_groups(role)]
                    for role in ("manager", "worker")
                },
                key=v["key"],
                repositories=list(v["repositories"]),
                groups={role: group_arn(settings.aws_region, v["account"], g) for role, g in group_names.items()},
                kept_secrets=sorted({entry.split("=", 1)[1].split("#")[0] for entry in settings.aws_secrets}),
                web_target_groups=list(v["web_target_groups"]),
            )
        )

    def _user_data(
        self,
        settings: SwarmSettings,
        state: SwarmState,
        admin: AdminEndpoint,
        secrets_key: SecretsKey,
        registry_server: pulumi.Input[str],
        agent_image: pulumi.Input[str],
        group_names: dict[str, str],
    ) -> dict[str, pulumi.Output[str]]:
        """Each role's rendered cloud-init."""
        stack = pulumi.get_stack()

        def user_data(role: str, tls_parameters: dict[str, str] | None) -> pulumi.Output[str]:
            # Managers' user data names the Docker API certificate they must find in SSM: a renewed
            # certificate changes their launch template, and the instance refresh rolls them one by one.
            manager = tls_parameters is not None
            fingerprints = admin.certificate_sha256 if manager else {}
            key = secrets_key.arn if manager else ""
            return pulumi.Output.all(
                queue_url=state.queue_url,
                log_group=state.log_group_names[f"{role}s"],
                agent_log_group=state.log_group_name if manager else "",
                table=state.table_name,
                registry=registry_server,
                agent_image=agent_image,
                tls_sha256=fingerprints,
                secrets_key=key,
            ).apply(
                lambda v: render(
                    NodeConfig(
                        agent=AgentEnvironment(
                            stack=stack,
                            region=settings.aws_region,
                            role=role,
                            state_table=v["table"],
                            ssm_prefix=self.ssm_prefix,
                            lifecycle_queue_url=v["queue_url"],
                            log_group=v["agent_log_group"] or v["log_group"],
                            registry=v["registry"],
                            group_name=group_names[role],
                            prune_interval_seconds=int(settings.prune_interval),
                            secrets_key=v["secrets_key"],
                            image=v["agent_image"],
                            **{f"tls_{name}_parameter": value for name, value in (tls_parameters or {}).items()},
                        ),
                        log_group=v["log_group"],
                        tls_sha256=v["tls_sha256"],
                        engine_dead_after_seconds=int(settings.engine_dead_after),
                    )
                )
            )

        return {"manager": user_data("manager", admin.tls_parameters), "worker": user_data("worker", None)}

    def _node_specs(
        self,
        settings: SwarmSettings,
        network: Network,
        web: LoadBalancer,
        admin: AdminEndpoint,
        state: SwarmState,
        groups: dict[str, aws.ec2.SecurityGroup],
        group_names: dict[str, str],
        arns: pulumi.Output[StackArns],
        amis: dict[str, pulumi.Input[str]],
        user_data: dict[str, pulumi.Output[str]],
    ) -> list[NodeGroupSpec]:
        # A node boots needing the internet (packages, ECR), the hook's role and, on managers, the TLS material.
        boot_needs = [*network.egress, *state.hook_ready]
        return [
            NodeGroupSpec(
                role="manager",
                size=settings.manager_count,
                instance_type=settings.manager_instance_type,
                ami_id=amis["manager"],
                subnet_ids=network.node_subnet_ids,
                security_group_ids=[groups["node"].id, groups["manager"].id],
                user_data=user_data["manager"],
                role_policy=arns.apply(lambda a: policy(*role_statements(a, "manager"))),
                # Created waiting on the admin NLB's readiness check (no service needed yet), then
                # attached to both: the web target group's check needs the service.
                create_target_group_arns=[admin.target_group_arn],
                attach_target_group_arns={"0": admin.target_group_arn, **web.attachments},
                wait_for_elb_capacity=settings.manager_count,
                group_name=group_names["manager"],
                depends_on=[*boot_needs, *admin.parameters],
            ),
            NodeGroupSpec(
                role="worker",
                size=settings.worker_count,
                instance_type=settings.worker_instance_type,
                ami_id=amis["worker"],
                subnet_ids=network.node_subnet_ids,
                security_group_ids=[groups["node"].id],
                user_data=user_data["worker"],
                role_policy=arns.apply(lambda a: policy(*role_statements(a, "worker"))),
                create_target_group_arns=web.target_group_arns,
                group_name=group_names["worker"],
                depends_on=boot_needs,
                purchase=worker_purchase(settings),
                scaling=Scaling(settings.worker_max_count, settings.worker_reserved_target)
                if workers_scale(settings)
                else None,
            ),
        ]

    def _node_groups(
        self, name: str, settings: SwarmSettings, state: SwarmState, specs: list[NodeGroupSpec]
    ) -> tuple[NodeGroup, ...]:
        lifecycle = LifecycleTarget(
            queue_arn=state.queue_arn, role_arn=state.hook_role_arn, heartbeat_seconds=int(settings.drain_timeout)
        )
        return tuple(
            NodeGroup(
                f"{name}-{spec.role}s",
                settings=NodeGroupSettings.of(settings),
                spec=spec,
                lifecycle=lifecycle,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for spec in specs
        )
