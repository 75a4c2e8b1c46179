"""infra/network/firewall.py: what the stacks' security groups let in, under mocks."""

from __future__ import annotations

import pytest

from tests.support.aws_stack import AWS_STACKS, SG_INGRESS

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


def test_nothing_is_open_to_the_internet_but_the_alb_listeners(run):
    for rule in run.of_type(SG_INGRESS):
        if rule.inputs.get("cidrIpv4") == "0.0.0.0/0" or rule.inputs.get("cidrIpv6") == "::/0":
            assert rule.name.startswith("web-listener-"), rule.name
            assert rule.inputs["fromPort"] in (80, 443)
    assert not any(r.inputs.get("fromPort") == 22 for r in run.of_type(SG_INGRESS))
