"""The rules AWS and the providers apply that Pulumi's mocks do not, as data, each with its source.

Four kinds:
- `Field`: a value's allowed characters, length, enum or range, or the form a provider reads back;
- `ForceNew`: inputs whose change replaces the resource; on a named resource the replacement
  deletes first, so a routine settings change must never touch them;
- `TwoPlaces`: an Optional+Computed input also managed by a separate resource; the owner must
  ignore its own view after creation, or each plan undoes the other resource;
- `Needs`: what must exist before a resource is created (AWS's ordering, not the data flow).

Sources: terraform-provider-aws (tpa; internal/service/...), kreuzwerker/terraform-provider-docker
(tpd; internal/provider/...), moby/swarmkit, pulumi-aws, and the AWS API references named.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.config.durations import docker_duration, parse_duration
from tests.support.pulumi_program import ProgramRun, Registered

SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
GROUP = "aws:autoscaling/group:Group"
HOOK = "aws:autoscaling/lifecycleHook:LifecycleHook"
ATTACHMENT = "aws:autoscaling/attachment:Attachment"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
SERVICE = "docker:index/service:Service"


# --- checks on one value -------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    regex: str
    max_length: int | None = None

    def problem(self, value: Any) -> str | None:
        text = str(value)
        if self.max_length is not None and len(text) > self.max_length:
            return f"longer than {self.max_length} characters"
        if not re.fullmatch(self.regex, text):
            return f"does not match {self.regex}"
        return None


@dataclass(frozen=True)
class OneOf:
    values: tuple

    def problem(self, value: Any) -> str | None:
        return None if value in self.values else f"not one of {', '.join(map(str, self.values))}"


@dataclass(frozen=True)
class Between:
    low: float
    high: float

    def problem(self, value: Any) -> str | None:
        number = float(value)
        return None if self.low <= number <= self.high else f"outside {self.low:g}-{self.high:g}"


@dataclass(frozen=True)
class ReadBack:
    """The form a provider writes back into state; any other spelling diffs on every preview."""

    canonical: Callable[[Any], str]
    how: str

    def problem(self, value: Any) -> str | None:
        try:
            expected = self.canonical(value)
        except ValueError as exc:
            return str(exc)
        return None if str(value) == expected else f"reads back as {expected!r} ({self.how})"


def _short_duration(value: Any) -> str:
    return docker_duration(parse_duration(str(value)))


def _one_decimal(value: Any) -> str:
    number = float(value)
    return str(value) if round(number, 1) == number else f"{number:.1f}"


def _go_duration(value: Any) -> str:
    parse_duration(str(value))
    return str(value)


DOCKER_BUILD_IMAGE = "docker-build:index:Image"
EC2_DESCRIPTION = Pattern(r"[0-9A-Za-z_ .:/()#,@\[\]+=&;{}!$*-]*", 255)
DOCKER_DURATION = ReadBack(_short_duration, "tpd resource_docker_service_structures.go shortDur")
# swarmkit manager/controlapi/common.go validateAnnotations: isValidDNSName, at most 63 characters.
SWARM_NAME = Pattern(r"[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*", 63)


@dataclass(frozen=True)
class Field:
    """`path` into a resource's inputs (wire names): `a.b`, `a[].b` for every list item, `a{}` for
    every value of a map, `a{keys}` for every key. Unset values are not sent and not checked."""

    type: str
    path: str
    check: Any
    source: str
    bad: Any  # a value the rule must catch

    @property
    def name(self) -> str:
        return f"{self.type.split(':')[-1]}.{self.path}"


FIELDS = [
    # EC2 (security groups)
    Field(
        SG_INGRESS,
        "description",
        EC2_DESCRIPTION,
        "AWS EC2 API IpRange.Description; tpa ec2/validate.go validSecurityGroupRuleDescription",
        "the agent's readiness",
    ),
    Field(SG_EGRESS, "description", EC2_DESCRIPTION, "AWS EC2 API IpRange.Description", "managers' API"),
    Field(
        "aws:ec2/securityGroup:SecurityGroup",
        "description",
        EC2_DESCRIPTION,
        "AWS EC2 CreateSecurityGroup GroupDescription; tpa ec2/vpc_security_group.go (ForceNew, 0-255)",
        "nodes' group",
    ),
    Field(
        "aws:ec2/eip:Eip",
        "domain",
        OneOf(("vpc", "standard")),
        "tpa ec2/ec2_eip.go domain enum.Validate[DomainType]",
        "classic",
    ),
    # Tags: EC2 allows 127-character keys (not aws:...) and 256-character values.
    Field("aws:ec2/vpc:Vpc", "tags{keys}", Pattern(r"(?!aws:).{1,127}"), "AWS EC2 API Tag.Key", "aws:owner"),
    Field("aws:ec2/launchTemplate:LaunchTemplate", "tags{}", Pattern(r".{0,256}"), "AWS EC2 API Tag.Value", "x" * 257),
    # Auto Scaling
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
    # Launch templates
    Field(
        TEMPLATE,
        "metadataOptions.httpTokens",
        OneOf(("optional", "required")),
        "tpa ec2/ec2_launch_template.go LaunchTemplateHttpTokensState",
        "enforced",
    ),
    Field(
        TEMPLATE,
        "metadataOptions.httpPutResponseHopLimit",
        Between(1, 64),
        "tpa ec2/ec2_launch_template.go IntBetween(1, 64)",
        0,
    ),
    Field(
        TEMPLATE,
        "blockDeviceMappings[].ebs.volumeType",
        OneOf(("standard", "gp2", "gp3", "io1", "io2", "sc1", "st1")),
        "tpa ec2/ec2_launch_template.go ec2.VolumeType_Values",
        "gp4",
    ),
    Field(
        TEMPLATE,
        "blockDeviceMappings[].ebs.encrypted",
        OneOf(("true", "false")),
        "tpa ec2/ec2_launch_template.go nullable.TypeNullableBool (a string)",
        True,
    ),
    # Load balancing
    Field(
        "aws:lb/loadBalancer:LoadBalancer",
        "loadBalancerType",
        OneOf(("application", "network", "gateway")),
        "tpa elbv2/load_balancer.go LoadBalancerTypeEnum",
        "classic",
    ),
    Field(
        "aws:lb/loadBalancer:LoadBalancer",
        "idleTimeout",
        Between(1, 4000),
        "AWS ELBv2 LoadBalancerAttribute idle_timeout.timeout_seconds",
        0,
    ),
    Field(
        TARGET_GROUP,
        "protocol",
        OneOf(("HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE")),
        "tpa elbv2/target_group.go ProtocolEnum",
        "HTTP2",
    ),
    Field(TARGET_GROUP, "deregistrationDelay", Between(0, 3600), "tpa elbv2/target_group.go IntBetween(0, 3600)", 7200),
    Field(TARGET_GROUP, "healthCheck.interval", Between(5, 300), "tpa elbv2/target_group.go IntBetween(5, 300)", 1),
    Field(TARGET_GROUP, "healthCheck.timeout", Between(2, 120), "tpa elbv2/target_group.go IntBetween(2, 120)", 1),
    Field(
        TARGET_GROUP, "healthCheck.healthyThreshold", Between(2, 10), "tpa elbv2/target_group.go IntBetween(2, 10)", 1
    ),
    Field(
        TARGET_GROUP,
        "healthCheck.unhealthyThreshold",
        Between(2, 10),
        "tpa elbv2/target_group.go IntBetween(2, 10)",
        11,
    ),
    Field(
        TARGET_GROUP,
        "healthCheck.path",
        Pattern(r"/.{0,1023}"),
        "tpa elbv2/target_group.go StringHasPrefix(/), 1-1024",
        "health",
    ),
    Field(
        TARGET_GROUP,
        "healthCheck.protocol",
        OneOf(("HTTP", "HTTPS", "TCP")),
        "tpa elbv2/target_group.go health_check.protocol",
        "UDP",
    ),
    # State, queue, logs, parameters
    Field(
        "aws:sqs/queue:Queue",
        "name",
        Pattern(r"[0-9A-Za-z_-]{1,80}"),
        "tpa sqs/queue.go resourceQueueCustomizeDiff",
        "restdemo.dev.lifecycle",
    ),
    Field(
        "aws:sqs/queue:Queue",
        "visibilityTimeoutSeconds",
        Between(0, 43200),
        "tpa sqs/queue.go IntBetween(0, 43_200)",
        50000,
    ),
    Field(
        "aws:sqs/queue:Queue",
        "messageRetentionSeconds",
        Between(60, 1209600),
        "tpa sqs/queue.go IntBetween(60, 1_209_600)",
        30,
    ),
    Field(
        "aws:sqs/queue:Queue",
        "receiveWaitTimeSeconds",
        Between(0, 20),
        "AWS SQS SetQueueAttributes ReceiveMessageWaitTimeSeconds",
        30,
    ),
    Field(
        "aws:dynamodb/table:Table",
        "name",
        Pattern(r"[a-zA-Z0-9_.-]{3,255}"),
        "AWS DynamoDB naming rules",
        "restdemo/dev",
    ),
    Field(
        "aws:cloudwatch/logGroup:LogGroup",
        "name",
        Pattern(r"[0-9A-Za-z_./#-]{1,512}"),
        "tpa logs/validate.go validLogGroupName",
        "/restdemo/dev stack",
    ),
    Field(
        "aws:cloudwatch/logGroup:LogGroup",
        "retentionInDays",
        OneOf(
            (0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
        ),
        "tpa logs/group.go IntInSlice",
        10,
    ),
    Field(
        "aws:ssm/parameter:Parameter",
        "name",
        Pattern(r"(?!/?(?i:aws|ssm))/?([a-zA-Z0-9_.-]+/){0,14}[a-zA-Z0-9_.-]+", 1011),
        "AWS SSM PutParameter Name (15 levels, 1011 characters, no aws/ssm prefix)",
        "/restdemo/dev/tls key",
    ),
    Field(
        "aws:ssm/parameter:Parameter",
        "description",
        Pattern(r".{0,1024}"),
        "tpa ssm/parameter.go StringLenBetween(0, 1024)",
        "d" * 1025,
    ),
    Field(
        "aws:ssm/parameter:Parameter",
        "type",
        OneOf(("String", "StringList", "SecureString")),
        "tpa ssm/parameter.go ParameterType_Values",
        "Secure",
    ),
    Field(
        "aws:ssm/parameter:Parameter",
        "keyId",
        Pattern(r"[0-9A-Za-z_:/-]{1,2048}"),
        "tpa kms/validate.go validKeyARNOrAliasARN / key id (UUID)",
        "key id with spaces",
    ),
    Field(
        "aws:iam/role:Role",
        "name",
        Pattern(r"[\w+=,.@-]{1,64}", 64),
        "tpa iam/role.go name validResourceName(roleNameMaxLen = 64), [\\w+=,.@-]",
        "restdemo-" + "s" * 50 + "-manager-node",
    ),
    Field(
        "aws:kms/alias:Alias",
        "name",
        Pattern(r"(?!alias/aws/)alias/[0-9A-Za-z_/-]+", 256),
        "tpa kms/validate.go aliasNameRegexPattern alias/[0-9A-Za-z_/-]+, not alias/aws/",
        "alias/aws/restdemo",
    ),
    Field("aws:kms/key:Key", "deletionWindowInDays", Between(7, 30), "tpa kms/key.go IntBetween(7, 30)", 6),
    Field(
        "aws:ssm/document:Document",
        "name",
        Pattern(r"[0-9A-Za-z_.-]{3,128}"),
        "tpa ssm/document.go name ^[0-9A-Za-z_.-]+$, StringLenBetween(3, 128)",
        "restdemo dev session",
    ),
    Field(
        "aws:ssm/document:Document",
        "documentType",
        OneOf(("Command", "Policy", "Automation", "Session", "Package", "ApplicationConfiguration")),
        "tpa ssm/document.go document_type ssm.DocumentType_Values (those a stack may create)",
        "Shell",
    ),
    Field(
        "aws:ssm/document:Document",
        "documentFormat",
        OneOf(("YAML", "JSON", "TEXT")),
        "tpa ssm/document.go document_format ssm.DocumentFormat_Values",
        "XML",
    ),
    # Docker (the swarm)
    Field(SERVICE, "name", SWARM_NAME, "swarmkit manager/controlapi/common.go validateAnnotations", "restdemo.web"),
    Field(
        "docker:index/network:Network",
        "name",
        SWARM_NAME,
        "swarmkit manager/controlapi/network.go validateNetworkSpec",
        "-restdemo",
    ),
    Field(
        SERVICE,
        "taskSpec.placement.prefs[]",
        Pattern(r"(?i:node\.labels\.|engine\.labels\.).+"),
        "swarmkit manager/scheduler/nodeset.go (*nodeSet).tree skips other descriptors; "
        "tpd stringSetToPlacementPrefs passes the string verbatim",
        "spread=node.labels.availability_zone",
    ),
    Field(
        SERVICE,
        "updateConfig.failureAction",
        OneOf(("pause", "continue", "rollback")),
        "tpd resource_docker_service.go ^(pause|continue|rollback)$",
        "abort",
    ),
    Field(
        SERVICE,
        "updateConfig.order",
        OneOf(("stop-first", "start-first")),
        "tpd resource_docker_service.go ^(stop-first|start-first)$",
        "first-start",
    ),
    Field(
        SERVICE,
        "rollbackConfig.failureAction",
        OneOf(("pause", "continue")),
        "tpd resource_docker_service.go rollback_config (pause|continue)",
        "rollback",
    ),
    Field(
        SERVICE, "rollbackConfig.order", OneOf(("stop-first", "start-first")), "tpd resource_docker_service.go", "stop"
    ),
    Field(
        SERVICE,
        "taskSpec.restartPolicy.condition",
        OneOf(("none", "on-failure", "any")),
        "tpd resource_docker_service.go ^(none|on-failure|any)$",
        "always",
    ),
    Field(
        SERVICE, "endpointSpec.mode", OneOf(("vip", "dnsrr")), "tpd resource_docker_service.go ^(vip|dnsrr)$", "ipvs"
    ),
    Field(
        SERVICE,
        "endpointSpec.ports[].protocol",
        OneOf(("tcp", "udp", "sctp")),
        "tpd resource_docker_service.go ^(tcp|udp|sctp)$",
        "http",
    ),
    Field(
        SERVICE,
        "endpointSpec.ports[].publishMode",
        OneOf(("host", "ingress")),
        "tpd resource_docker_service.go ^(host|ingress)$",
        "mesh",
    ),
    Field(
        SERVICE,
        "updateConfig.maxFailureRatio",
        ReadBack(_one_decimal, "tpd FormatFloat(..., 'f', 1, 64)"),
        "tpd flattenServiceUpdateOrRollbackConfig",
        "0.25",
    ),
    *(
        Field(SERVICE, path, DOCKER_DURATION, "tpd flatten* functions read durations back through shortDur", "1m0s")
        for path in (
            "updateConfig.delay",
            "updateConfig.monitor",
            "rollbackConfig.delay",
            "rollbackConfig.monitor",
            "taskSpec.containerSpec.stopGracePeriod",
            "taskSpec.containerSpec.healthcheck.interval",
            "taskSpec.containerSpec.healthcheck.timeout",
            "taskSpec.containerSpec.healthcheck.startPeriod",
            "taskSpec.restartPolicy.delay",
            "taskSpec.restartPolicy.window",
        )
    ),
    # ECR: immutable tags, but the build cache's.
    Field(
        "aws:ecr/repository:Repository",
        "imageTagMutability",
        OneOf(("MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")),
        "AWS ECR API CreateRepository imageTagMutability; tpa ecr/repository.go image_tag_mutability",
        "IMMUTABLE_EXCEPT_CACHE",
    ),
    Field(
        "aws:ecr/repository:Repository",
        "imageTagMutabilityExclusionFilters[].filter",
        Pattern(r"[0-9a-zA-Z._*-]{1,128}"),
        "AWS ECR API ImageTagMutabilityExclusionFilter.filter (1-128, [0-9a-zA-Z._*-])",
        "build cache",
    ),
    Field(
        "aws:ecr/repository:Repository",
        "imageTagMutabilityExclusionFilters[].filterType",
        OneOf(("WILDCARD",)),
        "AWS ECR API ImageTagMutabilityExclusionFilter.filterType",
        "REGEX",
    ),
    # pulumi-docker-build: what BuildKit and the registry accept.
    Field(
        DOCKER_BUILD_IMAGE,
        "tags[]",
        Pattern(r"[a-z0-9.-]+(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
        "distribution/reference regexp.go: path components [a-z0-9]+([._-][a-z0-9]+)*, tag [\\w][\\w.-]{0,127}",
        "127.0.0.1:5000/restdemo:v1 beta",
    ),
    Field(
        DOCKER_BUILD_IMAGE,
        "cacheTo[].registry.mode",
        OneOf(("min", "max")),
        "pulumi-docker-build provider/internal/cache.go CacheMode",
        "all",
    ),
    Field(
        DOCKER_BUILD_IMAGE,
        "platforms[]",
        OneOf(("linux/amd64", "linux/arm64")),
        "pulumi-docker-build provider/internal/platform.go (the two the nodes run)",
        "linux/x86_64",
    ),
]


def values_at(inputs: Any, path: str) -> list[tuple[str, Any]]:
    """Every (concrete path, value) that `path` names in `inputs`."""
    found: list[tuple[str, Any]] = [("", inputs)]
    for part in path.split("."):
        name, _, mode = part.partition("[") if "[" in part else part.partition("{")
        mode = (
            "list" if part.endswith("[]") else "values" if part.endswith("{}") else "keys" if "{keys}" in part else ""
        )
        step = []
        for where, value in found:
            if not isinstance(value, dict) or name not in value or value[name] is None:
                continue
            inner, here = value[name], f"{where}.{name}".lstrip(".")
            if mode == "list":
                step += [(f"{here}[{i}]", item) for i, item in enumerate(inner)]
            elif mode == "values":
                step += [(f"{here}.{k}", v) for k, v in inner.items()]
            elif mode == "keys":
                step += [(f"{here}{{{k}}}", k) for k in inner]
            else:
                step.append((here, inner))
        found = step
    return found


def field_problems(rule: Field, resources: list[Registered]) -> list[str]:
    return [
        f"{r.name}: {where} = {value!r} {problem} [{rule.source}]"
        for r in resources
        if r.type == rule.type
        for where, value in values_at(r.inputs, rule.path)
        if (problem := rule.check.problem(value))
    ]


def with_value(inputs: dict, path: str, value: Any) -> dict:
    """A copy of `inputs` with the first place `path` names set to `value` (the rule's bad variant)."""
    bad = copy.deepcopy(inputs)
    target = bad
    parts = path.split(".")
    for part in parts[:-1]:
        name = part.rstrip("[]{}").removesuffix("{keys")
        target = target[name][0] if part.endswith("[]") else target[name]
    last = parts[-1]
    name = last.split("[")[0].split("{")[0]
    if last.endswith("[]"):
        target[name] = [value, *target.get(name, [])[1:]]
    elif last.endswith("{keys}"):
        target[name] = {value: "x", **target.get(name, {})}
    elif last.endswith("{}"):
        first = next(iter(target[name]))
        target[name] = {**target[name], first: value}
    else:
        target[name] = value
    return bad


# --- replacements, two owners, create-time order -------------------------------------------


@dataclass(frozen=True)
class ForceNew:
    type: str
    fields: tuple[str, ...]
    source: str
    name_field: str = "name"


FORCE_NEW = [
    ForceNew(
        GROUP,
        ("name", "initialLifecycleHooks"),
        "tpa autoscaling/group.go: name, initial_lifecycle_hook and every sub-field ForceNew",
    ),
    ForceNew(HOOK, ("name",), "tpa autoscaling/lifecycle_hook.go: name ForceNew"),
    ForceNew("aws:sqs/queue:Queue", ("name", "fifoQueue"), "tpa sqs/queue.go: name, fifo_queue ForceNew"),
    ForceNew("aws:dynamodb/table:Table", ("name", "hashKey"), "tpa dynamodb/table.go: name, hash_key ForceNew"),
    ForceNew("aws:cloudwatch/logGroup:LogGroup", ("name",), "tpa logs/group.go: name ForceNew"),
    ForceNew("aws:ssm/parameter:Parameter", ("name", "dataType"), "tpa ssm/parameter.go: name, data_type ForceNew"),
    ForceNew("aws:ecr/repository:Repository", ("name",), "tpa ecr/repository.go: name ForceNew"),
    # `mode` is a ForceNew block: SDKv2 puts ForceNew on its item count only (helper/schema diffList), so
    # replicated <-> global replaces the service while a new replica count updates it in place.
    ForceNew(
        SERVICE,
        ("name", "mode{keys}"),
        "tpd resource_docker_service.go: name, mode ForceNew (swarmkit refuses renames and mode changes)",
    ),
    ForceNew(
        "docker:index/network:Network",
        ("name", "driver", "attachable"),
        "tpd resource_docker_network.go: every argument ForceNew",
    ),
]


def force_new_value(inputs: dict, field: str) -> Any:
    """The part of an input whose change replaces: the value, or for `block{keys}` which keys it has."""
    if field.endswith("{keys}"):
        return sorted(inputs.get(field.removesuffix("{keys}")) or {})
    return inputs.get(field)


def replaced_delete_first(rule: ForceNew, before: ProgramRun, after: ProgramRun) -> list[str]:
    """Named resources (Pulumi replaces those delete-first) whose ForceNew inputs differ between runs."""
    earlier = {r.urn: r for r in before.registered if r.type == rule.type}
    return [
        f"{r.name}: {field} changes, which replaces the named resource delete-first [{rule.source}]"
        for r in after.registered
        if r.type == rule.type and r.urn in earlier and r.inputs.get(rule.name_field)
        for field in rule.fields
        if force_new_value(r.inputs, field) != force_new_value(earlier[r.urn].inputs, field)
    ]


@dataclass(frozen=True)
class TwoPlaces:
    type: str
    field: str
    manager: str
    link: str  # the manager's input naming the owner (by its `owner_key` input)
    owner_key: str
    source: str


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
    TwoPlaces(
        "aws:ec2/securityGroup:SecurityGroup",
        "ingress",
        SG_INGRESS,
        "securityGroupId",
        "id",
        "tpa docs security_group: inline rules conflict with rule resources",
    ),
    TwoPlaces(
        "aws:ec2/securityGroup:SecurityGroup", "egress", SG_EGRESS, "securityGroupId", "id", "tpa docs security_group"
    ),
    TwoPlaces(
        "aws:ec2/routeTable:RouteTable",
        "routes",
        "aws:ec2/route:Route",
        "routeTableId",
        "id",
        "tpa docs route_table: inline routes conflict with aws_route",
    ),
]


def managed_twice(rule: TwoPlaces, run: ProgramRun) -> list[str]:
    problems = []
    for owner in run.of_type(rule.type):
        key = owner.inputs.get(rule.owner_key) if rule.owner_key != "id" else f"{owner.name}-id"
        managers = [m for m in run.of_type(rule.manager) if key is not None and m.inputs.get(rule.link) == key]
        if managers and owner.inputs.get(rule.field) is not None and rule.field not in owner.ignore_changes:
            problems.append(
                f"{owner.name}: {rule.field} is set here and by {', '.join(m.name for m in managers)}; "
                f"the next plan undoes one of them (ignore_changes it) [{rule.source}]"
            )
    return problems


@dataclass(frozen=True)
class ReadBackWider:
    """A ForceNew input the provider reads back with more than was sent (Optional+Computed map):
    set, and compared on the next plan, it replaces the resource every time; set it once and
    `ignore_changes` it."""

    type: str
    field: str
    source: str


READ_BACK_WIDER = [
    ReadBackWider(
        "docker:index/network:Network",
        "options",
        "kreuzwerker resource_docker_network.go: options Optional+Computed+ForceNew; "
        "resource_docker_network_funcs.go Read sets every driver option (overlay adds vxlanid_list)",
    ),
]


def replaced_every_time(rule: ReadBackWider, run: ProgramRun) -> list[str]:
    return [
        f"{r.name}: {rule.field} is read back wider than sent and is ForceNew: every plan replaces it "
        f"(ignore_changes it) [{rule.source}]"
        for r in run.of_type(rule.type)
        if r.inputs.get(rule.field) and rule.field not in r.ignore_changes
    ]


@dataclass(frozen=True)
class Needs:
    type: str
    what: str
    required: Callable[[Registered, ProgramRun], list[Registered]]
    source: str


def _internet_gateways(resource: Registered, run: ProgramRun) -> list[Registered]:
    return run.of_type("aws:ec2/internetGateway:InternetGateway")


def _egress_routes(group: Registered, run: ProgramRun) -> list[Registered]:
    """The route table associations of the group's subnets (their way out: NAT or internet gateway)."""
    subnets = set(group.inputs.get("vpcZoneIdentifiers") or [])
    return [
        a for a in run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation") if a.inputs["subnetId"] in subnets
    ]


def _instance_permissions(group: Registered, run: ProgramRun) -> list[Registered]:
    """The instance profile of the group's launch template, and every policy of its role."""
    template_id = group.inputs["launchTemplate"]["id"]
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
    return [profile, *policies]


def _hook_permissions(hook: Registered, run: ProgramRun) -> list[Registered]:
    """A hook that notifies a target publishes with its role (a hook without a target needs none)."""
    if "roleArn" not in hook.inputs:
        return []
    role_name = hook.inputs["roleArn"].rpartition("/")[2]
    return [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == f"{role_name}-id"]


NEEDS = [
    Needs(
        "aws:ec2/natGateway:NatGateway",
        "the internet gateway",
        _internet_gateways,
        "tpa docs nat_gateway: depends_on the VPC's internet gateway for proper ordering",
    ),
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


def closure(resource: Registered, run: ProgramRun) -> set[str]:
    """Every URN `resource` depends on, directly or through what it depends on."""
    by_urn = {r.urn: r for r in run.registered}
    seen: set[str] = set()
    todo = list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        todo += by_urn[urn].dependencies if urn in by_urn else []
    return seen


def missing_needs(rule: Needs, run: ProgramRun) -> list[str]:
    problems = []
    for resource in run.of_type(rule.type):
        required = rule.required(resource, run)
        if not required:
            continue
        missing = [r.name for r in required if r.urn not in closure(resource, run)]
        if missing:
            problems.append(
                f"{resource.name}: created without waiting for {rule.what} ({', '.join(missing)}) [{rule.source}]"
            )
    return problems


# pulumi-docker-build provider/internal/image.go `Image.Diff`: every input compared as is, but
# `registries` by address and username (never the password: ECR's changes every 12 h) and
# `secrets` without those named in `ignoreSecretsInDiffCalculation` when both sides have them.
# (It also re-hashes the build context from disk; the same source gives the same hash.)
def docker_build_changes(old: dict, new: dict) -> list[str]:
    """The inputs whose change makes the provider rebuild the image."""
    changed = []
    # The provider does not compare ignoreSecretsInDiffCalculation itself; it only applies it.
    for key in sorted((set(old) | set(new)) - {"registries", "secrets", "ignoreSecretsInDiffCalculation"}):
        if old.get(key) != new.get(key):
            changed.append(key)
    old_registries, new_registries = old.get("registries") or [], new.get("registries") or []
    if len(old_registries) != len(new_registries):
        changed.append("registries")
    else:
        for index, (before, after) in enumerate(zip(old_registries, new_registries, strict=True)):
            if (before.get("address"), before.get("username")) != (after.get("address"), after.get("username")):
                changed.append(f"registries[{index}]")
                break
    old_secrets, new_secrets = dict(old.get("secrets") or {}), dict(new.get("secrets") or {})
    for name in new.get("ignoreSecretsInDiffCalculation") or []:
        if name in old_secrets and name in new_secrets:
            del old_secrets[name], new_secrets[name]
    if old_secrets != new_secrets:
        changed.append("secrets")
    return changed
