"""Spot capacity that runs out, and what Auto Scaling records of it, modelled inside moto (moto 5
launches every instance a group wants, answers DescribeScalingActivities with none, and fails an
UpdateAutoScalingGroup whose MixedInstancesPolicy has no LaunchTemplate).

Semantics, from the EC2 Auto Scaling API reference and User Guide:
- UpdateAutoScalingGroup takes a MixedInstancesPolicy without its LaunchTemplate ("required when
  creating ... not required when updating the group", MixedInstancesPolicy); the group keeps its
  launch template and overrides, and takes the InstancesDistribution sent.
- A group launches its on-demand share first: the base, then the percentage of the rest, rounded up
  for on-demand (User Guide, "Purchase options"). With no spot capacity for the group
  (`spot_unavailable`), the spot share fails: no instance, and a scaling activity with StatusCode
  `Failed` and a status message naming spot, as the User Guide's troubleshooting pages show
  ("Could not launch Spot Instances. ..."; its exact wording is not verified here). The group keeps
  its desired capacity and tries again at its next launch (here: the next change of the group).
- DescribeScalingActivities returns a group's activities newest first, at most MaxRecords.
Existing instances are taken to be on-demand: the model is for a group that finds no spot at all.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

from moto.autoscaling.models import FakeAutoScalingGroup
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

SPOT_FAILURE = (
    "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that "
    "matches your request. Launching EC2 instance failed."
)
# group name -> its activities, oldest first
ACTIVITIES: dict[str, list[dict]] = {}
UNAVAILABLE: set[str] = set()


def reset() -> None:
    ACTIVITIES.clear()
    UNAVAILABLE.clear()


def spot_unavailable(group: str, unavailable: bool = True) -> None:
    (UNAVAILABLE.add if unavailable else UNAVAILABLE.discard)(group)


def on_demand_count(count: int, base: int, percent: int) -> int:
    base = min(base, count)
    return base + math.ceil((count - base) * percent / 100)


def _record_failure(group: FakeAutoScalingGroup, missing: int) -> None:
    now = datetime.now(UTC)
    ACTIVITIES.setdefault(group.name, []).append(
        {
            "ActivityId": str(uuid.uuid4()),
            "AutoScalingGroupName": group.name,
            "Description": "Launching a new EC2 instance.  Status Reason: " + SPOT_FAILURE,
            "Cause": f"At {now:%Y-%m-%dT%H:%M:%SZ} an instance was started in response to a difference between "
            f"desired and actual capacity, increasing the capacity by {missing}.",
            "StartTime": now,
            "EndTime": now,
            "StatusCode": "Failed",
            "StatusMessage": SPOT_FAILURE,
            "Progress": 100,
        }
    )


def _kept(policy: dict) -> dict:
    """The group's policy to send again: moto keeps the template's id and name both, and refuses both."""
    template = policy["LaunchTemplate"]
    spec = template["LaunchTemplateSpecification"]
    named = {k: v for k, v in spec.items() if k != "LaunchTemplateName"} if "LaunchTemplateId" in spec else spec
    return {**policy, "LaunchTemplate": {**template, "LaunchTemplateSpecification": named}}


def install() -> None:
    """Teach moto the three behaviours above (idempotent)."""
    if getattr(FakeAutoScalingGroup, "_restdemo_spot", False):
        return
    original_update = FakeAutoScalingGroup.update
    original_launch = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def update(self, *args, mixed_instances_policy=None, **kwargs):
        names_other = kwargs.get("launch_template") or kwargs.get("launch_config_name")
        if self.mixed_instances_policy and not names_other and "LaunchTemplate" not in (mixed_instances_policy or {}):
            # Kept, with the distribution sent if any (an update that names no policy keeps it whole).
            mixed_instances_policy = {**_kept(self.mixed_instances_policy), **(mixed_instances_policy or {})}
        original_update(self, *args, mixed_instances_policy=mixed_instances_policy, **kwargs)
        if self.name in UNAVAILABLE:  # a new distribution: the group tries again to reach its desired count
            self.set_desired_capacity(self.desired_capacity)

    def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
        if self.name in UNAVAILABLE and self.mixed_instances_policy:
            distribution = self.mixed_instances_policy.get("InstancesDistribution", {})
            on_demand = on_demand_count(
                self.desired_capacity or 0,
                int(distribution.get("OnDemandBaseCapacity", 0)),
                int(distribution.get("OnDemandPercentageAboveBaseCapacity", 100)),
            )
            launched = max(0, min(count_needed, on_demand - len(self.active_instances())))
            if launched < count_needed:
                _record_failure(self, count_needed - launched)
            count_needed = launched
        if count_needed:
            original_launch(self, count_needed, propagated_tags)

    def describe_scaling_activities(self):
        found = ACTIVITIES.get(self._get_param("AutoScalingGroupName"), [])
        most = self._get_int_param("MaxRecords") or 100
        return ActionResult({"Activities": list(reversed(found))[:most]})

    FakeAutoScalingGroup.update = update
    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances
    AutoScalingResponse.describe_scaling_activities = describe_scaling_activities
    FakeAutoScalingGroup._restdemo_spot = True
