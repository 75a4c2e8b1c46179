"""infra/swarm/iam.py: what each node role may do, evaluated as AWS evaluates a request.

The program's policies, the KMS key policy and the agent's own AWS calls, checked with a
request evaluator (tests/support/iam_eval.py) rather than moto's enforcement, which evaluates
SSM, Auto Scaling, DynamoDB and KMS requests against the resource `*`.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from infra.swarm.iam import SESSION_MANAGER_ACTIONS
from tests.support.aws_stack import AWS_STACKS, policy_of
from tests.support.iam_eval import Request, identity_allows, kms_allows, resource_allows
from tests.support.pulumi_program import (
    ACCOUNT,
    REPO,
    fake_outputs,
    kms_key_arn,
    run_program,
)

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_node_policies_are_scoped_to_the_stack(run, role):
    unscopable = {
        *SESSION_MANAGER_ACTIONS,
        "logs:DescribeLogGroups",
        "ecr:GetAuthorizationToken",
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceTypes",
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeLifecycleHooks",
        "autoscaling:DescribePolicies",
        "autoscaling:DescribeScalingActivities",
        "cloudwatch:PutMetricData",  # no resource to scope: its condition is the namespace
    }
    # The stack's own target groups, whose ARNs carry their generated names, not the stack's.
    target_groups = {
        fake_outputs(TARGET_GROUP, r.name, r.inputs, "eu-west-1")["arn"] for r in run.of_type(TARGET_GROUP)
    }
    for statement in policy_of(run, role)["Statement"]:
        if statement["Resource"] == "*":
            assert set(statement["Action"]) <= unscopable, statement
            continue
        for arn in statement["Resource"]:
            # The stack's own resources, and its own KMS key (whose ARN carries a key id, not a name).
            assert run.stack in arn or arn == kms_key_arn("eu-west-1", "secrets", run.stack) or arn in target_groups, (
                arn
            )


TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
# The web target group's ARN, as the mocks make it (the admin endpoint's is `...:admin`).
WEB_TARGET_GROUP = f"arn:aws:lb:eu-west-1:{ACCOUNT}:web"


def test_the_managers_take_a_reclaimed_worker_out_of_the_web_target_groups_only(run):
    (statement,) = [
        s for s in policy_of(run, "manager")["Statement"] if "elasticloadbalancing:DeregisterTargets" in s["Action"]
    ]
    web = [r for r in run.of_type(TARGET_GROUP) if r.name.startswith("web")]
    assert statement["Action"] == ["elasticloadbalancing:DeregisterTargets"]
    assert statement["Resource"] == sorted(
        fake_outputs(TARGET_GROUP, r.name, r.inputs, "eu-west-1")["arn"] for r in web
    )
    assert not [
        s for s in policy_of(run, "worker")["Statement"] if any("elasticloadbalancing" in a for a in s["Action"])
    ]


def test_workers_cannot_write_state_or_read_manager_tokens(run):
    statements = policy_of(run, "worker")["Statement"]
    assert not {"ssm:PutParameter"} & {a for s in statements for a in s["Action"]}
    # Its own spot notice and its own tasks' load only.
    notice, load = [s for s in statements if "dynamodb:PutItem" in s["Action"]]
    assert notice["Condition"] == {
        "ForAllValues:StringEquals": {
            "dynamodb:LeadingKeys": ["notice#${aws:userid}"],
            "dynamodb:Attributes": ["pk", "kind", "at", "recorded"],
        }
    }
    assert load["Condition"] == {
        "ForAllValues:StringEquals": {
            "dynamodb:LeadingKeys": ["load#${aws:userid}"],
            "dynamodb:Attributes": ["pk", "services", "recorded"],
        }
    }
    resources = [r for s in policy_of(run, "worker")["Statement"] if s["Resource"] != "*" for r in s["Resource"]]
    assert f"arn:aws:ssm:eu-west-1:123456789012:parameter/restdemo/{run.stack}/join-token/worker" in resources
    assert not any("join-token/manager" in r or "join-token/*" in r or "/tls/" in r for r in resources)


def test_managers_can_initialise_the_swarm(run):
    statements = policy_of(run, "manager")["Statement"]
    table = f"arn:aws:dynamodb:eu-west-1:123456789012:table/restdemo-{run.stack}-state"
    assert any("dynamodb:PutItem" in s["Action"] and s["Resource"] == [table] for s in statements)
    tokens = [
        f"arn:aws:ssm:eu-west-1:123456789012:parameter/restdemo/{run.stack}/join-token/{role}"
        for role in ("manager", "worker")
    ]
    assert any("ssm:PutParameter" in s["Action"] and s["Resource"] == tokens for s in statements)


REGION = "eu-west-1"


SSM = f"ssm.{REGION}.amazonaws.com"


@dataclass
class StackAccess:
    stack: str
    policies: dict[str, dict]  # role -> its identity policy
    key_policy: dict
    key: str

    def role(self, role: str) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/restdemo-{self.stack}-{REGION}-{role}"

    def parameter(self, path: str) -> str:
        return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/restdemo/{self.stack}/{path}"

    def group(self, role: str) -> str:
        group = f"restdemo-{self.stack}-{role}s"
        return f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/{group}"


def access_of(stack: str, run=None) -> StackAccess:
    run = run or run_program(stack)
    policies = {
        role: json.loads(run.named("aws:iam/rolePolicy:RolePolicy", f"swarm-{role}s-role").inputs["policy"])
        for role in ("manager", "worker")
    }
    key_policy = json.loads(run.named("aws:kms/key:Key", "secrets").inputs["policy"])
    return StackAccess(stack, policies, key_policy, kms_key_arn(REGION, "secrets", stack))


@pytest.fixture(scope="module")
def dev() -> StackAccess:
    return access_of("dev")


@pytest.fixture(scope="module")
def prod() -> StackAccess:
    return access_of("prod")


def can(
    access: StackAccess,
    role: str,
    action: str,
    resource: str,
    context: dict[str, str] | None = None,
    *,
    as_stack: StackAccess | None = None,
) -> bool:
    """`role` of `access`'s stack calls `action` on `resource` (IAM alone decides: no resource policy)."""
    principal = (as_stack or access).role(role)
    return identity_allows([access.policies[role]], Request(principal, action, resource, context or {}))


def reads(caller: StackAccess, role: str, owner: StackAccess, path: str, policies: list[dict] | None = None) -> bool:
    """GetParameter(WithDecryption) of `owner`'s parameter by `caller`'s role: SSM, then KMS."""
    parameter, principal = owner.parameter(path), caller.role(role)
    policies = policies or [caller.policies[role]]
    kms = Request(
        principal,
        "kms:Decrypt",
        owner.key,
        {"kms:EncryptionContext:PARAMETER_ARN": parameter, "kms:ViaService": SSM},
    )
    return identity_allows(policies, Request(principal, "ssm:GetParameter", parameter)) and kms_allows(
        owner.key_policy, policies, kms
    )


def writes(access: StackAccess, role: str, path: str) -> bool:
    """PutParameter of a standard SecureString: SSM, then KMS Encrypt."""
    parameter, principal = access.parameter(path), access.role(role)
    kms = Request(
        principal, "kms:Encrypt", access.key, {"kms:EncryptionContext:PARAMETER_ARN": parameter, "kms:ViaService": SSM}
    )
    return identity_allows([access.policies[role]], Request(principal, "ssm:PutParameter", parameter)) and kms_allows(
        access.key_policy, [access.policies[role]], kms
    )


def test_the_evaluator_applies_awss_rules():
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    allow = {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"}
    deny = {"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*"}
    assert identity_allows([{"Statement": [allow]}], Request(role, "S3:GETOBJECT", "arn:aws:s3:::b/k"))  # case
    assert not identity_allows([{"Statement": [allow]}], Request(role, "s3:GetObject", "arn:aws:s3:::c/k"))
    assert not identity_allows([{"Statement": [allow, deny]}], Request(role, "s3:GetBucketTagging", "arn:aws:s3:::b/k"))
    assert not identity_allows([], Request(role, "s3:GetObject", "arn:aws:s3:::b/k"))  # implicit deny
    # A missing condition key: a positive operator does not match, a negated one does.
    needs = {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"k:x": "1"}}}
    unless = {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringNotEquals": {"k:x": "1"}}}
    assert not identity_allows([{"Statement": [needs]}], Request(role, "a:b", "*"))
    assert identity_allows([{"Statement": [needs]}], Request(role, "a:b", "*", {"k:x": "1"}))
    assert not identity_allows([{"Statement": [needs, unless]}], Request(role, "a:b", "*"))
    # KMS: the account in the key policy lets IAM decide; naming nobody, IAM alone is not enough.
    account = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    iam = {"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}
    decrypt = Request(role, "kms:Decrypt", "arn:aws:kms:eu-west-1:1:key/k")
    assert kms_allows({"Statement": [account]}, [iam], decrypt)
    assert not kms_allows({"Statement": [account]}, [], decrypt)
    assert not kms_allows({"Statement": []}, [iam], decrypt)
    with pytest.raises(ValueError, match="condition operator DateGreaterThan is not evaluated here"):
        identity_allows([{"Statement": [needs | {"Condition": {"DateGreaterThan": {}}}]}], Request(role, "a:b", "*"))


def test_the_evaluator_applies_set_qualifiers_and_policy_variables():
    """IAM User Guide, "Multivalued context keys" and "Policy variables", with DynamoDB's documented
    fine-grained access example (a caller writes only items whose partition key is its own id)."""
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    own = {
        "Effect": "Allow",
        "Action": "dynamodb:PutItem",
        "Resource": "*",
        "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["n#${aws:userid}"]}},
    }

    def put(keys, userid: str | None = "AROAX:i-1") -> bool:
        context = {"dynamodb:LeadingKeys": keys} | ({"aws:userid": userid} if userid else {})
        return identity_allows([{"Statement": [own]}], Request(role, "dynamodb:PutItem", "*", context))

    assert put(["n#AROAX:i-1"]) and put("n#AROAX:i-1")
    assert not put(["n#AROAX:i-2"]) and not put(["n#AROAX:i-1", "n#AROAX:i-2"])
    assert not put(["n#AROAX:i-1"], userid=None)  # no value for the variable: nothing matches
    assert put([])  # ForAllValues over no value holds: AWS's documented pitfall, not a grant here
    anyone = own | {"Condition": {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["n#*:i-2"]}}}
    request = Request(role, "dynamodb:PutItem", "*", {"dynamodb:LeadingKeys": ["n#a:i-1", "n#b:i-2"]})
    assert identity_allows([{"Statement": [anyone]}], request)
    assert not identity_allows([{"Statement": [anyone]}], Request(role, "dynamodb:PutItem", "*", {}))
    with pytest.raises(ValueError, match="condition operator ForEach:StringEquals is not evaluated here"):
        identity_allows([{"Statement": [own | {"Condition": {"ForEach:StringEquals": {}}}]}], request)


def test_a_worker_records_only_its_own_interruption_notice(dev):
    """PutItem's leading key is the item's partition key; a worker's aws:userid is its role's id and
    its instance's (IAM User Guide, "Policy variables": role-id:ec2-instance-id)."""
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/restdemo-dev-state"
    me = {"aws:userid": "AROAWORKERROLEID:i-0aaa"}

    fields = ["pk", "kind", "at", "recorded"]

    def writes_key(key: str, caller: dict = me, attributes: list[str] = fields) -> bool:
        context = caller | {"dynamodb:LeadingKeys": [key], "dynamodb:Attributes": attributes}
        return can(dev, "worker", "dynamodb:PutItem", table, context)

    assert writes_key("notice#AROAWORKERROLEID:i-0aaa")
    assert not writes_key("notice#AROAWORKERROLEID:i-0aaa", attributes=[*fields, "payload"])  # its fields only
    assert not writes_key("notice#AROAWORKERROLEID:i-0bbb")  # another worker's node
    assert not writes_key("primary")  # the swarm's record
    assert not writes_key("notice#AROAWORKERROLEID:i-0aaa", {"aws:userid": "AROAWORKERROLEID:i-0bbb"})
    assert not can(dev, "worker", "dynamodb:Scan", table) and not can(dev, "worker", "dynamodb:DeleteItem", table)

    def reads(key: str) -> bool:
        return can(dev, "worker", "dynamodb:GetItem", table, {"dynamodb:LeadingKeys": [key]})

    assert reads("primary_manager")  # the swarm it joins
    assert not reads("notice#AROAWORKERROLEID:i-0bbb") and not reads("recovery")  # nothing else of the state

    def deletes(key: str) -> bool:
        return can(dev, "manager", "dynamodb:DeleteItem", table, {"dynamodb:LeadingKeys": [key]})

    assert deletes("notice#AROAWORKERROLEID:i-0aaa") and not deletes("primary_manager")  # the leader forgets notices


def test_a_worker_records_only_its_own_tasks_load(dev):
    """Its CPU record (restdemo_agent.scaling), under its own aws:userid and with its fields only; the
    leader deletes records, none other."""
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/restdemo-dev-state"
    me = {"aws:userid": "AROAWORKERROLEID:i-0aaa"}
    fields = ["pk", "services", "recorded"]

    def writes_key(key: str, attributes: list[str] = fields) -> bool:
        context = me | {"dynamodb:LeadingKeys": [key], "dynamodb:Attributes": attributes}
        return can(dev, "worker", "dynamodb:PutItem", table, context)

    assert writes_key("load#AROAWORKERROLEID:i-0aaa")
    assert not writes_key("load#AROAWORKERROLEID:i-0bbb")  # another worker's tasks
    assert not writes_key("load#AROAWORKERROLEID:i-0aaa", [*fields, "kind"])  # its fields only
    assert not writes_key("notice#AROAWORKERROLEID:i-0aaa", fields)  # a notice with a load's fields
    assert can(dev, "manager", "dynamodb:DeleteItem", table, {"dynamodb:LeadingKeys": ["load#AROAX:i-0aaa"]})


def test_the_evaluator_applies_resource_policies():
    """Within one account an Allow in either the identity or the resource policy is enough; a Deny in
    either wins; a resource policy naming the account root leaves it to IAM."""
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    repository = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/x"
    push = Request(role, "ecr:PutImage", repository)
    iam = {"Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}
    names_role = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": role}, "Action": "ecr:PutImage"}]}
    names_account = {
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "ecr:*"}]
    }
    deny = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "ecr:PutImage",
                "Condition": {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::*:role/{role.rpartition('/')[2]}"}},
            }
        ]
    }
    assert resource_allows(None, [iam], push) and resource_allows(names_role, [], push)
    assert not resource_allows(names_account, [], push) and resource_allows(names_account, [iam], push)
    assert not resource_allows(deny, [iam], push)
    assert resource_allows(deny, [iam], Request(f"arn:aws:iam::{ACCOUNT}:role/other", "ecr:PutImage", repository))


def test_a_worker_is_denied_the_manager_token(dev):
    assert reads(dev, "worker", dev, "join-token/worker")
    assert not reads(dev, "worker", dev, "join-token/manager")


def test_a_worker_is_denied_the_tls_key(dev):
    for name in ("key", "cert", "ca"):
        assert not reads(dev, "worker", dev, f"tls/{name}"), name


def test_a_worker_cannot_complete_a_lifecycle_action(dev):
    for group in ("manager", "worker"):
        for action in ("autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"):
            assert not can(dev, "worker", action, dev.group(group)), (action, group)


def test_a_worker_cannot_touch_the_lifecycle_queue(dev):
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:restdemo-dev-lifecycle"
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage"):
        assert not can(dev, "worker", action, queue), action


def test_a_worker_cannot_write_the_state_or_the_tokens(dev):
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/restdemo-dev-state"
    assert can(dev, "worker", "dynamodb:GetItem", table)
    primary = {"aws:userid": "AROAWORKERROLEID:i-0aaa", "dynamodb:LeadingKeys": ["primary_manager"]}
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        assert not can(dev, "worker", action, table, primary), action
    assert not writes(dev, "worker", "join-token/worker")


# SetInstanceHealth's only resource is the group, its only condition keys the group's tags (Service
# Authorization Reference, EC2 Auto Scaling): a worker allowed it on its own group could have every
# other worker of it replaced. The worker role as it was, for the contrast.
WORKER_MARKING_ITS_GROUP = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["autoscaling:SetInstanceHealth"],
            "Resource": [
                f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/restdemo-dev-workers"
            ],
        }
    ]
}


def test_a_worker_writes_metrics_in_the_workers_namespace_only_and_no_managers_log(dev):
    """What a taken-over worker cannot forge: the swarm's metrics (namespace restdemo, EMF from the
    managers' agents in the swarm's log group) and the managers' logs and sessions."""
    put = "cloudwatch:PutMetricData"
    assert can(dev, "worker", put, "*", {"cloudwatch:namespace": "restdemo/workers"})
    for namespace in ("restdemo", "restdemo/managers", "AWS/EC2"):
        assert not can(dev, "worker", put, "*", {"cloudwatch:namespace": namespace}), namespace
    assert not can(dev, "manager", put, "*", {"cloudwatch:namespace": "restdemo"})  # managers: EMF
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/restdemo/dev"
    for group in ("", "/managers", "/sessions/managers"):
        assert not can(dev, "worker", "logs:PutLogEvents", f"{logs}{group}:log-stream:x"), group
        assert can(dev, "manager", "logs:PutLogEvents", f"{logs}{group}:log-stream:x"), group
    assert can(dev, "worker", "logs:PutLogEvents", f"{logs}/workers:log-stream:x")


def test_worker_cannot_mark_another_unhealthy(dev):
    """No node marks another unhealthy: a worker replaces itself by powering off (cloud-init's
    restdemo-replace-me), so it holds no SetInstanceHealth at all; managers hold it on their own
    group for `recover` only."""
    for group in ("worker", "manager"):
        assert not can(dev, "worker", "autoscaling:SetInstanceHealth", dev.group(group))
    before = StackAccess("dev", {"worker": WORKER_MARKING_ITS_GROUP}, dev.key_policy, dev.key)
    assert can(before, "worker", "autoscaling:SetInstanceHealth", dev.group("worker"))  # any worker of the group
    assert can(dev, "manager", "autoscaling:SetInstanceHealth", dev.group("manager"))
    assert not can(dev, "manager", "autoscaling:SetInstanceHealth", dev.group("worker"))


def test_broader_iam_on_a_worker_still_gets_nothing_but_its_token_from_the_key(dev):
    """Someone attaches kms:* and ssm:* to the worker role: the key itself still refuses the rest."""
    everything = {"Statement": [{"Effect": "Allow", "Action": ["kms:*", "ssm:*"], "Resource": "*"}]}
    policies = [dev.policies["worker"], everything]
    assert reads(dev, "worker", dev, "join-token/worker", policies)
    assert not reads(dev, "worker", dev, "join-token/manager", policies)
    assert not reads(dev, "worker", dev, "tls/key", policies)
    direct = Request(dev.role("worker"), "kms:Decrypt", dev.key, {})  # not through SSM
    assert not kms_allows(dev.key_policy, policies, direct)


def test_a_manager_reads_both_tokens_and_the_tls_material_and_writes_only_the_tokens(dev):
    for path in ("join-token/worker", "join-token/manager", "tls/ca", "tls/cert", "tls/key"):
        assert reads(dev, "manager", dev, path), path
    assert writes(dev, "manager", "join-token/worker") and writes(dev, "manager", "join-token/manager")
    assert not writes(dev, "manager", "tls/key")


# The AWS calls of the agent, found in its source: `<client>.<method>(...)` on these clients.
AGENT_SOURCE = REPO / "agent" / "src" / "restdemo_agent"


CLIENTS = {"sqs", "autoscaling", "ec2", "ecr", "ssm", "dynamodb", "cloudwatch", "secretsmanager", "sts", "elbv2"}
# boto3's client names whose IAM prefix is another.
IAM_PREFIX = {"elbv2": "elasticloadbalancing"}
# Calls only a worker's agent makes: its metrics (a manager's go out as EMF in its log lines), and
# who it is (GetCallerIdentity, which needs no permission: IAM User Guide, "GetCallerIdentity").
WORKERS_ONLY = {"cloudwatch:PutMetricData", "sts:GetCallerIdentity"}
# Calls a manager's agent makes only on a stack that keeps secrets in AWS (restdemo:awsSecrets).
KEPT_SECRETS_ONLY = {"secretsmanager:GetSecretValue"}


# Implied by the agent's calls: SecureString reads decrypt, writes encrypt (through SSM).
IMPLIED = {"kms:Decrypt", "kms:Encrypt"}


# Called on the node, not by the agent: dockerd pulls from ECR after cloud-init's
# `aws ecr get-login-password`; cloud-init reads the TLS material with `aws ssm get-parameter`;
# the awslogs driver and Session Manager write the log group; the SSM agent serves sessions.
OUTSIDE_THE_AGENT = {
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ssm:GetParameter",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogStreams",
    "logs:DescribeLogGroups",
    *SESSION_MANAGER_ACTIONS,
}


def watchdog_calls(role: str = "worker") -> set[str]:
    """IAM actions of a role's engine watchdog's AWS CLI calls (`aws <service> <operation-name>`)."""
    from infra.swarm.cloud_init import watchdog_script
    from tests.support.agent_env import worker_node_with

    script = watchdog_script(worker_node_with(role=role))
    calls = re.findall(r"\baws(?:_call)? ([a-z0-9]+) ([a-z-]+)", script)
    return {f"{service}:{''.join(word.title() for word in operation.split('-'))}" for service, operation in calls}


def test_the_watchdog_calls_exactly_what_it_is_allowed(dev):
    """A worker's: its own lifecycle state; a manager's also the group and the replacement lease. The
    replacement itself is a power-off, no AWS call."""
    assert watchdog_calls() == {"autoscaling:DescribeAutoScalingInstances"}
    assert watchdog_calls("manager") == {
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeAutoScalingGroups",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    }
    assert watchdog_calls("manager") <= actions_of(dev.policies["manager"])


def agent_calls() -> set[str]:
    """IAM actions of every AWS call in the agent's source, named through botocore's own mapping."""
    found = set()
    for path in Path(AGENT_SOURCE).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = node.func.value
            name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
            if name in CLIENTS:
                client = boto3.client(name, region_name=REGION)
                found.add(f"{IAM_PREFIX.get(name, name)}:{client.meta.method_to_api_mapping[node.func.attr]}")
    return found


def actions_of(policy: dict) -> set[str]:
    return {a for s in policy["Statement"] for a in s["Action"]}


def test_the_agent_calls_are_the_ones_found():
    """The scan itself: it finds the calls known to be there (a scan finding nothing would pass)."""
    calls = agent_calls()
    assert {"sqs:ReceiveMessage", "autoscaling:CompleteLifecycleAction", "dynamodb:PutItem"} <= calls
    assert {"ssm:PutParameter", "ec2:DescribeInstances", "ecr:GetAuthorizationToken"} <= calls


def test_a_manager_holds_exactly_what_its_node_calls(dev, kept):
    assert (
        actions_of(dev.policies["manager"])
        == (agent_calls() - WORKERS_ONLY - KEPT_SECRETS_ONLY) | IMPLIED | OUTSIDE_THE_AGENT
    )
    assert actions_of(kept.policies["manager"]) == (agent_calls() - WORKERS_ONLY) | IMPLIED | OUTSIDE_THE_AGENT


@pytest.fixture(scope="module")
def kept() -> StackAccess:
    """dev with the tests' Compose app, its secret kept in Secrets Manager."""
    from tests.support.stack_variants import COMPOSE_AWS_SECRETS_VARIANT, variant_run

    return access_of("dev", variant_run("dev", COMPOSE_AWS_SECRETS_VARIANT))


SECRETS_MANAGER = f"secretsmanager.{REGION}.amazonaws.com"


def decrypts_kept(access: StackAccess, role: str, arn: str, via: str = SECRETS_MANAGER) -> bool:
    """Secrets Manager decrypting `arn`'s value for the role, under a key of the secret owner's whose
    policy leaves it to IAM (the account's own key policy)."""
    context = {"kms:EncryptionContext:SecretARN": arn, "kms:ViaService": via}
    return identity_allows([access.policies[role]], Request(access.role(role), "kms:Decrypt", "arn:aws:kms:*", context))


def test_only_managers_read_the_secrets_kept_in_aws_and_only_those(kept, dev):
    from tests.support.stack_variants import GREETING_ARN

    other = GREETING_ARN.replace("greeting", "another")
    assert can(kept, "manager", "secretsmanager:GetSecretValue", GREETING_ARN)
    assert decrypts_kept(kept, "manager", GREETING_ARN)
    assert not can(kept, "manager", "secretsmanager:GetSecretValue", other)
    assert not decrypts_kept(kept, "manager", other)
    assert not decrypts_kept(kept, "manager", GREETING_ARN, via=SSM.replace("ssm", "s3"))  # only through the service
    assert not can(kept, "worker", "secretsmanager:GetSecretValue", GREETING_ARN)
    assert not decrypts_kept(kept, "worker", GREETING_ARN)
    assert not can(dev, "manager", "secretsmanager:GetSecretValue", GREETING_ARN)  # a stack that names none


def test_a_parameter_kept_in_aws_is_read_through_ssm_with_its_own_context():
    from infra.swarm.iam import StackArns, kept_secret_statements

    parameter = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/shop/api-key"
    arns = StackArns(region=REGION, account=ACCOUNT, stack="dev", ssm_prefix="/restdemo/dev", kept_secrets=[parameter])
    policy = {"Statement": kept_secret_statements(arns)}
    role = f"arn:aws:iam::{ACCOUNT}:role/r"
    context = {"kms:EncryptionContext:PARAMETER_ARN": parameter, "kms:ViaService": SSM}
    assert identity_allows([policy], Request(role, "ssm:GetParameter", parameter))
    assert identity_allows([policy], Request(role, "kms:Decrypt", "arn:aws:kms:*", context))
    assert not identity_allows([policy], Request(role, "secretsmanager:GetSecretValue", parameter))
    assert kept_secret_statements(dataclasses.replace(arns, kept_secrets=[])) == []


def test_a_manager_is_allowed_each_agent_call_on_the_stacks_own_resources(dev):
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/restdemo-dev-state"
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:restdemo-dev-lifecycle"
    targets = {
        "dynamodb": [table],
        "sqs": [queue],
        "ssm": [dev.parameter("join-token/worker"), dev.parameter("join-token/manager")],
        "autoscaling:CompleteLifecycleAction": [dev.group("manager"), dev.group("worker")],
        "autoscaling:RecordLifecycleActionHeartbeat": [dev.group("manager"), dev.group("worker")],
        "autoscaling:SetInstanceHealth": [dev.group("manager")],  # recover: the lost managers
        "autoscaling:SetInstanceProtection": [dev.group("worker")],  # a scaling group's last replicas
        "autoscaling:UpdateAutoScalingGroup": [dev.group("worker")],  # its on-demand base (spot fallback)
        "elasticloadbalancing:DeregisterTargets": [WEB_TARGET_GROUP],  # a reclaimed spot worker
    }
    for action in agent_calls() - WORKERS_ONLY - KEPT_SECRETS_ONLY:
        for resource in targets.get(action, targets.get(action.split(":")[0], ["*"])):
            assert can(dev, "manager", action, resource), (action, resource)
    assert not can(dev, "manager", "dynamodb:PutItem", table.replace("restdemo-dev", "restdemo-prod"))
    assert not can(dev, "manager", "autoscaling:SetInstanceProtection", dev.group("manager"))
    assert not can(dev, "manager", "autoscaling:UpdateAutoScalingGroup", dev.group("manager"))
    assert not can(dev, "manager", "elasticloadbalancing:DeregisterTargets", WEB_TARGET_GROUP.replace("web", "admin"))


def test_a_worker_holds_nothing_its_node_does_not_call(dev):
    worker = actions_of(dev.policies["worker"])
    assert worker <= agent_calls() | watchdog_calls() | IMPLIED | OUTSIDE_THE_AGENT
    assert worker - OUTSIDE_THE_AGENT == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",  # its own interruption notice and CPU record only
        "kms:Decrypt",
        "autoscaling:DescribeAutoScalingInstances",  # the watchdog's
        "cloudwatch:PutMetricData",  # its own metrics, in the workers' namespace only
    }
    assert "ssm:GetParameter" in worker  # its token


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_one_stacks_roles_are_denied_another_stacks_parameters(dev, prod, role):
    for path in ("join-token/worker", "join-token/manager", "tls/key"):
        assert not reads(dev, role, prod, path), path
        assert not reads(prod, role, dev, path), path
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/restdemo-prod-state"
    assert not can(dev, role, "dynamodb:GetItem", table)


# The worker's permissions before this change (infra/swarm/iam.py at bfb3972): the lifecycle queue and
# lifecycle actions of both groups, the AWS-managed AmazonSSMManagedInstanceCore (its parameter
# read statement), and SecureStrings under the account's aws/ssm key.
TODAYS_WORKER = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"],
            "Resource": [f"arn:aws:sqs:{REGION}:{ACCOUNT}:restdemo-dev-lifecycle"],
        },
        {
            "Effect": "Allow",
            "Action": ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
            "Resource": [
                f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/restdemo-dev-managers",
                f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/restdemo-dev-workers",
            ],
        },
        {"Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters"], "Resource": "*"},
    ]
}


# The AWS managed key aws/ssm's policy (KMS Developer Guide, "AWS managed keys"): every principal
# of the account, through SSM.
AWS_SSM_KEY_POLICY = {
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": SSM}},
        }
    ]
}


def test_todays_worker_role_fails_the_checks(dev, prod):
    old = StackAccess(
        "dev", {"worker": TODAYS_WORKER}, AWS_SSM_KEY_POLICY, f"arn:aws:kms:{REGION}:{ACCOUNT}:key/aws-ssm"
    )
    old_prod = StackAccess("prod", {}, AWS_SSM_KEY_POLICY, old.key)
    assert reads(old, "worker", old, "join-token/manager")  # a worker joins as a manager
    assert reads(old, "worker", old, "tls/key")
    assert reads(old, "worker", old_prod, "join-token/manager")  # ... of prod, from dev
    assert can(old, "worker", "autoscaling:CompleteLifecycleAction", old.group("manager"))
    assert can(old, "worker", "sqs:ReceiveMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:restdemo-dev-lifecycle")


@pytest.mark.parametrize("routes", [1, 10, 37])  # 37: the most the budget takes
def test_a_full_budget_of_secrets_kept_in_aws_and_routes_fits_the_managers_role_policy(routes):
    """The settings' budget for awsSecrets' and the web target groups' ARNs, spent, on a long stack name
    and ARNs at their longest: the managers' policy stays within IAM's 10,240 characters (whitespace
    aside)."""
    from infra.config.settings import KEPT_SECRETS_POLICY_BUDGET, TARGET_GROUP_ARN_CHARS, kept_secrets_policy_size
    from infra.swarm.iam import StackArns, group_arn, role_statements

    stack = "s" * 40
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:" + "n" * 400 + "-Ab12Cd"
    left = KEPT_SECRETS_POLICY_BUDGET - routes * TARGET_GROUP_ARN_CHARS
    kept = [arn.replace("nnnn", f"{i:04d}", 1) for i in range(left // (2 * (len(arn) + 3)))]
    assert kept_secrets_policy_size(kept) <= left
    target_group = (
        f"arn:aws:elasticloadbalancing:ap-southeast-2:{ACCOUNT}:targetgroup/" + "w" * 28 + "{:04d}/" + "f" * 16
    )
    assert len(target_group.format(0)) + 3 == TARGET_GROUP_ARN_CHARS
    arns = StackArns(
        region=REGION,
        account=ACCOUNT,
        stack=stack,
        ssm_prefix=f"/restdemo/{stack}",
        table=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/restdemo-{stack}-state",
        queue=f"arn:aws:sqs:{REGION}:{ACCOUNT}:restdemo-{stack}-lifecycle",
        log_groups={
            role: [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/restdemo/{stack}/{role}s/{w}" for w in ("a", "b", "c")]
            for role in ("manager", "worker")
        },
        repositories=[f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/service-{i}-{stack}" for i in range(4)],
        groups={role: group_arn(REGION, ACCOUNT, f"restdemo-{stack}-{role}s") for role in ("manager", "worker")},
        key=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/5ee2f27f-d38e-5f75-8f1f-9b176e7c9786",
        kept_secrets=kept,
        web_target_groups=[target_group.format(i) for i in range(routes)],
    )
    document = json.dumps({"Version": "2012-10-17", "Statement": role_statements(arns, "manager")})
    size = len(re.sub(r"\s", "", document))
    assert 9000 < size <= 10240, size  # near the limit: the budget is what is left of it
