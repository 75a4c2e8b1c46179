"""The lifecycle model on its own: the AWS semantics it claims (tests/support/lifecycle_model.py)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.support.lifecycle_model import LAUNCHING, TERMINATING, LifecycleModel, install, model_for
from tests.support.moto_groups import empty_group

pytestmark = pytest.mark.unit

REGION = "eu-west-1"
ACCOUNT = "123456789012"
GROUP = "restdemo-dev-managers"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def asg(monkeypatch):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    install()
    with mock_aws():
        clients = {s: boto3.client(s, region_name=REGION) for s in ("autoscaling", "ec2", "sqs")}
        ec2 = clients["ec2"]
        image = empty_group(ec2, clients["autoscaling"], GROUP)
        instances = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2)["Instances"]]
        clients["autoscaling"].attach_instances(AutoScalingGroupName=GROUP, InstanceIds=instances)
        queue = clients["sqs"].create_queue(QueueName="restdemo-dev-lifecycle")["QueueUrl"]
        for name, transition in (("drain", TERMINATING), ("joined", LAUNCHING)):
            clients["autoscaling"].put_lifecycle_hook(
                AutoScalingGroupName=GROUP,
                LifecycleHookName=name,
                LifecycleTransition=transition,
                HeartbeatTimeout=60,
                DefaultResult="ABANDON" if transition == LAUNCHING else "CONTINUE",
                NotificationTargetARN=f"arn:aws:sqs:{REGION}:{ACCOUNT}:restdemo-dev-lifecycle",
                RoleARN=f"arn:aws:iam::{ACCOUNT}:role/hook",
                NotificationMetadata='{"role": "manager"}',
            )
        model = model_for(ACCOUNT, REGION)
        clock = Clock()
        model.clock = clock
        yield clients, instances, queue, model, clock
        model.actions.clear()
        model.events.clear()
        model.hooks.clear()
        model.replacing_groups.clear()
        model.health_replacements.clear()


def notifications(clients, queue) -> list[dict]:
    answer = clients["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def lifecycle_state(clients, instance) -> str | None:
    found = clients["autoscaling"].describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
    return found[0]["LifecycleState"] if found else None


def ec2_state(clients, instance) -> str:
    return clients["ec2"].describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_a_termination_waits_and_notifies_the_hooks_target(asg):
    clients, (instance, _), queue, model, _ = asg
    action = model.begin(GROUP, instance, TERMINATING)
    assert lifecycle_state(clients, instance) == "Terminating:Wait"
    (body,) = notifications(clients, queue)
    assert {k: body[k] for k in ("LifecycleHookName", "AutoScalingGroupName", "EC2InstanceId")} == {
        "LifecycleHookName": "drain",
        "AutoScalingGroupName": GROUP,
        "EC2InstanceId": instance,
    }
    assert (body["LifecycleTransition"], body["LifecycleActionToken"]) == (TERMINATING, action.token)
    assert body["NotificationMetadata"] == '{"role": "manager"}'


def test_completion_by_token_terminates_the_instance(asg):
    clients, (instance, other), _, model, _ = asg
    action = model.begin(GROUP, instance, TERMINATING)
    clients["autoscaling"].complete_lifecycle_action(
        LifecycleHookName="drain",
        AutoScalingGroupName=GROUP,
        LifecycleActionToken=action.token,
        LifecycleActionResult="CONTINUE",
    )
    assert (action.result, action.ended_by) == ("CONTINUE", "complete")
    assert lifecycle_state(clients, instance) is None and ec2_state(clients, instance) == "terminated"
    assert lifecycle_state(clients, other) == "InService"


def test_completion_by_instance_id_and_a_second_completion_is_refused(asg):
    clients, (instance, _), _, model, _ = asg
    model.begin(GROUP, instance, TERMINATING)
    complete = dict(LifecycleHookName="drain", AutoScalingGroupName=GROUP, LifecycleActionResult="CONTINUE")
    clients["autoscaling"].complete_lifecycle_action(**complete, InstanceId=instance)
    with pytest.raises(ClientError, match="No active Lifecycle Action found with instance"):
        clients["autoscaling"].complete_lifecycle_action(**complete, InstanceId=instance)


def test_heartbeats_hold_the_instance_until_the_timeout_then_the_default_result_applies(asg):
    clients, (instance, _), _, model, clock = asg
    action = model.begin(GROUP, instance, TERMINATING)
    clock.now += 50
    clients["autoscaling"].record_lifecycle_action_heartbeat(
        LifecycleHookName="drain", AutoScalingGroupName=GROUP, InstanceId=instance
    )
    clock.now += 50  # 100 s after the start, 50 s after the heartbeat: still waiting
    model.expire()
    assert lifecycle_state(clients, instance) == "Terminating:Wait" and model.heartbeats(instance) == 1
    clock.now += 11
    model.expire()
    assert (action.result, action.ended_by) == ("CONTINUE", "timeout")
    assert ec2_state(clients, instance) == "terminated"


def test_the_global_timeout_ends_a_wait_however_many_heartbeats(asg):
    """At most 100 heartbeat timeouts (60 s here: 6000 s) or 48 h, whichever is less."""
    clients, (instance, _), _, model, clock = asg
    action = model.begin(GROUP, instance, TERMINATING)
    beats = 0
    with pytest.raises(ClientError, match="No active Lifecycle Action"):
        while True:
            clock.now += 59
            clients["autoscaling"].record_lifecycle_action_heartbeat(
                LifecycleHookName="drain", AutoScalingGroupName=GROUP, LifecycleActionToken=action.token
            )
            beats += 1
    assert beats == 6000 // 59  # the first heartbeat at or past 6000 s finds the action ended
    assert (action.result, action.ended_by) == ("CONTINUE", "timeout")


def test_a_launch_waits_then_continue_puts_it_in_service_and_abandon_terminates(asg):
    clients, (first, second), queue, model, _ = asg
    joined = [model.begin(GROUP, instance, LAUNCHING) for instance in (first, second)]
    assert [lifecycle_state(clients, i) for i in (first, second)] == ["Pending:Wait", "Pending:Wait"]
    assert [b["LifecycleHookName"] for b in notifications(clients, queue)] == ["joined", "joined"]
    complete = dict(LifecycleHookName="joined", AutoScalingGroupName=GROUP)
    clients["autoscaling"].complete_lifecycle_action(**complete, InstanceId=first, LifecycleActionResult="CONTINUE")
    clients["autoscaling"].complete_lifecycle_action(
        **complete, LifecycleActionToken=joined[1].token, LifecycleActionResult="ABANDON"
    )
    assert lifecycle_state(clients, first) == "InService"
    assert ec2_state(clients, second) == "terminated"


def test_an_invalid_result_is_refused(asg):
    clients, (instance, _), _, model, _ = asg
    model.begin(GROUP, instance, TERMINATING)
    with pytest.raises(ClientError, match="Invalid LifecycleActionResult"):
        clients["autoscaling"].complete_lifecycle_action(
            LifecycleHookName="drain", AutoScalingGroupName=GROUP, InstanceId=instance, LifecycleActionResult="STOP"
        )


def test_the_model_is_per_account_and_region():
    assert model_for(ACCOUNT, REGION) is model_for(ACCOUNT, REGION)
    assert model_for(ACCOUNT, "us-east-1") is not model_for(ACCOUNT, REGION)
    assert isinstance(model_for(ACCOUNT, REGION), LifecycleModel)


def test_the_leader_finds_the_launches_a_hook_holds_and_lets_them_in(asg):
    """What the leader does each round for ready members (Agent.complete_launches): only instances
    in Pending:Wait are reported, with their group, and completing one puts it in service."""
    from restdemo_agent.aws import Lifecycle

    clients, (held, running), queue, model, _ = asg
    model.begin(GROUP, held, LAUNCHING)
    lifecycle = Lifecycle(clients["sqs"], clients["autoscaling"], queue)
    assert lifecycle.waiting_launches([held, running, "i-0000000000000dead"]) == {held: GROUP}
    assert lifecycle.complete_launch(GROUP, held) is True
    assert lifecycle_state(clients, held) == "InService"
    assert lifecycle.waiting_launches([held, running]) == {}
    assert lifecycle.complete_launch(GROUP, running) is False  # not held: nothing to complete


def test_an_instance_the_group_launches_itself_waits_on_the_launch_hook_too(asg):
    """An instance terminated outside the group: moto replaces it at once (as AWS keeps the desired
    capacity), and the replacement waits in Pending:Wait like any launch, not InService at once."""
    clients, (first, second), queue, model, _ = asg
    clients["ec2"].terminate_instances(InstanceIds=[first])
    group = clients["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    states = {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}
    (replacement,) = set(states) - {second}
    assert states == {second: "InService", replacement: "Pending:Wait"}
    assert [(b["LifecycleHookName"], b["EC2InstanceId"]) for b in notifications(clients, queue)] == [
        ("joined", replacement)
    ]


def test_an_unhealthy_instance_is_replaced_through_both_hooks_at_the_same_capacity(asg):
    """Health replacement, for a group the test names: the instance marked Unhealthy terminates
    through the termination hook, then its replacement waits on the launch hook; desired stays 2.
    A group not named replaces nothing (moto does not)."""
    clients, (sick, healthy), queue, model, clock = asg
    autoscaling = clients["autoscaling"]
    autoscaling.set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")
    model.replace_unhealthy()
    assert lifecycle_state(clients, sick) == "InService"  # not a replacing group yet
    model.replace_unhealthy_in(GROUP)
    model.replace_unhealthy()
    model.replace_unhealthy()  # at most one termination per marked instance
    assert lifecycle_state(clients, sick) == "Terminating:Wait"
    assert [(b["LifecycleHookName"], b["EC2InstanceId"]) for b in notifications(clients, queue)] == [("drain", sick)]
    clock.now += 61  # nobody drains it: the hook's timeout ends the wait
    model.expire()
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    states = {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}
    (replacement,) = set(states) - {healthy}
    assert states == {healthy: "InService", replacement: "Pending:Wait"} and group["DesiredCapacity"] == 2
    assert ec2_state(clients, sick) == "terminated"
    assert [(b["LifecycleHookName"], b["EC2InstanceId"]) for b in notifications(clients, queue)] == [
        ("joined", replacement)
    ]


def test_a_stopped_instance_is_unhealthy_and_replaced_like_a_marked_one(asg):
    """The EC2 health check: an instance not `running` is unhealthy at once (a node that powered
    itself off, as the engine watchdog and the agent have it do)."""
    clients, (stopped, healthy), _, model, clock = asg
    model.replace_unhealthy_in(GROUP)
    clients["ec2"].stop_instances(InstanceIds=[stopped])
    model.replace_unhealthy()
    group = clients["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    assert {i["InstanceId"]: i["HealthStatus"] for i in group["Instances"]} == {
        stopped: "Unhealthy",
        healthy: "Healthy",
    }
    assert lifecycle_state(clients, stopped) == "Terminating:Wait"
