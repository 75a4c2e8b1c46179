"""Reading an AWS stack's registered resources: the names the program gives them, in one place."""

from __future__ import annotations

import base64
import json

from tests.support.pulumi_program import STACKS, ProgramRun, stack_config

AWS_STACKS = [s for s in STACKS if stack_config(s)["restdemo:platform"] == "aws"]
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
GROUP = "aws:autoscaling/group:Group"


def config(run: ProgramRun, key: str):
    """A value of the stack file the run was made from."""
    return stack_config(run.stack)[f"restdemo:{key}"]


def group(run: ProgramRun, role: str) -> dict:
    """The inputs of a role's auto scaling group."""
    return run.named(GROUP, f"swarm-{role}s-group").inputs


def user_data(run: ProgramRun, role: str) -> str:
    """A role's cloud-init, decoded from its launch template."""
    return base64.b64decode(
        run.named("aws:ec2/launchTemplate:LaunchTemplate", f"swarm-{role}s-template").inputs["userData"]
    ).decode()


def policy_of(run: ProgramRun, role: str) -> dict:
    """A node role's inline policy document."""
    return json.loads(run.named("aws:iam/rolePolicy:RolePolicy", f"swarm-{role}s-role").inputs["policy"])
