"""infra/swarm/node_group.py: a role's auto scaling group, launch template and lifecycle hooks."""

from __future__ import annotations

import json

import pytest

from tests.support.aws_stack import AWS_STACKS, GROUP, config, group, user_data
from tests.support.pulumi_program import (
    AMI_ID,
    run_program,
    stack_config,
)

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


def test_groups_use_ec2_health_checks_and_managers_wait_for_ready_capacity(run):
    managers, workers = group(run, "manager"), group(run, "worker")
    assert managers["healthCheckType"] == workers["healthCheckType"] == "EC2"
    assert managers["targetGroupArns"] == ["arn:aws:lb:eu-west-1:123456789012:admin"]
    assert managers["waitForElbCapacity"] == config(run, "managerCount")
    assert "waitForElbCapacity" not in workers
    assert workers["targetGroupArns"] == ["arn:aws:lb:eu-west-1:123456789012:web"]


def test_managers_stay_in_the_alb_after_the_next_update(run):
    """Defect: the group's Optional+Computed target_group_arns, set to the admin NLB only, would
    detach the separately attached web target group on the next plan. Now both target groups are
    Attachments and the group ignores its own view of them after creation."""
    managers = run.named(GROUP, "swarm-managers-group")
    assert managers.ignore_changes == ["targetGroupArns"]
    attached = {
        a.inputs["lbTargetGroupArn"]
        for a in run.of_type("aws:autoscaling/attachment:Attachment")
        if a.inputs["autoscalingGroupName"] == managers.inputs["name"]
    }
    assert attached == {"arn:aws:lb:eu-west-1:123456789012:admin", "arn:aws:lb:eu-west-1:123456789012:web"}
    workers = run.named(GROUP, "swarm-workers-group")
    # Its on-demand base is the leader's while spot launches fail (restdemo_agent.spot_fallback).
    assert workers.ignore_changes == ["mixedInstancesPolicy.instancesDistribution.onDemandBaseCapacity"]
    assert not any(
        a.inputs["autoscalingGroupName"] == workers.inputs["name"]
        for a in run.of_type("aws:autoscaling/attachment:Attachment")
    )


def test_group_sizes_and_subnets_span_the_zones(run):
    managers, workers = group(run, "manager"), group(run, "worker")
    assert managers["minSize"] == managers["maxSize"] == managers["desiredCapacity"] == config(run, "managerCount")
    assert workers["minSize"] == workers["maxSize"] == workers["desiredCapacity"] == config(run, "workerCount")
    private = "restdemo:privateSubnetCidrs" in stack_config(run.stack)
    kind = "private" if private else "public"
    subnets = {
        f"network-{kind}-{i}-id": run.named("aws:ec2/subnet:Subnet", f"network-{kind}-{i}").inputs
        for i in range(len(config(run, "publicSubnetCidrs")))
    }
    for node_group in (managers, workers):
        assert node_group["vpcZoneIdentifiers"] == list(subnets)
    zones = {s["availabilityZone"] for s in subnets.values()}
    assert len(zones) == (3 if run.stack in ("prod", "staging") else 2)
    for subnet in subnets.values():
        assert subnet["mapPublicIpOnLaunch"] is (not private)


@pytest.mark.parametrize("role,size_key", [("manager", "managerCount"), ("worker", "workerCount")])
def test_instance_refresh_launches_before_it_terminates(run, role, size_key):
    refresh = group(run, role)["instanceRefresh"]
    size = config(run, size_key)
    assert refresh["strategy"] == "Rolling"
    assert refresh["preferences"]["minHealthyPercentage"] == 100
    assert refresh["preferences"]["maxHealthyPercentage"] == min(200, 100 + -(-100 // max(size, 1)))
    assert refresh["preferences"]["maxHealthyPercentage"] > 100


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_termination_lifecycle_hook_sends_to_the_one_queue(run, role):
    (initial,) = group(run, role)["initialLifecycleHooks"]
    hook = run.named("aws:autoscaling/lifecycleHook:LifecycleHook", f"swarm-{role}s-drain").inputs
    assert hook["autoscalingGroupName"] == group(run, role)["name"]
    # The same hook: present from the first launch, then kept current by its own resource.
    assert {k: v for k, v in initial.items() if k != "heartbeatTimeout"} == {
        k: v for k, v in hook.items() if k not in ("heartbeatTimeout", "autoscalingGroupName")
    }
    assert hook["name"] == "drain"
    assert hook["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert (initial["heartbeatTimeout"], hook["heartbeatTimeout"]) == (3600, 600)
    assert hook["defaultResult"] == "CONTINUE"
    assert hook["notificationTargetArn"] == f"arn:aws:sqs:eu-west-1:123456789012:restdemo-{run.stack}-lifecycle"
    assert hook["roleArn"] == "arn:aws:iam::123456789012:role/swarm-state-lifecycle-hook"
    assert json.loads(hook["notificationMetadata"]) == {"role": role, "stack": run.stack}


def without_drain_timeout(run) -> dict:
    return {r.name: r.inputs for r in run.of_type(GROUP)}


def test_a_new_drain_timeout_changes_no_auto_scaling_group_input():
    """Defect: initial_lifecycle_hooks is ForceNew on a named group (delete-first: every node gone)."""
    before = run_program("prod")
    after = run_program("prod", {**stack_config("prod"), "restdemo:drainTimeout": "25m"})
    assert without_drain_timeout(after) == without_drain_timeout(before)
    hooks = {r.name: r.inputs["heartbeatTimeout"] for r in after.of_type("aws:autoscaling/lifecycleHook:LifecycleHook")}
    assert hooks == {
        "swarm-managers-drain": 1500,
        "swarm-workers-drain": 1500,
        "swarm-managers-joined": 1200,
        "swarm-workers-joined": 1200,
    }


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_launch_templates_require_imdsv2_encrypt_disks_and_have_no_key_pair(run, role):
    template = run.named("aws:ec2/launchTemplate:LaunchTemplate", f"swarm-{role}s-template").inputs
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (disk,) = template["blockDeviceMappings"]
    assert disk["ebs"]["encrypted"] == "true" and disk["ebs"]["volumeType"] == "gp3"
    assert "keyName" not in template
    assert template["imageId"] == AMI_ID
    (call,) = [args for token, args in run.calls if token == "aws:ec2/getAmi:getAmi"]
    assert call["owners"] == ["amazon"]
    assert call["filters"] == [
        {"name": "name", "values": [config(run, "nodeAmi")]},
        {"name": "architecture", "values": ["x86_64"]},
    ]


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_a_new_node_is_held_until_its_agent_reports_it_a_member(run, role):
    """The refresh waits for a real member: the agent completes the `joined` launch hook once it is
    one; a node that never joins is abandoned and replaced."""
    hook = run.named("aws:autoscaling/lifecycleHook:LifecycleHook", f"swarm-{role}s-joined").inputs
    assert hook == {
        "name": "joined",
        "autoscalingGroupName": group(run, role)["name"],
        "lifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
        "heartbeatTimeout": 1200,
        "defaultResult": "ABANDON",
    }
    env = user_data(run, role)
    assert f"RESTDEMO_GROUP_NAME={group(run, role)['name']}" in env
    assert "RESTDEMO_BOOTSTRAP_TIMEOUT=900" in env  # gives up (and asks to be replaced) before the hook does


def test_workers_buy_spot_as_their_stack_says_and_managers_always_on_demand(run):
    """dev and staging: every worker spot; prod: one on-demand worker, the rest spot. Each from
    several types of one size, price-capacity-optimized, with capacity rebalancing."""
    managers, workers = group(run, "manager"), group(run, "worker")
    assert "mixedInstancesPolicy" not in managers and "capacityRebalance" not in managers
    assert "launchTemplate" in managers
    assert "launchTemplate" not in workers  # one or the other (tpa group.go: ExactlyOneOf)
    policy = workers["mixedInstancesPolicy"]
    assert policy["instancesDistribution"] == {
        "onDemandAllocationStrategy": "prioritized",
        "onDemandBaseCapacity": {"prod": 1}.get(run.stack, 0),
        "onDemandPercentageAboveBaseCapacity": 0,
        "spotAllocationStrategy": "price-capacity-optimized",
    }
    types = [o["instanceType"] for o in policy["launchTemplate"]["overrides"]]
    assert types == {"prod": ["t3.medium", "t3a.medium"]}.get(run.stack, ["t3.small", "t3a.small"])
    template = run.named("aws:ec2/launchTemplate:LaunchTemplate", "swarm-workers-template")
    assert policy["launchTemplate"]["launchTemplateSpecification"]["launchTemplateId"] == f"{template.name}-id"
    assert workers["capacityRebalance"] is True


@pytest.mark.parametrize(
    "settings,mixed,rebalance",
    [
        ({"restdemo:workerOnDemandPercent": 100}, False, None),  # today's stacks before spot: one template
        ({"restdemo:workerOnDemandPercent": 100, "restdemo:workerInstanceTypes": ["t3a.small"]}, True, False),
        ({"restdemo:workerOnDemandBase": 1, "restdemo:workerOnDemandPercent": 0}, True, False),  # 1 worker, 1 base
    ],
)
def test_a_group_mixes_types_only_when_asked_and_rebalances_only_with_spot(settings, mixed, rebalance):
    dev = {k: v for k, v in stack_config("dev").items() if not k.startswith("restdemo:worker")}
    workers = run_program("dev", {**dev, "restdemo:workerCount": 1, **settings}).named(GROUP, "swarm-workers-group")
    assert ("mixedInstancesPolicy" in workers.inputs, workers.inputs.get("capacityRebalance")) == (mixed, rebalance)


def test_workers_that_scale_track_the_reserved_share_and_keep_autoscalings_count():
    """With workerMaxCount: min workerCount, max workerMaxCount, no desired capacity sent (Optional+Computed:
    `pulumi up` neither resets the count Auto Scaling reached nor shows a diff), and a target-tracking
    policy on the leader's WorkersReservedPercent; the managers' leader publishes it (their user data)."""
    run = run_program(
        "prod", {**stack_config("prod"), "restdemo:workerMaxCount": 9, "restdemo:workerReservedTarget": 60}
    )
    workers, managers = group(run, "worker"), group(run, "manager")
    assert (workers["minSize"], workers["maxSize"], "desiredCapacity" in workers) == (3, 9, False)
    assert (managers["minSize"], managers["maxSize"], managers["desiredCapacity"]) == (3, 3, 3)
    assert workers["instanceRefresh"]["preferences"]["scaleInProtectedInstances"] == "Refresh"
    # Room for one more at its smallest (3: 134 % of 3 is 4.02), so for three more at its largest (12.06
    # of 9): never less than a whole spare instance, however AWS rounds; no wait for an exact count
    # Auto Scaling moves.
    assert workers["instanceRefresh"]["preferences"]["maxHealthyPercentage"] == 134
    assert (workers["waitForCapacityTimeout"], managers["waitForCapacityTimeout"]) == ("0", "20m")
    (policy,) = run.of_type("aws:autoscaling/policy:Policy")
    assert policy.name == "swarm-workers-reserved"
    assert policy.inputs["autoscalingGroupName"] == "restdemo-prod-workers"
    assert (policy.inputs["policyType"], policy.inputs["estimatedInstanceWarmup"]) == ("TargetTrackingScaling", 300)
    assert policy.inputs["targetTrackingConfiguration"] == {
        "targetValue": 60,
        "customizedMetricSpecification": {
            "namespace": "restdemo",
            "metricName": "WorkersReservedPercent",
            "metricDimensions": [{"name": "Stack", "value": "prod"}],
            "statistic": "Maximum",
        },
    }


def test_a_fixed_count_of_workers_has_no_policy_and_turning_scaling_on_rolls_no_manager(run):
    assert not run.of_type("aws:autoscaling/policy:Policy")
    # The leader reads whether the group scales from the group itself: the managers' launch settings
    # do not change.
    scaling = run_program(run.stack, {**stack_config(run.stack), "restdemo:workerMaxCount": 10})
    assert scaling.of_type("aws:autoscaling/policy:Policy")
    assert user_data(scaling, "manager") == user_data(run, "manager")


def test_the_workers_group_carries_the_programs_on_demand_base_for_the_leader_to_put_back(run):
    """The leader raises the live base while spot launches fail and sets the tag's back an hour after;
    the program's own changes of workerOnDemandBase reach the group through the tag."""
    from restdemo_agent.contract import ON_DEMAND_BASE_TAG

    workers = run.named(GROUP, "swarm-workers-group").inputs
    tags = {t["key"]: t for t in workers["tags"]}
    base = workers["mixedInstancesPolicy"]["instancesDistribution"]["onDemandBaseCapacity"]  # a number, as JSON has
    assert tags[ON_DEMAND_BASE_TAG] == {"key": ON_DEMAND_BASE_TAG, "value": str(int(base)), "propagateAtLaunch": False}
    managers = run.named(GROUP, "swarm-managers-group").inputs
    assert ON_DEMAND_BASE_TAG not in {t["key"] for t in managers["tags"]}
