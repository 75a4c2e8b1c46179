"""infra/swarm/state.py: the table, queue, log group and session document the node agents share."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from infra.swarm.state import manager_shell
from tests.support.aws_stack import AWS_STACKS, config
from tests.support.pulumi_program import (
    kms_key_arn,
)

pytestmark = pytest.mark.unit
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


def test_session_manager_instead_of_ssh_logged_to_the_stack(run):
    # No AWS-managed policy on node roles: AmazonSSMManagedInstanceCore reads every parameter.
    assert run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    # One document per role, each logging to its role's sessions group: a worker writes no line into a
    # manager's session.
    for name, suffix, group in (
        ("swarm-state-session", "session", "sessions/managers"),
        ("swarm-state-worker-session", "worker-session", "sessions/workers"),
    ):
        document = run.named("aws:ssm/document:Document", name).inputs
        assert (document["name"], document["documentType"]) == (f"restdemo-{run.stack}-{suffix}", "Session")
        inputs = json.loads(document["content"])["inputs"]
        assert (inputs["cloudWatchLogGroupName"], inputs["cloudWatchStreamingEnabled"]) == (
            f"/restdemo/{run.stack}/{group}",
            True,
        )
    assert run.outputs["managerShell"] == manager_shell("eu-west-1", f"restdemo-{run.stack}-session", managers(run))


def managers(run) -> str:
    return run.named("aws:autoscaling/group:Group", "swarm-managers-group").inputs["name"]


# An `aws` CLI for the shell command alone: the group as describe-auto-scaling-groups answers, the
# --query applied with JMESPath (the CLI's own library), --output text; start-session prints its target.
FAKE_AWS = """#!{python}
import json, sys, jmespath
args = sys.argv[1:]
if args[:2] == ["autoscaling", "describe-auto-scaling-groups"]:
    answer = {{"AutoScalingGroups": [{{"Instances": {instances}}}]}}
    print(jmespath.search(args[args.index("--query") + 1], answer))
elif args[:2] == ["ssm", "start-session"]:
    print("session on", args[args.index("--target") + 1])
"""


@pytest.mark.parametrize(
    "instances,environment,target",
    [
        # The first listed is leaving and the second unhealthy: the shell opens on the third.
        (
            [
                {"InstanceId": "i-leaving", "LifecycleState": "Terminating:Wait", "HealthStatus": "Healthy"},
                {"InstanceId": "i-dead", "LifecycleState": "InService", "HealthStatus": "Unhealthy"},
                {"InstanceId": "i-good", "LifecycleState": "InService", "HealthStatus": "Healthy"},
            ],
            {},
            "i-good",
        ),
        (
            [{"InstanceId": "i-good", "LifecycleState": "InService", "HealthStatus": "Healthy"}],
            {"INSTANCE": "i-x"},
            "i-x",
        ),
    ],
)
def test_the_manager_shell_opens_on_a_healthy_manager_or_the_one_named(tmp_path, instances, environment, target):
    fake = tmp_path / "aws"
    fake.write_text(FAKE_AWS.format(python=sys.executable, instances=json.dumps(instances)))
    fake.chmod(0o755)
    command = manager_shell("eu-west-1", "restdemo-dev-session", "restdemo-dev-managers")
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", **environment}
    answer = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, check=True)
    assert answer.stdout == f"session on {target}\n"


def test_state_queue_logs_and_tls_parameters(run):
    table = run.named("aws:dynamodb/table:Table", "swarm-state-table").inputs
    assert (table["hashKey"], table["billingMode"]) == ("pk", "PAY_PER_REQUEST")
    assert run.named("aws:sqs/queue:Queue", "swarm-state-lifecycle").inputs["sqsManagedSseEnabled"] is True
    logs = run.named("aws:cloudwatch/logGroup:LogGroup", "swarm-state-logs").inputs
    assert (logs["name"], logs["retentionInDays"]) == (f"/restdemo/{run.stack}", config(run, "logRetentionDays"))
    parameters = {r.inputs["name"]: r for r in run.of_type("aws:ssm/parameter:Parameter")}
    assert sorted(parameters) == [f"/restdemo/{run.stack}/tls/{n}" for n in ("ca", "cert", "key")]
    assert all(p.inputs["type"] == "SecureString" for p in parameters.values())
    # Under the stack's own key, not the account-wide aws/ssm.
    assert {p.inputs["keyId"] for p in parameters.values()} == {
        kms_key_arn("eu-west-1", "secrets", run.stack).rpartition("/")[2]
    }
    assert "value" in parameters[f"/restdemo/{run.stack}/tls/key"].secret_paths


def test_only_the_swarms_log_group_extracts_metrics(run):
    """The swarm's group (/restdemo/<stack>, the managers' agents) is Standard; the others are
    Infrequent Access, which extracts no EMF and runs no metric filter (CloudWatch Logs "Log
    classes"): what a worker writes there becomes no metric."""
    classes = {r.inputs["name"]: r.inputs.get("logGroupClass", "STANDARD") for r in run.of_type(LOG_GROUP)}
    stack = run.stack
    assert classes == {
        f"/restdemo/{stack}": "STANDARD",
        f"/restdemo/{stack}/managers": "INFREQUENT_ACCESS",
        f"/restdemo/{stack}/workers": "INFREQUENT_ACCESS",
        f"/restdemo/{stack}/sessions/managers": "INFREQUENT_ACCESS",
        f"/restdemo/{stack}/sessions/workers": "INFREQUENT_ACCESS",
    }
