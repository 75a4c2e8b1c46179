"""The policy pack's rules as plain functions over a resource's type and inputs (wire names),
so they can be tested on the program's own resources, taken from a run under mocks.

Each rule returns the violations it finds, as sentences; none means the resource passes.
Values unknown at preview time (outputs of other resources) are not judged.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONFIG: dict[str, Any] = {
    "minZones": 2,
    "requireDeletionProtection": False,
    "publicPorts": [80, 443],
    "requiredTags": ["project", "stack", "owner"],
    "requireHttps": False,
    "minBackupDays": 7,
    "minOnDemandWorkers": 0,
}
OPEN = {"0.0.0.0/0", "::/0"}


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    props: dict[str, Any] = field(default_factory=dict)


def manager_count_is_odd(resource: Resource, config: dict) -> list[str]:
    if resource.type != "aws:autoscaling/group:Group" or not str(resource.props.get("name", "")).endswith("-managers"):
        return []
    size = resource.props.get("desiredCapacity")
    if isinstance(size, (int, float)) and int(size) % 2 == 0:
        return [f"{resource.name}: {int(size)} managers; a swarm needs an odd number (1, 3 or 5) to keep a quorum"]
    return []


def groups_span_zones(resource: Resource, config: dict) -> list[str]:
    if resource.type != "aws:autoscaling/group:Group":
        return []
    subnets = resource.props.get("vpcZoneIdentifiers")
    if isinstance(subnets, list) and len(set(subnets)) < config["minZones"]:
        return [f"{resource.name}: spans {len(set(subnets))} subnet(s); at least {config['minZones']} zones required"]
    return []


def capacity_bought_safely(resource: Resource, config: dict) -> list[str]:
    """Managers launch on-demand only (their raft log: a spot reclaim could take the quorum); a group
    with spot draws from at least two instance types and rebalances; workers keep the stack's
    on-demand floor."""
    if resource.type != "aws:autoscaling/group:Group":
        return []
    mixed = resource.props.get("mixedInstancesPolicy") or {}
    distribution = mixed.get("instancesDistribution") or {}
    base = distribution.get("onDemandBaseCapacity", 0)
    percent = distribution.get("onDemandPercentageAboveBaseCapacity", 100)
    # At the group's largest (a scaling group sends no desired capacity): workers above its minimum
    # may be the spot ones.
    size = resource.props.get("maxSize", resource.props.get("desiredCapacity"))
    if not all(isinstance(v, (int, float)) for v in (base, percent, size)):
        return []
    spot = mixed and percent < 100 and size > base
    name = str(resource.props.get("name", ""))
    found = []
    if spot and name.endswith("-managers"):
        found.append(f"{resource.name}: managers run spot; they hold the swarm's raft log and must be on-demand")
    types = (mixed.get("launchTemplate") or {}).get("overrides") or []
    if spot and len(types) < 2:
        found.append(
            f"{resource.name}: spot from {len(types)} instance type(s); at least 2, so one pool's reclaim is not all"
        )
    if spot and resource.props.get("capacityRebalance") is not True:
        found.append(f"{resource.name}: spot without capacity rebalancing")
    # The group's own rounding, in favour of on-demand (infra/config/capacity.on_demand_count).
    above = max(size - base, 0)
    on_demand = min(base, size) + -(-above * percent // 100)
    if name.endswith("-workers") and on_demand < min(config["minOnDemandWorkers"], size):
        found.append(
            f"{resource.name}: {int(on_demand)} on-demand worker(s); the stack requires {config['minOnDemandWorkers']}"
        )
    return found


def ingress_open_only_on_listener_ports(resource: Resource, config: dict) -> list[str]:
    rules = []
    if resource.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        rules = [(resource.props, [resource.props.get("cidrIpv4"), resource.props.get("cidrIpv6")])]
    elif resource.type == "aws:ec2/securityGroup:SecurityGroup":
        rules = [
            (r, [*r.get("cidrBlocks", []), *r.get("ipv6CidrBlocks", [])]) for r in resource.props.get("ingress") or []
        ]
    violations = []
    for rule, cidrs in rules:
        if not OPEN & set(filter(None, cidrs)):
            continue
        ports = (rule.get("fromPort"), rule.get("toPort"))
        if ports[0] != ports[1] or ports[0] not in config["publicPorts"]:
            violations.append(
                f"{resource.name}: ingress from anywhere on ports {ports[0]}-{ports[1]}; "
                f"only the load balancer's listener ports {config['publicPorts']} may be open to the internet"
            )
    return violations


def launch_templates_require_imdsv2_and_encryption(resource: Resource, config: dict) -> list[str]:
    if resource.type != "aws:ec2/launchTemplate:LaunchTemplate":
        return []
    violations = []
    if (resource.props.get("metadataOptions") or {}).get("httpTokens") != "required":
        violations.append(f"{resource.name}: IMDSv2 must be required (metadataOptions.httpTokens = required)")
    for disk in resource.props.get("blockDeviceMappings") or [{}]:
        if str((disk.get("ebs") or {}).get("encrypted")).lower() != "true":
            violations.append(f"{resource.name}: volume {disk.get('deviceName', '?')} must be encrypted")
    return violations


BUILD_CACHE_TAG = "buildcache"  # infra/image/registry.py MUTABLE_TAG


def ecr_tags_immutable_and_scanned(resource: Resource, config: dict) -> list[str]:
    if resource.type != "aws:ecr/repository:Repository":
        return []
    violations = []
    mutability = resource.props.get("imageTagMutability")
    # One mutable tag is allowed: the BuildKit cache's (a cache, never an image anything runs).
    exclusions = [
        (f.get("filter"), f.get("filterType")) for f in resource.props.get("imageTagMutabilityExclusionFilters") or []
    ]
    if mutability == "IMMUTABLE_WITH_EXCLUSION" and exclusions != [(BUILD_CACHE_TAG, "WILDCARD")]:
        violations.append(f"{resource.name}: only the tag {BUILD_CACHE_TAG} may be mutable, not {exclusions}")
    elif mutability not in ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"):
        violations.append(f"{resource.name}: image tags must be IMMUTABLE")
    if not (resource.props.get("imageScanningConfiguration") or {}).get("scanOnPush"):
        violations.append(f"{resource.name}: images must be scanned on push")
    return violations


def service_rolls_out_safely(resource: Resource, config: dict) -> list[str]:
    if resource.type != "docker:index/service:Service":
        return []
    container = (resource.props.get("taskSpec") or {}).get("containerSpec") or {}
    update = resource.props.get("updateConfig") or {}
    violations = []
    image = container.get("image")
    if isinstance(image, str) and "@sha256:" not in image:
        violations.append(f"{resource.name}: runs {image}; a service must run an image by digest (@sha256:...)")
    tests = (container.get("healthcheck") or {}).get("tests") or []
    if not tests or tests[0] == "NONE":
        violations.append(f"{resource.name}: needs a healthcheck")
    if update.get("order") not in ("start-first", "stop-first"):
        violations.append(f"{resource.name}: updateConfig.order must be set (start-first keeps capacity)")
    if update.get("failureAction") != "rollback":
        violations.append(f"{resource.name}: updateConfig.failureAction must be rollback")
    return violations


# AWS-managed policies that read every SSM parameter of the account (`ssm:GetParameter*` on `*`).
BROAD_PARAMETER_READERS = {
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    "arn:aws:iam::aws:policy/AmazonEC2RoleforSSM",
    "arn:aws:iam::aws:policy/AmazonSSMReadOnlyAccess",
    "arn:aws:iam::aws:policy/AmazonSSMFullAccess",
    "arn:aws:iam::aws:policy/ReadOnlyAccess",
    "arn:aws:iam::aws:policy/PowerUserAccess",
    "arn:aws:iam::aws:policy/AdministratorAccess",
}


# What reads a parameter's value.
PARAMETER_READS = ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:GetParameterHistory")


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _covers(patterns: list[str], value: str, case_sensitive: bool = True) -> bool:
    if not case_sensitive:
        return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns)
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _broad_parameter_pattern(pattern: str) -> bool:
    """A resource pattern that also covers a parameter outside any one stack's own path: probed with
    a parameter no stack owns, in the pattern's own region and account."""
    parts = pattern.split(":")
    region, account = (parts[3], parts[4]) if len(parts) >= 6 else ("eu-west-1", "123456789012")
    probe = f"arn:aws:ssm:{region.replace('*', 'x')}:{account.replace('*', '0')}:parameter/zz-not-a-stack/secret"
    return fnmatch.fnmatchcase(probe, pattern)


def _reads_every_parameter(statement: dict) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if "NotAction" in statement:
        reads = any(not _covers(_listed(statement["NotAction"]), a, False) for a in PARAMETER_READS)
    else:
        reads = any(_covers(_listed(statement.get("Action") or []), a, False) for a in PARAMETER_READS)
    if "NotResource" in statement:
        return reads
    return reads and any(_broad_parameter_pattern(r) for r in _listed(statement.get("Resource") or []))


def _policy_reads_every_parameter(document: Any) -> bool:
    if not isinstance(document, str):
        return False  # unknown at preview time
    return any(_reads_every_parameter(s) for s in _listed(json.loads(document).get("Statement") or []))


def roles_read_only_their_parameters(resource: Resource, config: dict) -> list[str]:
    """A role that reads every parameter reads every stack's join tokens and TLS keys."""
    props = resource.props
    managed = []
    if resource.type in (
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/policyAttachment:PolicyAttachment",
    ):
        managed = [props.get("policyArn")]
    if resource.type == "aws:iam/role:Role":
        managed = list(props.get("managedPolicyArns") or [])
    violations = [
        f"{resource.name}: {arn} reads every SSM parameter in the account; "
        "give the role its own statements on its stack's parameters"
        for arn in managed
        if arn in BROAD_PARAMETER_READERS
    ]
    documents = []
    if resource.type in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        documents = [props.get("policy")]
    if resource.type == "aws:iam/role:Role":
        documents = [p.get("policy") for p in props.get("inlinePolicies") or []]
    if any(_policy_reads_every_parameter(d) for d in documents):
        violations.append(f"{resource.name}: allows reading every SSM parameter (ssm:GetParameter* beyond its stack)")
    return violations


def secure_strings_under_a_customer_key(resource: Resource, config: dict) -> list[str]:
    """The AWS managed aws/ssm key lets every principal of the account decrypt through SSM."""
    if resource.type != "aws:ssm/parameter:Parameter" or resource.props.get("type") != "SecureString":
        return []
    key = resource.props.get("keyId")
    if not key or key in ("alias/aws/ssm",) or str(key).endswith(":alias/aws/ssm"):
        return [f"{resource.name}: a SecureString must be encrypted with the stack's own KMS key (keyId), not aws/ssm"]
    return []


def file_systems_encrypted_and_backed_up(resource: Resource, config: dict) -> list[str]:
    """The volumes' data: encrypted at rest with the stack's own key, and AWS Backup's daily backups on."""
    if resource.type == "aws:efs/fileSystem:FileSystem":
        if resource.props.get("encrypted") is not True or not resource.props.get("kmsKeyId"):
            return [f"{resource.name}: a file system must be encrypted with the stack's own KMS key (kmsKeyId)"]
    if resource.type == "aws:efs/backupPolicy:BackupPolicy":
        if (resource.props.get("backupPolicy") or {}).get("status") != "ENABLED":
            return [f"{resource.name}: a file system's automatic backups must be ENABLED"]
    return []


def databases_private_encrypted_backed_up(resource: Resource, config: dict) -> list[str]:
    """The database: reachable from the VPC only, encrypted at rest with the stack's own key, its automated
    backups kept minBackupDays or more, and kept when it goes."""
    if resource.type != "aws:rds/instance:Instance":
        return []
    props, found = resource.props, []
    if props.get("publiclyAccessible") is not False:
        found.append(f"{resource.name}: a database must not be publicly accessible (publiclyAccessible false)")
    if props.get("storageEncrypted") is not True or not props.get("kmsKeyId"):
        found.append(f"{resource.name}: a database must be encrypted with the stack's own KMS key (kmsKeyId)")
    if props.get("deleteAutomatedBackups") is not False:
        found.append(f"{resource.name}: a database's automated backups must outlive it (deleteAutomatedBackups false)")
    if (props.get("backupRetentionPeriod") or 0) < config["minBackupDays"]:
        found.append(
            f"{resource.name}: a database's automated backups must be kept {config['minBackupDays']} days or more"
        )
    return found


def log_groups_have_retention(resource: Resource, config: dict) -> list[str]:
    if resource.type == "aws:cloudwatch/logGroup:LogGroup" and not resource.props.get("retentionInDays"):
        return [f"{resource.name}: a log group needs a retention (retentionInDays)"]
    return []


def load_balancers_protected_where_required(resource: Resource, config: dict) -> list[str]:
    """Where the stack requires it: the load balancers' deletion protection; the database's, with a final
    snapshot and a standby in a second zone."""
    if not config["requireDeletionProtection"]:
        return []
    if (
        resource.type == "aws:lb/loadBalancer:LoadBalancer"
        and resource.props.get("enableDeletionProtection") is not True
    ):
        return [f"{resource.name}: deletion protection is required on this stack"]
    if resource.type == "aws:rds/instance:Instance":
        props = resource.props
        if props.get("deletionProtection") is not True or props.get("skipFinalSnapshot") is not False:
            return [f"{resource.name}: deletion protection and a final snapshot are required on this stack"]
        if props.get("multiAz") is not True:
            return [f"{resource.name}: a database in two zones (databaseMultiAz) is required on this stack"]
    return []


def web_traffic_is_https_where_required(resource: Resource, config: dict) -> list[str]:
    """Where the stack requires it, no listener serves HTTP: port 80 only redirects to HTTPS (with a
    certificate: domainName, or certificateArn and domainName)."""
    if resource.type != "aws:lb/listener:Listener" or not config["requireHttps"]:
        return []
    if resource.props.get("protocol") != "HTTP":
        return []
    actions = resource.props.get("defaultActions") or []
    redirects = [
        a for a in actions if a.get("type") == "redirect" and (a.get("redirect") or {}).get("protocol") == "HTTPS"
    ]
    if len(redirects) != len(actions) or not actions:
        return [
            f"{resource.name}: serves plain HTTP; this stack requires HTTPS (set restdemo:domainName and hostedZoneId)"
        ]
    return []


def alarms_notify(resource: Resource, config: dict) -> list[str]:
    """An alarm nobody hears is no alarm: it must notify when it fires and when it is OK again."""
    if resource.type != "aws:cloudwatch/metricAlarm:MetricAlarm":
        return []
    missing = [key for key in ("alarmActions", "okActions") if not resource.props.get(key)]
    return [f"{resource.name}: an alarm needs {' and '.join(missing)}"] if missing else []


@functools.cache
def takes_tags(resource_type: str) -> bool:
    """Does the aws provider's schema give this type a `tags` input? Read from pulumi_aws, which is
    generated from that schema: each input of a type is a keyword of its resource's constructor.
    A type the SDK does not know is held to the rule."""
    package, _, rest = resource_type.partition(":")
    module, _, name = rest.partition(":")
    module = module.split("/")[0]
    try:
        sdk = importlib.import_module(f"pulumi_{package}" + ("" if module == "index" else f".{module}"))
        return "tags" in inspect.signature(getattr(sdk, name)._internal_init).parameters
    except (ImportError, AttributeError):
        return True


def aws_resources_are_tagged(resource: Resource, config: dict) -> list[str]:
    if not resource.type.startswith("aws:") or not takes_tags(resource.type):
        return []
    tags = resource.props.get("tags") or {}
    if isinstance(tags, list):  # auto scaling groups: [{key, value, propagateAtLaunch}]
        tags = {t.get("key"): t.get("value") for t in tags}
    missing = [key for key in config["requiredTags"] if not tags.get(key)]
    return [f"{resource.name}: missing tags {', '.join(missing)}"] if missing else []


RULES: dict[str, tuple[str, Callable[[Resource, dict], list[str]]]] = {
    "manager-count-odd": ("Swarm managers come in odd numbers.", manager_count_is_odd),
    "groups-span-zones": ("Node groups span the stack's minimum number of zones.", groups_span_zones),
    "capacity-bought-safely": (
        "Managers are on-demand; spot comes from 2 or more instance types with capacity rebalancing; workers keep "
        "the stack's on-demand minimum.",
        capacity_bought_safely,
    ),
    "ingress-only-listeners-public": (
        "Nothing is open to 0.0.0.0/0 or ::/0 but the load balancer's listener ports.",
        ingress_open_only_on_listener_ports,
    ),
    "launch-templates-imdsv2-encrypted": (
        "Launch templates require IMDSv2 and encrypt every volume.",
        launch_templates_require_imdsv2_and_encryption,
    ),
    "ecr-immutable-scanned": ("ECR repositories have immutable tags and scan on push.", ecr_tags_immutable_and_scanned),
    "service-safe-rollout": (
        "The service runs an image by digest, with a healthcheck, an update order and rollback on failure.",
        service_rolls_out_safely,
    ),
    "roles-read-only-their-parameters": (
        "No role reads every SSM parameter (no AWS-managed policy with ssm:GetParameter* on *).",
        roles_read_only_their_parameters,
    ),
    "securestrings-customer-key": (
        "SecureString parameters are encrypted with a customer-managed KMS key, not aws/ssm.",
        secure_strings_under_a_customer_key,
    ),
    "log-retention": ("Every log group has a retention.", log_groups_have_retention),
    "data-encrypted-backed-up": (
        "File systems are encrypted with the stack's own key and backed up daily.",
        file_systems_encrypted_and_backed_up,
    ),
    "databases-private-encrypted-backed-up": (
        "Databases are not publicly accessible, are encrypted with the stack's own key and keep backups 7 days.",
        databases_private_encrypted_backed_up,
    ),
    "deletion-protection": (
        "Load balancers and databases have deletion protection (databases a final snapshot and Multi-AZ) where "
        "the stack requires it.",
        load_balancers_protected_where_required,
    ),
    "https": (
        "Where the stack requires it, listeners serve HTTPS only (port 80 redirects).",
        web_traffic_is_https_where_required,
    ),
    "required-tags": ("Every taggable AWS resource carries the required tags.", aws_resources_are_tagged),
    "alarms-notify": ("Every alarm notifies when it fires and when it is OK again.", alarms_notify),
}


def violations(resources: list[Resource], pack_config: dict | None = None) -> list[tuple[str, str]]:
    """Every (rule, message) the rules find, with a policy pack config as `--policy-pack-config` takes it
    (`{"<rule>": {...settings}}`)."""
    found = []
    for rule, (_, check) in RULES.items():
        settings = {**DEFAULT_CONFIG, **((pack_config or {}).get(rule) or {})}
        found += [(rule, message) for resource in resources for message in check(resource, settings)]
    return found
