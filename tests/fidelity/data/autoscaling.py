"""Auto Scaling: groups (their instance refresh and initial lifecycle hooks), lifecycle hooks,
attachments, and what a group or hook needs before it is created.

Sources: terraform-provider-aws (tpa) internal/service/autoscaling and its docs, pulumi-aws, and the
AWS Auto Scaling API reference.
"""

from __future__ import annotations

from typing import Any

from infra.config.capacity import MAX_INSTANCE_TYPES
from infra.config.durations import parse_duration
from infra.config.settings import ec2_instance_types
from tests.fidelity.data.ec2 import TEMPLATE
from tests.fidelity.rules import (
    Between,
    Field,
    ForceNew,
    Needs,
    OneOf,
    Pattern,
    ReadBack,
    Satisfies,
    TwoPlaces,
    closure,
)
from tests.support.pulumi_program import ProgramRun, Registered

GROUP = "aws:autoscaling/group:Group"
POLICY = "aws:autoscaling/policy:Policy"
HOOK = "aws:autoscaling/lifecycleHook:LifecycleHook"
ATTACHMENT = "aws:autoscaling/attachment:Attachment"


def _instance_type(value: Any) -> str | None:
    return None if value in ec2_instance_types() else f"{value} is no EC2 instance type (botocore's EC2 model)"


def _override_count(value: Any) -> str | None:
    if len(value) > MAX_INSTANCE_TYPES:
        return f"{len(value)} instance types; a mixed instances policy takes {MAX_INSTANCE_TYPES} at most"
    return None


DISTRIBUTION = "mixedInstancesPolicy.instancesDistribution"


def _go_duration(value: Any) -> str:
    parse_duration(str(value))
    return str(value)


FIELDS = [
    Field(GROUP, "name", Pattern(r".{1,255}"), "tpa autoscaling/group.go name StringLenBetween(0, 255)", "g" * 256),
    Field(
        GROUP,
        "healthCheckType",
        OneOf(("EC2", "ELB", "VPC_LATTICE", "EBS")),
        "AWS UpdateAutoScalingGroup HealthCheckType",
        "HTTP",
    ),
    Field(
        GROUP,
        "terminationPolicies[]",
        OneOf(
            (
                "OldestInstance",
                "NewestInstance",
                "OldestLaunchConfiguration",
                "ClosestToNextInstanceHour",
                "OldestLaunchTemplate",
                "AllocationStrategy",
                "Default",
            )
        ),
        "tpa docs autoscaling_group termination_policies; AWS TerminationPolicies",
        "Oldest",
    ),
    Field(
        GROUP,
        "instanceRefresh.strategy",
        OneOf(("Rolling",)),
        "tpa autoscaling/group.go enum RefreshStrategy",
        "Replace",
    ),
    Field(
        GROUP,
        "instanceRefresh.preferences.minHealthyPercentage",
        Between(0, 100),
        "tpa autoscaling/group.go IntBetween(0, 100)",
        101,
    ),
    Field(
        GROUP,
        "instanceRefresh.preferences.maxHealthyPercentage",
        Between(100, 200),
        "tpa autoscaling/group.go IntBetween(100, 200)",
        250,
    ),
    Field(
        GROUP,
        "instanceRefresh.preferences.instanceWarmup",
        Pattern(r"\d+"),
        "tpa autoscaling/group.go nullable.TypeNullableInt (a string) AtLeast(0)",
        "5m",
    ),
    Field(
        GROUP,
        "waitForCapacityTimeout",
        ReadBack(_go_duration, "tpa verify.ValidDuration"),
        "tpa autoscaling/group.go wait_for_capacity_timeout verify.ValidDuration",
        "20 minutes",
    ),
    Field(
        GROUP,
        "initialLifecycleHooks[].heartbeatTimeout",
        Between(30, 7200),
        "tpa autoscaling/group.go initial_lifecycle_hook; AWS PutLifecycleHook HeartbeatTimeout",
        9000,
    ),
    Field(
        GROUP,
        "initialLifecycleHooks[].lifecycleTransition",
        OneOf(("autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING")),
        "tpa autoscaling/consts.go lifecycleHookLifecycleTransition",
        "autoscaling:EC2_INSTANCE_TERMINATE",
    ),
    Field(
        GROUP,
        "initialLifecycleHooks[].defaultResult",
        OneOf(("ABANDON", "CONTINUE")),
        "tpa autoscaling/consts.go lifecycleHookDefaultResult",
        "PROCEED",
    ),
    Field(
        GROUP,
        f"{DISTRIBUTION}.spotAllocationStrategy",
        OneOf(("lowest-price", "capacity-optimized", "capacity-optimized-prioritized", "price-capacity-optimized")),
        "AWS Auto Scaling API InstancesDistribution SpotAllocationStrategy valid values",
        "price-optimized",
    ),
    Field(
        GROUP,
        f"{DISTRIBUTION}.onDemandAllocationStrategy",
        OneOf(("lowest-price", "prioritized")),
        "AWS Auto Scaling API InstancesDistribution OnDemandAllocationStrategy valid values",
        "capacity-optimized",
    ),
    Field(
        GROUP,
        f"{DISTRIBUTION}.onDemandPercentageAboveBaseCapacity",
        Between(0, 100),
        "tpa autoscaling/group.go on_demand_percentage_above_base_capacity IntBetween(0, 100)",
        101,
    ),
    Field(
        GROUP,
        f"{DISTRIBUTION}.onDemandBaseCapacity",
        Between(0, 2**31 - 1),
        "tpa autoscaling/group.go on_demand_base_capacity IntAtLeast(0)",
        -1,
    ),
    Field(
        GROUP,
        "mixedInstancesPolicy.launchTemplate.overrides[].instanceType",
        Satisfies(_instance_type),
        "AWS Auto Scaling API LaunchTemplateOverrides InstanceType: an EC2 instance type",
        "t3.mediun",
    ),
    Field(
        GROUP,
        "mixedInstancesPolicy.launchTemplate.overrides",
        Satisfies(_override_count),
        "EC2 Auto Scaling User Guide, mixed instances groups: up to 40 instance types",
        [{"instanceType": "t3.small"}] * 41,
    ),
    Field(
        GROUP,
        "instanceRefresh.preferences.scaleInProtectedInstances",
        OneOf(("Refresh", "Ignore", "Wait")),
        "tpa autoscaling/group.go scale_in_protected_instances enum ScaleInProtectedInstances",
        "Replace",
    ),
    Field(
        POLICY,
        "policyType",
        OneOf(("SimpleScaling", "StepScaling", "TargetTrackingScaling", "PredictiveScaling")),
        "tpa autoscaling/policy.go policy_type enum PolicyType",
        "TargetTracking",
    ),
    Field(
        POLICY,
        "targetTrackingConfiguration.customizedMetricSpecification.statistic",
        OneOf(("Average", "Minimum", "Maximum", "SampleCount", "Sum")),
        "tpa autoscaling/policy.go statistic enum MetricStatistic",
        "Max",
    ),
    Field(
        POLICY,
        "estimatedInstanceWarmup",
        Between(0, 2**31 - 1),
        "tpa autoscaling/policy.go estimated_instance_warmup IntAtLeast(0)",
        -1,
    ),
    Field(
        POLICY,
        "name",
        Pattern(r"[A-Za-z0-9\-_/:.]{1,255}"),
        "AWS PutScalingPolicy PolicyName: 1-255, XmlStringMaxLen255",
        "p" * 256,
    ),
    Field(
        HOOK,
        "name",
        Pattern(r"[A-Za-z0-9\-_/]{1,255}"),
        "tpa autoscaling/lifecycle_hook.go name; AWS PutLifecycleHook LifecycleHookName",
        "drain!",
    ),
    Field(HOOK, "heartbeatTimeout", Between(30, 7200), "tpa autoscaling/lifecycle_hook.go IntBetween(30, 7200)", 10),
    Field(
        HOOK,
        "lifecycleTransition",
        OneOf(("autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING")),
        "tpa autoscaling/lifecycle_hook.go",
        "TERMINATING",
    ),
    Field(HOOK, "defaultResult", OneOf(("ABANDON", "CONTINUE")), "tpa autoscaling/lifecycle_hook.go", "continue"),
]


FORCE_NEW = [
    ForceNew(
        GROUP,
        ("name", "initialLifecycleHooks"),
        "tpa autoscaling/group.go: name, initial_lifecycle_hook and every sub-field ForceNew",
    ),
    ForceNew(HOOK, ("name",), "tpa autoscaling/lifecycle_hook.go: name ForceNew"),
]


TWO_PLACES = [
    TwoPlaces(
        GROUP,
        "targetGroupArns",
        ATTACHMENT,
        "autoscalingGroupName",
        "name",
        "pulumi-aws/tpa docs autoscaling_attachment: Optional+Computed, do not manage from two places",
    ),
    TwoPlaces(
        GROUP, "loadBalancers", ATTACHMENT, "autoscalingGroupName", "name", "pulumi-aws/tpa docs autoscaling_attachment"
    ),
]


def _egress_routes(group: Registered, run: ProgramRun) -> list[Registered]:
    """The route table associations of the group's subnets (their way out: NAT or internet gateway)."""
    subnets = set(group.inputs.get("vpcZoneIdentifiers") or [])
    return [
        a for a in run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation") if a.inputs["subnetId"] in subnets
    ]


def _instance_permissions(group: Registered, run: ProgramRun) -> list[Registered]:
    """The instance profile of the group's launch template, and every policy of its role but one for what
    is made after the nodes (the database's reader: RDS's master secret, first read once a service
    names it, and the services wait for it: tests/fidelity/data/rds.py)."""
    mixed = (group.inputs.get("mixedInstancesPolicy") or {}).get("launchTemplate")
    template_id = (
        mixed["launchTemplateSpecification"]["launchTemplateId"] if mixed else group.inputs["launchTemplate"]["id"]
    )
    template = next(t for t in run.of_type(TEMPLATE) if f"{t.name}-id" == template_id)
    profile = next(
        p
        for p in run.of_type("aws:iam/instanceProfile:InstanceProfile")
        if template.inputs["iamInstanceProfile"]["arn"].endswith(f"/{p.name}")
    )
    role_name = profile.inputs["role"]
    policies = [
        p
        for kind in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        for p in run.of_type(kind)
        if p.inputs["role"] in (role_name, f"{role_name}-id")
    ]
    return [profile, *(p for p in policies if not database_reader(p, run))]


def database_reader(policy: Registered, run: ProgramRun) -> bool:
    """A role policy made from the database (its master secret's ARN)."""
    return any(r.urn in closure(policy, run) for r in run.of_type("aws:rds/instance:Instance"))


def _hook_permissions(hook: Registered, run: ProgramRun) -> list[Registered]:
    """A hook that notifies a target publishes with its role (a hook without a target needs none)."""
    if "roleArn" not in hook.inputs:
        return []
    role_name = hook.inputs["roleArn"].rpartition("/")[2]
    return [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == f"{role_name}-id"]


NEEDS = [
    Needs(
        GROUP,
        "its subnets' egress routes",
        _egress_routes,
        "nodes install packages and pull from ECR at first boot (cloud-init); no route, no boot",
    ),
    Needs(
        GROUP,
        "its instance profile and role policies",
        _instance_permissions,
        "AWS IAM is eventually consistent: a node booting before its role's policies are attached "
        "fails its first calls",
    ),
    Needs(
        HOOK,
        "its role's permission to publish",
        _hook_permissions,
        "AWS PutLifecycleHook sends a test message with the role: "
        "'Unable to publish test message to notification target'",
    ),
]
