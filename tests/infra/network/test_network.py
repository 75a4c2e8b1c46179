"""infra/network/network.py: the VPC, its subnets and NAT, or an existing VPC, under mocks."""

from __future__ import annotations

import pytest

from tests.support.aws_stack import AWS_STACKS, SG_EGRESS, group
from tests.support.pulumi_program import (
    run_program,
    stack_config,
)

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


def test_prod_nodes_are_private_behind_one_nat_per_zone():
    run = run_program("prod")
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == 3
    for index in range(3):
        routes = run.named("aws:ec2/routeTable:RouteTable", f"network-private-{index}").inputs["routes"]
        assert routes == [{"cidrBlock": "0.0.0.0/0", "natGatewayId": f"network-nat-{index}-id"}]


def test_an_existing_vpc_replaces_the_network():
    existing = {
        "restdemo:existingVpcId": "vpc-0123456789abcdef0",
        "restdemo:existingPublicSubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"],
        "restdemo:existingNodeSubnetIds": ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"],
    }
    run = run_program("dev", {**stack_config("dev"), **existing})
    assert not run.of_type("aws:ec2/vpc:Vpc") and not run.of_type("aws:ec2/subnet:Subnet")
    assert group(run, "worker")["vpcZoneIdentifiers"] == existing["restdemo:existingNodeSubnetIds"]
    assert (
        run.named("aws:lb/loadBalancer:LoadBalancer", "web").inputs["subnets"]
        == existing["restdemo:existingPublicSubnetIds"]
    )
    to_nodes = run.named(SG_EGRESS, "web-to-nodes").inputs  # the ALB reaches the nodes in that VPC
    assert to_nodes["cidrIpv4"] == "172.31.0.0/16"
