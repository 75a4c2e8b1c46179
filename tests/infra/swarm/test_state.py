"""infra/swarm/state.py: the table, queue, log group and session document the node agents share."""

from __future__ import annotations

import json

import pytest

from tests.support.aws_stack import AWS_STACKS, config
from tests.support.pulumi_program import (
    kms_key_arn,
)

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


def test_session_manager_instead_of_ssh_logged_to_the_stack(run):
    # No AWS-managed policy on node roles: AmazonSSMManagedInstanceCore reads every parameter.
    assert run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    document = run.named("aws:ssm/document:Document", "swarm-state-session").inputs
    assert (document["name"], document["documentType"]) == (f"restdemo-{run.stack}-session", "Session")
    inputs = json.loads(document["content"])["inputs"]
    assert (inputs["cloudWatchLogGroupName"], inputs["cloudWatchStreamingEnabled"]) == (f"/restdemo/{run.stack}", True)
    assert run.outputs["managerShell"].startswith(
        f"aws ssm start-session --region eu-west-1 --document-name restdemo-{run.stack}-session --target $("
    )


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
