"""tests/support/target_tracking.py on its own: what Auto Scaling does with a target-tracking policy."""

from __future__ import annotations

import pytest

from tests.support.target_tracking import TargetTracking

pytestmark = pytest.mark.unit

POLICY = TargetTracking(target=70.0, min_size=2, max_size=10)


def test_three_minutes_above_the_target_scale_out_to_what_brings_the_metric_to_it():
    assert POLICY.desired(2, [150.0] * 2) == 2  # two minutes are not enough
    assert POLICY.desired(2, [150.0] * 3) == 5  # ceil(2 x 150 / 70)
    assert POLICY.desired(2, [50.0, 150.0, 150.0]) == 2  # not three in a row
    assert POLICY.desired(4, [500.0] * 3) == 10  # held at the maximum


def test_fifteen_minutes_below_nine_tenths_of_the_target_scale_in_never_below_the_minimum():
    assert POLICY.desired(6, [30.0] * 14) == 6
    assert POLICY.desired(6, [30.0] * 15) == 3  # ceil(6 x 30 / 70)
    assert POLICY.desired(6, [65.0] * 15) == 6  # below the target, not below 63
    assert POLICY.desired(3, [1.0] * 15) == 2


def test_it_reads_the_policy_the_program_sends():
    policy = {"targetTrackingConfiguration": {"targetValue": 60.0}}
    assert TargetTracking.from_inputs(policy, {"minSize": 3.0, "maxSize": 10.0}) == TargetTracking(60.0, 3, 10)
