"""agent/src/restdemo_agent/spot_fallback.py: which activities are failed spot launches, the base the
workers' group should have; the model of spot capacity running out (tests/support/spot_capacity.py)
on its own; and the leader falling back to on-demand and back, against moto with that model."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from restdemo_agent.contract import ON_DEMAND_BASE_TAG, WORKERS_SPOT_FALLBACK
from restdemo_agent.spot_fallback import RETRY_SPOT_SECONDS, last_spot_failure, on_fallback, wanted_base
from tests.agent.test_agent import agent_on, lines
from tests.agent.test_aws import REGION, make_table
from tests.agent.test_metrics import Leader
from tests.support import spot_capacity

pytestmark = pytest.mark.unit

GROUP = "restdemo-dev-workers"
NOW = 1_796_700_000.0


def activity(code: str, message: str, at: float = NOW, description: str = "Launching a new EC2 instance.") -> dict:
    return {
        "StatusCode": code,
        "StatusMessage": message,
        "Description": description,
        "EndTime": datetime.fromtimestamp(at, UTC),
    }


def group(base: int, tag: str | None = "1", max_size: int = 4, desired: int = 4, running: int = 1) -> dict:
    return {
        "AutoScalingGroupName": GROUP,
        "MaxSize": max_size,
        "DesiredCapacity": desired,
        "Instances": [{"InstanceId": f"i-{n}", "LifecycleState": "InService"} for n in range(running)]
        + [{"InstanceId": "i-leaving", "LifecycleState": "Terminating:Wait"}],
        "MixedInstancesPolicy": {"InstancesDistribution": {"OnDemandBaseCapacity": base}},
        "Tags": [{"Key": ON_DEMAND_BASE_TAG, "Value": tag}] if tag is not None else [],
    }


def test_only_a_failed_launch_for_want_of_spot_counts():
    spot = activity("Failed", spot_capacity.SPOT_FAILURE, NOW - 60)
    assert last_spot_failure([spot, activity("Failed", spot_capacity.SPOT_FAILURE, NOW - 600)]) == NOW - 60
    assert last_spot_failure([activity("Cancelled", "Could not launch Spot Instances. SpotMaxPriceTooLow")]) == NOW
    for other in (
        activity("Successful", ""),
        activity("Failed", "The image id '[ami-1]' does not exist. Launching EC2 instance failed."),
        activity("Failed", spot_capacity.SPOT_FAILURE, description="Terminating EC2 instance: i-1"),
    ):
        assert last_spot_failure([other]) is None


def test_the_missing_workers_launch_on_demand_for_an_hour_the_spot_ones_stay():
    """Within an hour of a failed spot launch the base is the on-demand workers the group runs plus
    those it is short: a base above that would have Auto Scaling replace its spot workers too."""
    failed = [activity("Failed", spot_capacity.SPOT_FAILURE, NOW - 60)]
    none = set()
    assert wanted_base(group(1), failed, none, NOW) == 4  # 1 on-demand running, 3 short (the leaving one not counted)
    spot = {"i-1", "i-2"}
    assert wanted_base(group(1, running=3), failed, spot, NOW) == 2  # i-0 on-demand, 1 short; i-1, i-2 stay spot
    assert wanted_base(group(4), failed, none, NOW) is None  # there already
    assert wanted_base(group(4), failed, none, NOW + RETRY_SPOT_SECONDS - 61) is None
    assert wanted_base(group(4), failed, none, NOW + RETRY_SPOT_SECONDS) == 1  # spot is tried again
    assert wanted_base(group(1), [], none, NOW) is None
    assert wanted_base(group(0, tag="2"), [], none, NOW) == 2  # the base setting changed: it reaches the group
    assert wanted_base(group(1, tag=None), failed, none, NOW) is None  # no base of the program's: not its to move
    assert wanted_base({"AutoScalingGroupName": GROUP, "MaxSize": 4}, failed, none, NOW) is None  # no mixed policy
    assert (on_fallback(group(4)), on_fallback(group(1)), on_fallback(group(1), 4), on_fallback(group(1, None))) == (
        True,
        False,
        True,
        None,
    )


@pytest.fixture
def aws(monkeypatch):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    spot_capacity.install()
    spot_capacity.reset()
    with mock_aws():
        names = ("dynamodb", "ssm", "ec2", "autoscaling", "cloudwatch")
        clients = {name: boto3.client(name, region_name=REGION) for name in names}
        make_table(clients["dynamodb"])
        yield clients
    spot_capacity.reset()


def spot_group(ec2, autoscaling, base: int = 1) -> None:
    """The workers' group as the program makes it: its mixed instances policy and its base's tag."""
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName="workers", LaunchTemplateData={"ImageId": image})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": "workers"},
                "Overrides": [{"InstanceType": "t3.small"}, {"InstanceType": "t3a.small"}],
            },
            "InstancesDistribution": {
                "OnDemandBaseCapacity": base,
                "OnDemandPercentageAboveBaseCapacity": 0,
                "SpotAllocationStrategy": "price-capacity-optimized",
            },
        },
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=0,
        AvailabilityZones=[f"{REGION}a"],
        Tags=[{"Key": ON_DEMAND_BASE_TAG, "Value": str(base), "PropagateAtLaunch": False}],
    )


def in_service(autoscaling) -> int:
    (found,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return len(found["Instances"])


def distribution(autoscaling) -> dict:
    (found,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
    return found["MixedInstancesPolicy"]


def test_the_model_launches_the_on_demand_share_only_and_records_the_spot_failure(aws):
    autoscaling = aws["autoscaling"]
    spot_group(aws["ec2"], autoscaling)
    spot_capacity.spot_unavailable(GROUP)
    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=3)
    assert in_service(autoscaling) == 1  # the base only
    (failed,) = autoscaling.describe_scaling_activities(AutoScalingGroupName=GROUP)["Activities"]
    assert (failed["StatusCode"], failed["StatusMessage"]) == ("Failed", spot_capacity.SPOT_FAILURE)
    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=4)
    assert len(autoscaling.describe_scaling_activities(AutoScalingGroupName=GROUP, MaxRecords=1)["Activities"]) == 1
    # The distribution alone, as UpdateAutoScalingGroup takes it: the launch template stays.
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=GROUP, MixedInstancesPolicy={"InstancesDistribution": {"OnDemandBaseCapacity": 4}}
    )
    policy = distribution(autoscaling)
    assert policy["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateName"] == "workers"
    assert policy["InstancesDistribution"]["OnDemandBaseCapacity"] == 4
    assert in_service(autoscaling) == 4
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=GROUP, MaxSize=5)  # names no policy: keeps it
    assert distribution(autoscaling)["InstancesDistribution"]["OnDemandBaseCapacity"] == 4


def test_the_leader_falls_back_to_on_demand_says_so_and_tries_spot_again_an_hour_later(aws, monkeypatch, capsys):
    autoscaling = aws["autoscaling"]
    spot_group(aws["ec2"], autoscaling)
    spot_capacity.spot_unavailable(GROUP)
    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=3)
    assert in_service(autoscaling) == 1

    leader = agent_on(Leader([]), aws)
    leader.fall_back_from_spot()
    assert distribution(autoscaling)["InstancesDistribution"] == {
        "OnDemandBaseCapacity": 3,  # the one on-demand worker it runs and the two it is short
        "OnDemandPercentageAboveBaseCapacity": 0,
        "SpotAllocationStrategy": "price-capacity-optimized",
    }
    assert in_service(autoscaling) == 3
    (logged,) = lines(capsys, "spot-fallback")
    assert (logged["on_demand_base"], logged["was"]) == (3, 1)
    assert leader.swarm_readings()[WORKERS_SPOT_FALLBACK] == 1

    leader.spot_checked_at = -1e18
    leader.fall_back_from_spot()  # still within the hour: nothing changes
    assert distribution(autoscaling)["InstancesDistribution"]["OnDemandBaseCapacity"] == 3

    later = time.time() + RETRY_SPOT_SECONDS + 1
    monkeypatch.setattr("restdemo_agent.agent.time.time", lambda: later)
    leader.spot_checked_at = -1e18
    leader.fall_back_from_spot()
    assert distribution(autoscaling)["InstancesDistribution"]["OnDemandBaseCapacity"] == 1
    assert leader.spot_fallback is False
    assert [json.loads(json.dumps(x))["on_demand_base"] for x in lines(capsys, "spot-fallback")] == [1]


def test_a_group_without_the_programs_base_is_left_alone_and_a_failing_call_is_logged(aws, capsys):
    from tests.support.moto_groups import empty_group

    empty_group(aws["ec2"], aws["autoscaling"], GROUP)
    leader = agent_on(Leader([]), aws)
    leader.fall_back_from_spot()
    assert leader.spot_fallback is None and lines(capsys, "spot-fallback") == []
    assert WORKERS_SPOT_FALLBACK not in leader.swarm_readings()
    aws["autoscaling"].delete_auto_scaling_group(AutoScalingGroupName=GROUP, ForceDelete=True)
    leader.spot_checked_at = -1e18
    leader.fall_back_from_spot()
    assert [line["kind"] for line in lines(capsys, "spot-fallback-error")] == ["ValueError"]


class RefusingAutoScaling:
    """Auto Scaling describing the short group, and refusing the update (throttled, say)."""

    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    def update_auto_scaling_group(self, **request):
        raise RuntimeError("Throttling: Rate exceeded")


def test_a_fallback_that_cannot_be_set_is_reported_all_the_same(aws, capsys):
    """The group is short of spot and the leader cannot raise its base: the alarm must not stay quiet."""
    autoscaling = aws["autoscaling"]
    spot_group(aws["ec2"], autoscaling)
    spot_capacity.spot_unavailable(GROUP)
    autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=3)
    leader = agent_on(Leader([]), aws)
    leader.lifecycle.autoscaling = RefusingAutoScaling(autoscaling)
    leader.fall_back_from_spot()
    assert leader.spot_fallback is True
    assert [line["message"] for line in lines(capsys, "spot-fallback-error")] == ["Throttling: Rate exceeded"]
