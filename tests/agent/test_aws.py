"""The agent's AWS side against moto: the claim race, tokens as SecureString, the lifecycle queue,
and lifecycle completion (which moto lacks: asserted on the request botocore would send)."""

from __future__ import annotations

import base64
import json
import threading

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.server import ThreadedMotoServer

from restdemo_agent.aws import (
    Lifecycle,
    LifecycleMessage,
    SwarmState,
    other_members_running,
    registry_auth_header,
    running_instances,
    stack_instances,
)
from tests.support.moto_groups import empty_group
from tests.support.net import free_port

pytestmark = pytest.mark.unit

REGION = "eu-west-1"
TABLE = "restdemo-dev-state"
PREFIX = "/restdemo/dev"
KEY = "alias/restdemo-dev"


def make_table(dynamodb):
    dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )


@pytest.fixture
def aws_env(monkeypatch):
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", REGION),
    ):
        monkeypatch.setenv(name, value)


@pytest.fixture
def state(aws_env):
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        make_table(dynamodb)
        yield SwarmState(dynamodb, boto3.client("ssm", region_name=REGION), TABLE, PREFIX, KEY)


@pytest.fixture
def moto_server(aws_env):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_many_bootstraps_at_once_make_exactly_one_primary(moto_server):
    make_table(boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_server))
    winners, barrier = [], threading.Barrier(12)

    def bootstrap(index: int):
        state = SwarmState(
            boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_server), None, TABLE, PREFIX, KEY
        )
        barrier.wait()
        if state.claim_primary(f"10.0.0.{index}", f"i-{index}", 1000.0):
            winners.append(index)

    threads = [threading.Thread(target=bootstrap, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    record = SwarmState(
        boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_server), None, TABLE, PREFIX, KEY
    ).primary()
    assert record == {
        "pk": "primary_manager",
        "address": f"10.0.0.{winners[0]}",
        "instance_id": f"i-{winners[0]}",
        "status": "initialising",
        "updated": "1000",
    }


def test_the_winner_records_its_node_and_only_the_expected_instance_is_taken_over(state):
    assert state.claim_primary("10.0.0.1", "i-1", 1000.0)
    assert not state.claim_primary("10.0.0.2", "i-2", 1000.0)
    assert state.mark_ready("10.0.0.1", "i-1", "node-1", 1001.0)
    assert state.primary()["node_id"] == "node-1" and state.primary()["status"] == "ready"
    assert state.primary()["updated"] == "1001"
    # i-3 takes over from i-1; a second taker who still expects i-1 loses.
    assert state.mark_ready("10.0.0.3", "i-3", "node-3", 1002.0, expected_instance="i-1")
    assert not state.mark_ready("10.0.0.4", "i-4", "node-4", 1002.0, expected_instance="i-1")
    assert state.primary()["instance_id"] == "i-3"


def test_a_stale_record_is_claimed_by_exactly_one_of_two_claimants(state):
    assert state.claim_primary("10.0.0.1", "i-1", 1000.0)
    seen = state.primary()
    assert state.claim_primary("10.0.0.2", "i-2", 2000.0, stale=seen)
    assert not state.claim_primary("10.0.0.3", "i-3", 2000.0, stale=seen)  # read the same record, lost
    assert (state.primary()["instance_id"], state.primary()["status"]) == ("i-2", "initialising")


def test_tokens_are_stored_as_securestring_under_the_stacks_key(state):
    assert state.token("worker") is None
    state.store_tokens({"worker": "SWMTKN-1-worker", "manager": "SWMTKN-1-manager"})
    parameter = state.ssm.get_parameter(Name=f"{PREFIX}/join-token/worker")["Parameter"]
    assert parameter["Type"] == "SecureString"
    # Not the account's aws/ssm key, which every principal in the account may use through SSM.
    assert parameter["Value"] == f"kms:{KEY}:SWMTKN-1-worker"
    assert state.token("worker") == "SWMTKN-1-worker" and state.token("manager") == "SWMTKN-1-manager"
    state.store_tokens({"worker": "SWMTKN-1-rotated"})
    assert state.token("worker") == "SWMTKN-1-rotated"


def notification(instance: str, group: str = "restdemo-dev-workers") -> str:
    return json.dumps(
        {
            "LifecycleHookName": "drain",
            "AutoScalingGroupName": group,
            "LifecycleActionToken": f"5a3bc3f2-0000-4000-8000-{instance[-3:].rjust(12, '0')}",
            "EC2InstanceId": instance,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        }
    )


def test_queue_messages_for_other_instances_are_left_for_them(aws_env):
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="restdemo-dev-lifecycle")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"Event": "autoscaling:TEST_NOTIFICATION"}))
        sqs.send_message(QueueUrl=url, MessageBody=notification("i-other"))
        sqs.send_message(QueueUrl=url, MessageBody=notification("i-me"))
        lifecycle = Lifecycle(sqs, None, url)
        messages = lifecycle.receive(wait_seconds=0)
        assert sorted(m.body["EC2InstanceId"] for m in messages) == ["i-me", "i-other"]
        mine = next(m for m in messages if m.body["EC2InstanceId"] == "i-me")
        other = next(m for m in messages if m.body["EC2InstanceId"] == "i-other")
        lifecycle.leave_for_others(other)
        lifecycle.done(mine)
        again = lifecycle.receive(wait_seconds=0)
        assert [m.body["EC2InstanceId"] for m in again] == ["i-other"]  # visible again, for its own node


def test_lifecycle_completion_and_heartbeat_requests(aws_env):
    # moto raises NotImplemented for these calls: assert on the exact requests instead.
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    message = LifecycleMessage("receipt", json.loads(notification("i-0abc")))
    expected = {
        "LifecycleHookName": "drain",
        "AutoScalingGroupName": "restdemo-dev-workers",
        "LifecycleActionToken": "5a3bc3f2-0000-4000-8000-000000000abc",
        "InstanceId": "i-0abc",
    }
    with Stubber(autoscaling) as stub:
        stub.add_response("record_lifecycle_action_heartbeat", {}, expected)
        stub.add_response("complete_lifecycle_action", {}, {**expected, "LifecycleActionResult": "CONTINUE"})
        lifecycle = Lifecycle(None, autoscaling, "url")
        lifecycle.heartbeat(message)
        lifecycle.complete(message)
        stub.assert_no_pending_responses()


def test_running_instances_ignores_terminated_ones(aws_env):
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3)["Instances"]]
        ec2.terminate_instances(InstanceIds=[ids[0]])
        assert running_instances(ec2, ids) == set(ids[1:])
        assert running_instances(ec2, []) == set()


def test_registry_auth_header_carries_a_fresh_ecr_login(aws_env):
    with mock_aws():
        ecr = boto3.client("ecr", region_name=REGION)
        header = registry_auth_header(ecr, "123456789012.dkr.ecr.eu-west-1.amazonaws.com")
    auth = json.loads(base64.urlsafe_b64decode(header))
    assert auth["username"] == "AWS" and auth["password"]
    assert auth["serveraddress"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def test_the_leader_seen_record_is_per_manager_and_absent_until_written(state):
    assert state.leader_seen("node-a") is None
    state.note_leader_seen("node-a", "i-a", 1000.4)
    state.note_leader_seen("node-b", "i-b", 990)
    assert (state.leader_seen("node-a"), state.leader_seen("node-b")) == (1000.0, 990.0)
    assert state.primary() is None  # a record of its own: the primary record is untouched


def test_other_members_running_leaves_out_itself_the_stopped_and_the_leaving(aws_env):
    from moto.autoscaling.models import autoscaling_backends

    with mock_aws():
        ec2, autoscaling = boto3.client("ec2", region_name=REGION), boto3.client("autoscaling", region_name=REGION)
        image = empty_group(ec2, autoscaling, "managers")
        me, other, stopped, leaving = (
            i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=4, MaxCount=4)["Instances"]
        )
        autoscaling.attach_instances(AutoScalingGroupName="managers", InstanceIds=[me, other, stopped, leaving])
        ec2.stop_instances(InstanceIds=[stopped])
        assert other_members_running(autoscaling, ec2, "managers", me) == sorted([other, leaving])
        # What a termination hook holds (moto has no hooks: the state is set as AWS would show it).
        for instance in autoscaling_backends["123456789012"][REGION].autoscaling_groups["managers"].instance_states:
            if instance.instance.id == leaving:
                instance.lifecycle_state = "Terminating:Wait"
        assert other_members_running(autoscaling, ec2, "managers", me) == [other]


def test_one_recovery_at_a_time_whichever_survivor_runs_it(state):
    assert state.claim_recovery("node-a", 1000, hold_seconds=600) is None
    assert state.claim_recovery("node-b", 1100, hold_seconds=600) == {
        "pk": "recovery",
        "node_id": "node-a",
        "updated": "1000",
    }
    assert state.claim_recovery("node-a", 1200, hold_seconds=600) is None  # its own, run again
    assert state.claim_recovery("node-b", 1900, hold_seconds=600) is None  # a's claim has lapsed


def test_stack_instances_are_the_running_members_of_the_stacks_groups_by_address(aws_env):
    with mock_aws():
        ec2, autoscaling = boto3.client("ec2", region_name=REGION), boto3.client("autoscaling", region_name=REGION)
        for group in ("restdemo-dev-managers", "restdemo-dev-workers", "someone-elses"):
            image = empty_group(ec2, autoscaling, group)

        def launch(group):
            instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
            autoscaling.attach_instances(AutoScalingGroupName=group, InstanceIds=[instance["InstanceId"]])
            return instance["InstanceId"], instance["PrivateIpAddress"], instance["Placement"]["AvailabilityZone"]

        manager, worker, stopped, foreign = (
            launch(g)
            for g in ("restdemo-dev-managers", "restdemo-dev-workers", "restdemo-dev-workers", "someone-elses")
        )
        ec2.stop_instances(InstanceIds=[stopped[0]])
        found = stack_instances(
            autoscaling, ec2, {"manager": "restdemo-dev-managers", "worker": "restdemo-dev-workers"}
        )
    assert found == {
        manager[1]: {"instance_id": manager[0], "zone": manager[2], "role": "manager"},
        worker[1]: {"instance_id": worker[0], "zone": worker[2], "role": "worker"},
    }
    assert foreign[1] not in found and stopped[1] not in found
