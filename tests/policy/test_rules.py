"""The policy pack's rules pass on every stack's resources (from the program under mocks) and catch
a bad variant of each."""

from __future__ import annotations

import copy
import json
import sys

import pytest

from tests.support.pulumi_program import REPO, STACKS, run_program
from tests.support.stack_variants import STACK_VARIANTS, compose_app_run, variant_run

sys.path.insert(0, str(REPO / "policy"))
from rules import RULES, Resource, violations  # noqa: E402

pytestmark = pytest.mark.policy


def pack_config(stack: str) -> dict:
    """A stack's (or a stack variant's: `<stack> with <variant>`) policy pack config."""
    return json.loads((REPO / "policy" / f"config.{stack.partition(' with ')[0]}.json").read_text())


def resources_of(stack: str, config: dict | None = None) -> list[Resource]:
    """A stack's resources; `<stack> with <variant>` that stack with one of its variants (stack_variants)."""
    name, _, with_variant = stack.partition(" with ")
    run = variant_run(name, with_variant) if with_variant else run_program(stack, config)
    return [Resource(r.type, r.name, copy.deepcopy(r.inputs)) for r in run.registered if r.custom]


@pytest.fixture(scope="module", params=STACKS)
def stack_resources(request):
    return request.param, resources_of(request.param)


def test_every_rule_passes_on_every_stack(stack_resources):
    stack, resources = stack_resources
    assert violations(resources, pack_config(stack)) == []


@pytest.mark.parametrize("stack,variant", STACK_VARIANTS)
def test_every_rule_passes_with_every_optional_feature(stack, variant):
    """The pack runs on every pull request and deploy, mandatory: a domain (its record and certificate
    validation take no tags), your own certificate, the alarm settings, another port, your own service
    (it refused `healthCheck: []` once), each alone and all together."""
    run = variant_run(stack, variant)
    resources = [Resource(r.type, r.name, copy.deepcopy(r.inputs)) for r in run.registered if r.custom]
    assert violations(resources, pack_config(stack)) == []


def test_every_rule_passes_on_a_compose_app():
    """Several services from a Compose file, a prebuilt image, a Docker secret: the local stack's pack."""
    run = compose_app_run()
    resources = [Resource(r.type, r.name, copy.deepcopy(r.inputs)) for r in run.registered if r.custom]
    assert {r.type for r in resources} >= {"docker:index/secret:Secret", "docker:index/service:Service"}
    assert violations(resources, pack_config("local")) == []


def test_which_types_take_tags_comes_from_the_providers_schema():
    """No hand list to fall behind: a Route 53 record or a certificate validation has no `tags` input
    in the aws provider's schema; a certificate does, and is held to the rule."""
    from rules import takes_tags

    assert [
        takes_tags(t) for t in ("aws:route53/record:Record", "aws:acm/certificateValidation:CertificateValidation")
    ] == [False, False]
    untagged = [
        Resource("aws:route53/record:Record", "web-alias", {"name": "app.example.com"}),
        Resource("aws:acm/certificate:Certificate", "domain", {"domainName": "app.example.com"}),
    ]
    assert violations(untagged) == [("required-tags", "domain: missing tags project, stack, owner")]


def test_every_stack_has_a_policy_config():
    assert sorted(p.name for p in (REPO / "policy").glob("config.*.json")) == [f"config.{s}.json" for s in STACKS]
    for stack in STACKS:
        assert set(pack_config(stack)) <= set(RULES)


def variant(resources: list[Resource], typ: str, name: str, change) -> list[Resource]:
    found = [r for r in resources if (r.type, r.name) == (typ, name)]
    assert len(found) == 1, (typ, name)
    bad = copy.deepcopy(found[0])
    change(bad.props)
    return [bad]


def ingress(props, port=22, cidr="0.0.0.0/0"):
    props.update(fromPort=port, toPort=port, cidrIpv4=cidr)


BAD_VARIANTS = [
    (
        "prod",
        "aws:lb/listener:Listener",
        "web-http",
        lambda p: p.update(defaultActions=[{"type": "forward", "targetGroupArn": "arn:tg"}]),
        "https",
        "web-http: serves plain HTTP; this stack requires HTTPS",
    ),
    (
        "prod",
        "aws:autoscaling/group:Group",
        "swarm-managers-group",
        lambda p: p.update(desiredCapacity=2),
        "manager-count-odd",
        "2 managers; a swarm needs an odd number",
    ),
    (
        "prod",
        "aws:autoscaling/group:Group",
        "swarm-workers-group",
        lambda p: p["mixedInstancesPolicy"]["instancesDistribution"].update(onDemandBaseCapacity=0),
        "capacity-bought-safely",
        "0 on-demand worker(s); the stack requires 1",
    ),
    (
        "dev",
        "aws:autoscaling/group:Group",
        "swarm-workers-group",
        lambda p: p["mixedInstancesPolicy"]["launchTemplate"].update(overrides=[{"instanceType": "t3.small"}]),
        "capacity-bought-safely",
        "spot from 1 instance type(s); at least 2",
    ),
    (
        "staging",
        "aws:autoscaling/group:Group",
        "swarm-workers-group",
        lambda p: p.update(capacityRebalance=False),
        "capacity-bought-safely",
        "spot without capacity rebalancing",
    ),
    (
        "prod with workersScale",
        "aws:autoscaling/group:Group",
        "swarm-workers-group",
        lambda p: p.update(capacityRebalance=False),
        "capacity-bought-safely",
        "spot without capacity rebalancing",
    ),
    (
        "prod",
        "aws:autoscaling/group:Group",
        "swarm-managers-group",
        lambda p: p.update(
            mixedInstancesPolicy={
                "instancesDistribution": {"onDemandPercentageAboveBaseCapacity": 0},
                "launchTemplate": {"overrides": [{"instanceType": "t3.small"}, {"instanceType": "t3a.small"}]},
            },
            capacityRebalance=True,
        ),
        "capacity-bought-safely",
        "managers run spot; they hold the swarm's raft log",
    ),
    (
        "prod",
        "aws:autoscaling/group:Group",
        "swarm-workers-group",
        lambda p: p.update(vpcZoneIdentifiers=["a", "b"]),
        "groups-span-zones",
        "spans 2 subnet(s); at least 3 zones required",
    ),
    (
        "dev",
        "aws:autoscaling/group:Group",
        "swarm-workers-group",
        lambda p: p.update(vpcZoneIdentifiers=["a"]),
        "groups-span-zones",
        "spans 1 subnet(s); at least 2 zones required",
    ),
    (
        "dev",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "swarm-manager-2377",
        ingress,
        "ingress-only-listeners-public",
        "ingress from anywhere on ports 22-22",
    ),
    (
        "dev",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "swarm-readiness",
        lambda p: ingress(p, 44554, "::/0") or p.pop("cidrIpv4") and p.update(cidrIpv6="::/0"),
        "ingress-only-listeners-public",
        "ingress from anywhere on ports 44554-44554",
    ),
    (
        "dev",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "swarm-workers-template",
        lambda p: p["metadataOptions"].update(httpTokens="optional"),
        "launch-templates-imdsv2-encrypted",
        "IMDSv2 must be required",
    ),
    (
        "dev",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "swarm-managers-template",
        lambda p: p["blockDeviceMappings"][0]["ebs"].update(encrypted="false"),
        "launch-templates-imdsv2-encrypted",
        "volume /dev/xvda must be encrypted",
    ),
    (
        "staging",
        "aws:ecr/repository:Repository",
        "registry",
        lambda p: p.update(imageTagMutability="MUTABLE"),
        "ecr-immutable-scanned",
        "image tags must be IMMUTABLE",
    ),
    (
        "prod",
        "aws:ecr/repository:Repository",
        "registry",
        lambda p: p.update(imageTagMutabilityExclusionFilters=[{"filter": "*", "filterType": "WILDCARD"}]),
        "ecr-immutable-scanned",
        "only the tag buildcache may be mutable",
    ),
    (
        "staging",
        "aws:ecr/repository:Repository",
        "agent-registry",
        lambda p: p.update(imageScanningConfiguration={"scanOnPush": False}),
        "ecr-immutable-scanned",
        "images must be scanned on push",
    ),
    (
        "local",
        "docker:index/service:Service",
        "restdemo",
        lambda p: p["taskSpec"]["containerSpec"].update(image="127.0.0.1:5000/restdemo:latest"),
        "service-safe-rollout",
        "must run an image by digest",
    ),
    (
        "local",
        "docker:index/service:Service",
        "restdemo",
        lambda p: p["taskSpec"]["containerSpec"].pop("healthcheck"),
        "service-safe-rollout",
        "needs a healthcheck",
    ),
    (
        "local",
        "docker:index/service:Service",
        "restdemo",
        lambda p: p["updateConfig"].pop("order"),
        "service-safe-rollout",
        "updateConfig.order must be set",
    ),
    (
        "prod",
        "docker:index/service:Service",
        "restdemo",
        lambda p: p["updateConfig"].update(failureAction="pause"),
        "service-safe-rollout",
        "updateConfig.failureAction must be rollback",
    ),
    (
        "staging",
        "aws:iam/rolePolicy:RolePolicy",
        "swarm-workers-role",
        lambda p: p.update(
            policy=json.dumps({"Statement": [{"Effect": "Allow", "Action": ["ssm:GetParameters"], "Resource": "*"}]})
        ),
        "roles-read-only-their-parameters",
        "allows reading every SSM parameter",
    ),
    (
        "prod",
        "aws:ssm/parameter:Parameter",
        "admin-key",
        lambda p: p.pop("keyId"),
        "securestrings-customer-key",
        "must be encrypted with the stack's own KMS key",
    ),
    (
        "dev",
        "aws:ssm/parameter:Parameter",
        "admin-ca",
        lambda p: p.update(keyId="alias/aws/ssm"),
        "securestrings-customer-key",
        "not aws/ssm",
    ),
    (
        "dev",
        "aws:cloudwatch/logGroup:LogGroup",
        "swarm-state-logs",
        lambda p: p.pop("retentionInDays"),
        "log-retention",
        "needs a retention",
    ),
    (
        "prod",
        "aws:lb/loadBalancer:LoadBalancer",
        "web",
        lambda p: p.update(enableDeletionProtection=False),
        "deletion-protection",
        "deletion protection is required on this stack",
    ),
    (
        "prod",
        "aws:sqs/queue:Queue",
        "swarm-state-lifecycle",
        lambda p: p["tags"].pop("owner"),
        "required-tags",
        "missing tags owner",
    ),
    (
        "staging",
        "aws:autoscaling/group:Group",
        "swarm-managers-group",
        lambda p: p.update(tags=[t for t in p["tags"] if t["key"] != "project"]),
        "required-tags",
        "missing tags project",
    ),
    (
        "prod",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "monitoring-managers-below-quorum",
        lambda p: p.pop("okActions"),
        "alarms-notify",
        "an alarm needs okActions",
    ),
    (
        "dev",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "monitoring-web-5xx-share",
        lambda p: p.update(alarmActions=[]),
        "alarms-notify",
        "an alarm needs alarmActions",
    ),
    (
        "prod with composeApp",
        "aws:efs/fileSystem:FileSystem",
        "volumes",
        lambda p: p.pop("kmsKeyId"),
        "data-encrypted-backed-up",
        "must be encrypted with the stack's own KMS key",
    ),
    (
        "dev with composeApp",
        "aws:efs/backupPolicy:BackupPolicy",
        "volumes-backup",
        lambda p: p.update(backupPolicy={"status": "DISABLED"}),
        "data-encrypted-backed-up",
        "automatic backups must be ENABLED",
    ),
    (
        "dev with composeApp",
        "aws:rds/instance:Instance",
        "database",
        lambda p: p.update(publiclyAccessible=True),
        "databases-private-encrypted-backed-up",
        "must not be publicly accessible",
    ),
    (
        "dev with composeApp",
        "aws:rds/instance:Instance",
        "database",
        lambda p: p.pop("kmsKeyId"),
        "databases-private-encrypted-backed-up",
        "must be encrypted with the stack's own KMS key",
    ),
    (
        "dev with composeApp",
        "aws:rds/instance:Instance",
        "database",
        lambda p: p.update(backupRetentionPeriod=1),
        "databases-private-encrypted-backed-up",
        "kept 7 days or more",
    ),
    (
        "dev with composeApp",
        "aws:rds/instance:Instance",
        "database",
        lambda p: p.update(deleteAutomatedBackups=True),
        "databases-private-encrypted-backed-up",
        "must outlive it",
    ),
    (
        "prod with composeApp",
        "aws:rds/instance:Instance",
        "database",
        lambda p: p.update(skipFinalSnapshot=True),
        "deletion-protection",
        "deletion protection and a final snapshot are required",
    ),
    (
        "prod with composeApp",
        "aws:rds/instance:Instance",
        "database",
        lambda p: p.update(multiAz=False),
        "deletion-protection",
        "a database in two zones",
    ),
]


@pytest.mark.parametrize(
    "stack,typ,name,change,rule,message", BAD_VARIANTS, ids=[f"{v[4]}:{v[0]}:{v[2]}" for v in BAD_VARIANTS]
)
def test_a_bad_variant_is_caught_by_its_rule(stack, typ, name, change, rule, message):
    found = violations(variant(resources_of(stack), typ, name, change), pack_config(stack))
    assert [r for r, _ in found] == [rule]
    assert message in found[0][1]


def test_the_managed_instance_core_policy_on_a_node_role_is_caught():
    """What the node roles had before (#11): the AWS-managed policy whose parameter reads cover `*`."""
    attachment = Resource(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "swarm-workers-ssm",
        {"role": "restdemo-dev-worker-node", "policyArn": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"},
    )
    (found,) = violations([attachment], pack_config("dev"))
    assert found[0] == "roles-read-only-their-parameters"
    assert "reads every SSM parameter in the account" in found[1]


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "ssm:Get*", "Resource": "*"},
        {"Effect": "Allow", "Action": ["ssm:GetParametersByPath"], "Resource": "arn:aws:ssm:*:*:parameter/*"},
        {"Effect": "Allow", "Action": "SSM:GetParam*", "Resource": "arn:aws:ssm:eu-west-1:123456789012:parameter/*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
    ],
)
def test_broad_parameter_reads_are_caught_however_written(statement):
    policy = json.dumps({"Statement": [statement]})
    (check,) = [rule for name, (_, rule) in RULES.items() if name == "roles-read-only-their-parameters"]
    assert check(Resource("aws:iam/policy:Policy", "broad", {"policy": policy}), {})
    role = Resource("aws:iam/role:Role", "broad", {"inlinePolicies": [{"name": "p", "policy": policy}]})
    assert check(role, {})


def test_a_stacks_own_parameter_path_is_not_broad():
    own = {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "arn:aws:ssm:*:*:parameter/restdemo/dev/*"}
    (check,) = [rule for name, (_, rule) in RULES.items() if name == "roles-read-only-their-parameters"]
    assert check(Resource("aws:iam/policy:Policy", "own", {"policy": json.dumps({"Statement": [own]})}), {}) == []


def test_every_rule_has_a_bad_variant():
    assert {v[4] for v in BAD_VARIANTS} == set(RULES)


def test_deletion_protection_is_not_required_outside_prod():
    resources = variant(
        resources_of("dev"),
        "aws:lb/loadBalancer:LoadBalancer",
        "web",
        lambda p: p.update(enableDeletionProtection=False),
    )
    assert violations(resources, pack_config("dev")) == []


def test_the_pack_registers_every_rule_as_mandatory(monkeypatch):
    import runpy

    import pulumi_policy

    registered = {}
    monkeypatch.setattr(
        pulumi_policy, "PolicyPack", lambda name, policies: registered.update(name=name, policies=policies)
    )
    runpy.run_path(str(REPO / "policy" / "__main__.py"))
    assert registered["name"] == "restdemo"
    assert [p.name for p in registered["policies"]] == list(RULES)
    assert {p.enforcement_level for p in registered["policies"]} == {pulumi_policy.EnforcementLevel.MANDATORY}
    # The engine calls each policy's validate with ResourceValidationArgs; so do we.
    ecr = next(p for p in registered["policies"] if p.name == "ecr-immutable-scanned")
    options = pulumi_policy.PolicyResourceOptions(False, [], None, [], None, [])
    args = pulumi_policy.ResourceValidationArgs(
        "aws:ecr/repository:Repository",
        {"imageTagMutability": "MUTABLE", "imageScanningConfiguration": {}},
        "urn:pulumi:prod::restdemo::aws:ecr/repository:Repository::registry",
        "registry",
        options,
        None,
        {},
    )
    reported = []
    ecr.validate(args, lambda message, urn: reported.append(message))
    assert reported == ["registry: image tags must be IMMUTABLE", "registry: images must be scanned on push"]
