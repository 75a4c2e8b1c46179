"""infra/config/tags.py: every taggable AWS resource says its project, stack and owner."""

from __future__ import annotations

import pytest

from tests.support.aws_stack import AWS_STACKS, GROUP

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


def test_every_taggable_aws_resource_carries_project_stack_owner(run):
    untaggable = {
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "aws:autoscaling/attachment:Attachment",
        "aws:autoscaling/lifecycleHook:LifecycleHook",
        "aws:kms/alias:Alias",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:cloudwatch/dashboard:Dashboard",
    }
    for resource in run.registered:
        if not resource.type.startswith("aws:") or resource.type in untaggable:
            continue
        if resource.type == GROUP:
            found = {t["key"]: t["value"] for t in resource.inputs["tags"]}
        else:
            found = resource.inputs.get("tags", {})
        assert {k: found.get(k) for k in ("project", "stack", "owner")} == {
            "project": "restdemo",
            "stack": run.stack,
            "owner": "platform-team",
        }, resource.type
