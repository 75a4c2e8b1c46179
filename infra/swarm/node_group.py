"""NodeGroup: one role's swarm nodes (managers or workers): instance role and profile, launch
template, auto scaling group, and the termination hook that lets the agents drain a node
before it goes. Built from a `NodeGroupSpec`, so both roles share one code path.

What stays put across `pulumi up` (docs/ARCHITECTURE.md "Stable across updates"):
- the group's `initial_lifecycle_hooks` is ForceNew and the group is named, so it holds
  only what never changes; the hook's timeout (`drainTimeout`) lives in a separate
  `LifecycleHook` of the same name, updated in place;
- target groups attached by separate `Attachment`s are ignored on the group's own
  `target_group_arns` (Optional+Computed: the next plan would otherwise detach them);
- the AMI is a stack setting, never "whatever is latest today".
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.config.capacity import ON_DEMAND_ALLOCATION_STRATEGY, SPOT_ALLOCATION_STRATEGY, runs_spot
from infra.config.iam_policy import assume_role
from infra.config.settings import SettingsView
from infra.config.tags import tags
from infra.swarm.iam import node_role_name
from restdemo_agent.contract import (
    LAUNCH_HOOK,
    LAUNCHING,
    METRICS_DIMENSION,
    METRICS_NAMESPACE,
    ON_DEMAND_BASE_TAG,
    RESERVED_POLICY,
    TERMINATING,
    TERMINATION_HOOK,
    WORKERS_RESERVED_PERCENT,
)


@dataclass(frozen=True)
class NodeGroupSettings(SettingsView):
    """What `NodeGroup` reads of the settings: the nodes' region and disk."""

    owner: str | None
    aws_region: str | None
    node_volume_gb: int


# What the group is created with before its separate LifecycleHook takes over; fixed, so that a
# new drainTimeout never reaches a ForceNew field (AWS's own default heartbeat is 3600 s).
INITIAL_HEARTBEAT_SECONDS = 3600
HEALTH_CHECK_GRACE_SECONDS = 300
# How long a new node may take to become a member; its agent gives up (and asks to be
# replaced) after RESTDEMO_BOOTSTRAP_TIMEOUT, which is shorter.
JOIN_TIMEOUT_SECONDS = 1200
INSTANCE_WARMUP_SECONDS = 300
CAPACITY_TIMEOUT = "20m"
# Per-minute group metrics (free, AWS/AutoScaling) that the in-service-below-desired alarms watch.
GROUP_METRICS = ["GroupDesiredCapacity", "GroupInServiceInstances"]
# The workers' on-demand base, as Pulumi's property path names it.
ON_DEMAND_BASE = "mixedInstancesPolicy.instancesDistribution.onDemandBaseCapacity"


def max_healthy_percentage(size: int) -> int:
    """Room for one extra instance at `size` (more above it): the replacement starts before the old
    one leaves."""
    return min(200, 100 + math.ceil(100 / max(size, 1)))


@dataclass(frozen=True)
class Purchase:
    """How a group buys its instances when it is not one on-demand type: several types of one size
    (the first has on-demand's priority), an on-demand base and share above it, the rest spot."""

    instance_types: list[str]
    on_demand_base: int
    on_demand_percent: int


@dataclass(frozen=True)
class Scaling:
    """A group that scales between its size and `max_size` on the leader's `WorkersReservedPercent`,
    held at `target` by a target-tracking policy; its desired capacity is then Auto Scaling's."""

    max_size: int
    target: int


@dataclass(frozen=True)
class NodeGroupSpec:
    """What differs between managers and workers, as data."""

    role: str
    size: int
    instance_type: str
    ami_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    security_group_ids: list[pulumi.Input[str]]
    # Rendered cloud-init (plain text) and the role's IAM policy document (JSON).
    user_data: pulumi.Input[str]
    role_policy: pulumi.Input[str]
    # The target groups the group registers its instances in when it is created (and, with
    # `wait_for_elb_capacity`, waits on); the ones attached separately afterwards.
    create_target_group_arns: list[pulumi.Input[str]]
    # Attached after creation, each by a name of its own (`<group>-target-<key>`).
    attach_target_group_arns: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    wait_for_elb_capacity: int | None = None
    group_name: str = ""
    # Created before the group: what a booting node needs (NAT routes, the hook's role, TLS material).
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # Workers only, when they mix types or run spot: managers launch one on-demand type (capacity.py).
    purchase: Purchase | None = None
    # Workers only, with workerMaxCount: managers are the raft's, a fixed odd number.
    scaling: Scaling | None = None


@dataclass(frozen=True)
class LifecycleTarget:
    """Where the termination hook notifies, and how long it holds an instance."""

    queue_arn: pulumi.Input[str]
    role_arn: pulumi.Input[str]
    heartbeat_seconds: int


def termination_hook(target: LifecycleTarget, role: str, heartbeat: int) -> dict:
    return dict(
        lifecycle_transition=TERMINATING,
        heartbeat_timeout=heartbeat,
        default_result="CONTINUE",
        notification_target_arn=target.queue_arn,
        role_arn=target.role_arn,
        notification_metadata=json.dumps({"role": role, "stack": pulumi.get_stack()}),
    )


class NodeGroup(pulumi.ComponentResource):
    """One role's swarm nodes: their IAM role, launch template, auto scaling group and lifecycle hooks.

    Takes:
        name: the prefix of every child's name (`<name>-role`, `<name>-template`, `<name>-group`, ...).
        settings: its slice of the settings (tags, region, the nodes' volume size).
        spec: what differs between the roles (`NodeGroupSpec`): size, instance type, AMI, subnets, user data...
        lifecycle: where the termination hook notifies, through which role, holding an instance how long.
        opts: resource options; `opts.parent` (the Swarm) is also the group's former parent, in its alias.

    Gives:
        group: the auto scaling group.
        name: the group's name.
        role_name: the name of the nodes' IAM role.
        launch_template_id: the launch template's id.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: NodeGroupSettings,
        spec: NodeGroupSpec,
        lifecycle: LifecycleTarget,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:swarm:NodeGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        node_tags = tags(settings, spec.role)
        instance_role, role_policy, profile = self._instance_role(name, settings, spec, node_tags, child)
        template = self._launch_template(name, settings, spec, profile, node_tags, child)
        group = self._group(
            name, settings, spec, lifecycle, template, [role_policy, profile], opts.parent if opts else None
        )
        self._lifecycle_hooks(name, spec, lifecycle, group, child)
        if spec.scaling:
            self._target_tracking(name, spec.scaling, group, child)
        self._target_group_attachments(name, spec, group, child)
        self.group = group
        self.name = group.name
        self.role_name = instance_role.name
        self.launch_template_id = template.id
        self.register_outputs({"name": self.name})

    def _instance_role(
        self,
        name: str,
        settings: NodeGroupSettings,
        spec: NodeGroupSpec,
        node_tags: dict[str, str],
        child: pulumi.ResourceOptions,
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy, aws.iam.InstanceProfile]:
        # Only the role's own statements (Session Manager's included): no AWS-managed policy, whose
        # `ssm:GetParameter` on `*` would read every stack's secrets.
        instance_role = aws.iam.Role(
            f"{name}-role",
            name=node_role_name(pulumi.get_stack(), settings.aws_region, spec.role),
            assume_role_policy=assume_role("ec2.amazonaws.com"),
            tags=node_tags,
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(f"{name}-role", role=instance_role.id, policy=spec.role_policy, opts=child)
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=instance_role.name, tags=node_tags, opts=child)
        return instance_role, role_policy, profile

    def _launch_template(
        self,
        name: str,
        settings: NodeGroupSettings,
        spec: NodeGroupSpec,
        profile: aws.iam.InstanceProfile,
        node_tags: dict[str, str],
        child: pulumi.ResourceOptions,
    ) -> aws.ec2.LaunchTemplate:
        return aws.ec2.LaunchTemplate(
            f"{name}-template",
            image_id=spec.ami_id,
            instance_type=spec.instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            vpc_security_group_ids=spec.security_group_ids,
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
            user_data=pulumi.Output.from_input(spec.user_data).apply(
                lambda text: base64.b64encode(text.encode()).decode()
            ),
            update_default_version=True,
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=node_tags)
                for kind in ("instance", "volume")
            ],
            tags=node_tags,
            opts=child,
        )

    def _group(
        self,
        name: str,
        settings: NodeGroupSettings,
        spec: NodeGroupSpec,
        lifecycle: LifecycleTarget,
        template: aws.ec2.LaunchTemplate,
        permissions: list[pulumi.Resource],
        former_parent: pulumi.Resource | None,
    ) -> aws.autoscaling.Group:
        # The group's own view of its target groups is only what it was created with when
        # others are attached separately (the provider documents the conflict on Attachment).
        ignored = ["targetGroupArns"] if spec.attach_target_group_arns else []
        group_tags = dict(tags(settings, f"{spec.role}s"))
        if spec.purchase:
            # The on-demand base is the leader's to raise while spot launches fail; the program's is in
            # the tag, which the leader puts back (restdemo_agent.spot_fallback), so `up` undoes no fallback.
            group_tags[ON_DEMAND_BASE_TAG] = str(spec.purchase.on_demand_base)
            ignored.append(ON_DEMAND_BASE)
        launch = dict(
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=template.id, version=template.latest_version)
        )
        if spec.purchase:
            launch = self._mixed_instances(
                spec.scaling.max_size if spec.scaling else spec.size, spec.purchase, template
            )
        return aws.autoscaling.Group(
            f"{name}-group",
            name=spec.group_name,
            min_size=spec.size,
            max_size=spec.scaling.max_size if spec.scaling else spec.size,
            # Scaling: not sent, so Auto Scaling's own count stands at every `pulumi up` (the provider's
            # desired_capacity is Optional+Computed: unset, no diff) and a new group starts at its minimum.
            desired_capacity=None if spec.scaling else spec.size,
            vpc_zone_identifiers=spec.subnet_ids,
            **launch,
            health_check_type="EC2",  # a bad deploy or lost quorum must never make AWS replace nodes
            health_check_grace_period=HEALTH_CHECK_GRACE_SECONDS,
            target_group_arns=spec.create_target_group_arns,
            wait_for_elb_capacity=spec.wait_for_elb_capacity,
            # A scaling group's count is Auto Scaling's: the provider's wait for an exact count would
            # hold `pulumi up` while it moves ("0" skips the wait; the launch hook still holds new nodes).
            wait_for_capacity_timeout="0" if spec.scaling else CAPACITY_TIMEOUT,
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling",
                preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                    min_healthy_percentage=100,
                    # Room for one more instance at the group's smallest, so more above it: judged at
                    # its largest, the share could round to less than one at its smallest, and with
                    # min 100 % the refresh could neither launch nor terminate.
                    max_healthy_percentage=max_healthy_percentage(spec.size),
                    instance_warmup=str(INSTANCE_WARMUP_SECONDS),
                    skip_matching=True,
                    # The leader protects the workers running a service's last replica from scale-in; a
                    # refresh (a new AMI) must still replace them, each after its replacement is in.
                    scale_in_protected_instances="Refresh",
                ),
            ),
            # Present from the first launch; fixed, since a change here replaces the group.
            initial_lifecycle_hooks=[
                aws.autoscaling.GroupInitialLifecycleHookArgs(
                    name=TERMINATION_HOOK, **termination_hook(lifecycle, spec.role, INITIAL_HEARTBEAT_SECONDS)
                )
            ],
            termination_policies=["OldestLaunchTemplate", "OldestInstance"],
            enabled_metrics=GROUP_METRICS,
            metrics_granularity="1Minute",
            tags=[
                aws.autoscaling.GroupTagArgs(key=k, value=v, propagate_at_launch=False) for k, v in group_tags.items()
            ],
            opts=pulumi.ResourceOptions(
                parent=self,
                # A node's first boot needs its role's permissions in place (IAM is eventually consistent).
                depends_on=[*permissions, *spec.depends_on],
                ignore_changes=ignored,
                # Named: it was the Swarm's child `swarm-<role>s`; a stack that has it keeps it.
                aliases=[pulumi.Alias(name=f"swarm-{spec.role}s", parent=former_parent)],
            ),
        )

    @staticmethod
    def _mixed_instances(size: int, purchase: Purchase, template: aws.ec2.LaunchTemplate) -> dict:
        """The group's mixed instances policy; with spot, capacity rebalancing too: the group launches a
        replacement when EC2 recommends it, and retires the instance at risk through the drain hook."""
        return dict(
            mixed_instances_policy=aws.autoscaling.GroupMixedInstancesPolicyArgs(
                instances_distribution=aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
                    on_demand_allocation_strategy=ON_DEMAND_ALLOCATION_STRATEGY,
                    on_demand_base_capacity=purchase.on_demand_base,
                    on_demand_percentage_above_base_capacity=purchase.on_demand_percent,
                    spot_allocation_strategy=SPOT_ALLOCATION_STRATEGY,
                ),
                launch_template=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs(
                    launch_template_specification=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs(
                        launch_template_id=template.id, version=template.latest_version
                    ),
                    overrides=[
                        aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs(instance_type=kind)
                        for kind in purchase.instance_types
                    ],
                ),
            ),
            # Judged at the group's largest: workers above its minimum may be the spot ones.
            capacity_rebalance=runs_spot(size, purchase.on_demand_base, purchase.on_demand_percent),
        )

    @staticmethod
    def _target_tracking(
        name: str, scaling: Scaling, group: aws.autoscaling.Group, child: pulumi.ResourceOptions
    ) -> None:
        """Workers added when the services reserve more than the target share of them (or tasks wait
        for room), removed through the drain hook when they reserve less."""
        aws.autoscaling.Policy(
            f"{name}-reserved",
            name=RESERVED_POLICY,
            autoscaling_group_name=group.name,
            policy_type="TargetTrackingScaling",
            estimated_instance_warmup=INSTANCE_WARMUP_SECONDS,
            target_tracking_configuration=aws.autoscaling.PolicyTargetTrackingConfigurationArgs(
                target_value=scaling.target,
                customized_metric_specification=aws.autoscaling.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationArgs(
                    namespace=METRICS_NAMESPACE,
                    metric_name=WORKERS_RESERVED_PERCENT,
                    metric_dimensions=[
                        aws.autoscaling.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricDimensionArgs(
                            name=METRICS_DIMENSION, value=pulumi.get_stack()
                        )
                    ],
                    statistic="Maximum",
                ),
            ),
            opts=child,
        )

    def _lifecycle_hooks(
        self,
        name: str,
        spec: NodeGroupSpec,
        lifecycle: LifecycleTarget,
        group: aws.autoscaling.Group,
        child: pulumi.ResourceOptions,
    ) -> None:
        # The hook's settings, updated in place (PutLifecycleHook) when drainTimeout changes.
        aws.autoscaling.LifecycleHook(
            f"{name}-drain",
            name=TERMINATION_HOOK,
            autoscaling_group_name=group.name,
            **termination_hook(lifecycle, spec.role, lifecycle.heartbeat_seconds),
            opts=child,
        )
        # A new node stays Pending:Wait until its agent reports it a ready member (or gives up: the
        # default ABANDON replaces it), so an instance refresh waits for a real member before it
        # retires an old one. Not an initial hook: the group's first nodes are waited for through
        # wait_for_elb_capacity, and initial hooks are ForceNew.
        aws.autoscaling.LifecycleHook(
            f"{name}-joined",
            name=LAUNCH_HOOK,
            autoscaling_group_name=group.name,
            lifecycle_transition=LAUNCHING,
            heartbeat_timeout=JOIN_TIMEOUT_SECONDS,
            default_result="ABANDON",
            opts=child,
        )

    def _target_group_attachments(
        self, name: str, spec: NodeGroupSpec, group: aws.autoscaling.Group, child: pulumi.ResourceOptions
    ) -> None:
        for key, target_group_arn in spec.attach_target_group_arns.items():
            aws.autoscaling.Attachment(
                f"{name}-target-{key}",
                autoscaling_group_name=group.name,
                lb_target_group_arn=target_group_arn,
                opts=child,
            )
