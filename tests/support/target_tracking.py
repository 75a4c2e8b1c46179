"""EC2 Auto Scaling's target tracking, modelled: moto stores a TargetTrackingScaling policy and
never acts on it, so "a reservation step scales the workers out" needs a model of what AWS does
with the policy the program sends (`TargetTracking.from_inputs`, the provider's camelCase inputs).

Semantics, from the Amazon EC2 Auto Scaling User Guide, "Target tracking scaling policies" and
the Application Auto Scaling User Guide's page of that name:
- Auto Scaling "creates and manages the CloudWatch alarms that invoke scaling events when the
  metric deviates from the target": one above the target, which scales out, one below it, which
  scales in; scale-in is the more conservative.
- The adjustment is "calculated based on the metric and the target value", for a metric that
  "increase[s] or decrease[s] proportionally to the capacity": here the capacity that would bring
  the metric to the target, current x metric / target, rounded up (never below what the target
  needs), held between the group's minimum and maximum.
Not in the guides' text, as the alarms AWS creates show them (so not checked from here): the
scale-out alarm needs 3 of 3 one-minute datapoints above the target, the scale-in alarm 15 of 15
below 90 % of it. Instance warmup is not modelled: the leader's metric counts a worker once it is
an active swarm node, not from its launch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCALE_OUT_MINUTES = 3
SCALE_IN_MINUTES = 15
SCALE_IN_FRACTION = 0.9


@dataclass(frozen=True)
class TargetTracking:
    target: float
    min_size: int
    max_size: int

    @classmethod
    def from_inputs(cls, policy: dict, group: dict) -> TargetTracking:
        return cls(policy["targetTrackingConfiguration"]["targetValue"], int(group["minSize"]), int(group["maxSize"]))

    def desired(self, current: int, minutes: list[float]) -> int:
        """The desired capacity after the one-minute datapoints `minutes` (oldest first), from
        `current`: scaled out when the last 3 are above the target, in when the last 15 are below
        90 % of it, else unchanged."""
        wanted = math.ceil(current * minutes[-1] / self.target) if minutes else current
        if len(minutes) >= SCALE_OUT_MINUTES and all(v > self.target for v in minutes[-SCALE_OUT_MINUTES:]):
            return min(self.max_size, max(current, wanted))
        low = SCALE_IN_FRACTION * self.target
        if len(minutes) >= SCALE_IN_MINUTES and all(v < low for v in minutes[-SCALE_IN_MINUTES:]):
            return max(self.min_size, min(current, wanted))
        return current
