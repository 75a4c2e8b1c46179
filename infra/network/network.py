"""Network: a VPC over 2 or 3 availability zones, or an existing one named in settings.

Public subnets hold the load balancers (and the nodes, unless the stack puts them in
private subnets, which then reach out through one NAT gateway per zone so losing a
zone loses no other zone's egress).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws

from infra.config.settings import SettingsView
from infra.config.tags import tags


@dataclass(frozen=True)
class NetworkSettings(SettingsView):
    """What `Network` reads of the settings: the VPC and its subnets, or the existing ones."""

    owner: str | None
    aws_region: str | None
    vpc_cidr: IPv4Network
    public_subnet_cidrs: list[IPv4Network]
    private_subnet_cidrs: list[IPv4Network]
    private_nodes: bool
    existing_vpc_id: str | None
    existing_public_subnet_ids: list[str]
    existing_node_subnet_ids: list[str]


class Network(pulumi.ComponentResource):
    """The stack's VPC, its subnets and their routes, or an existing VPC named in settings.

    Takes:
        name: the prefix of every child's name (`<name>`, `<name>-public-<i>`, `<name>-nat-<i>`, ...).
        settings: its slice of the settings (VPC and subnet CIDRs, private nodes, or the existing VPC and subnets).
        opts: resource options.

    Gives:
        vpc_id: the VPC's id.
        vpc_cidr: the VPC's CIDR block.
        public_subnet_ids: the public subnets, for the load balancers.
        node_subnet_ids: the subnets the nodes run in (the private ones, when the nodes are private).
        node_subnet_count: how many (known before they exist: one per zone).
        egress: what a node's way out depends on (gateway, route table associations), for what boots needing
            the internet to depend on; empty with an existing VPC.
    """

    def __init__(self, name: str, *, settings: NetworkSettings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("restdemo:network:Network", name, None, opts)
        if settings.existing_vpc_id:
            self._existing(settings)
        else:
            self._create(name, settings)
        self.register_outputs({"vpc_id": self.vpc_id, "node_subnet_ids": self.node_subnet_ids})

    def _existing(self, settings: NetworkSettings) -> None:
        vpc = aws.ec2.get_vpc_output(id=settings.existing_vpc_id, opts=pulumi.InvokeOutputOptions(parent=self))
        self.vpc_id = pulumi.Output.from_input(settings.existing_vpc_id)
        self.vpc_cidr = vpc.cidr_block
        self.public_subnet_ids = pulumi.Output.from_input(settings.existing_public_subnet_ids)
        self.node_subnet_ids = pulumi.Output.from_input(settings.existing_node_subnet_ids)
        self.node_subnet_count = len(settings.existing_node_subnet_ids)
        self.egress: list[pulumi.Resource] = []

    def _create(self, name: str, settings: NetworkSettings) -> None:
        child = pulumi.ResourceOptions(parent=self)
        zones = aws.get_availability_zones(state="available").names[: len(settings.public_subnet_cidrs)]
        if len(zones) < len(settings.public_subnet_cidrs):
            raise ValueError(f"{settings.aws_region} has {len(zones)} availability zones; the stack asks for more")
        vpc, gateway = self._vpc(name, settings, child)
        self.egress = [gateway]
        public_routes = self._public_routes(name, settings, vpc, gateway, child)
        public, private = [], []
        for index, (zone, cidr) in enumerate(zip(zones, settings.public_subnet_cidrs, strict=False)):
            subnet = self._public_subnet(name, settings, index, zone, cidr, vpc, public_routes, child)
            public.append(subnet)
            if settings.private_nodes:
                private.append(self._private_subnet(name, settings, index, zone, vpc, subnet, gateway, child))
        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.node_subnet_ids = pulumi.Output.all(*[s.id for s in (private or public)])
        self.node_subnet_count = len(private or public)

    def _vpc(
        self, name: str, settings: NetworkSettings, child: pulumi.ResourceOptions
    ) -> tuple[aws.ec2.Vpc, aws.ec2.InternetGateway]:
        vpc = aws.ec2.Vpc(
            name,
            cidr_block=str(settings.vpc_cidr),
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=tags(settings, name),
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(name, vpc_id=vpc.id, tags=tags(settings, name), opts=child)
        return vpc, gateway

    def _public_routes(
        self,
        name: str,
        settings: NetworkSettings,
        vpc: aws.ec2.Vpc,
        gateway: aws.ec2.InternetGateway,
        child: pulumi.ResourceOptions,
    ) -> aws.ec2.RouteTable:
        return aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            tags=tags(settings, f"{name}-public"),
            opts=child,
        )

    def _public_subnet(self, name, settings, index, zone, cidr, vpc, public_routes, child) -> aws.ec2.Subnet:
        subnet = aws.ec2.Subnet(
            f"{name}-public-{index}",
            vpc_id=vpc.id,
            cidr_block=str(cidr),
            availability_zone=zone,
            map_public_ip_on_launch=not settings.private_nodes,
            tags=tags(settings, f"{name}-public-{zone}"),
            opts=child,
        )
        association = aws.ec2.RouteTableAssociation(
            f"{name}-public-{index}", subnet_id=subnet.id, route_table_id=public_routes.id, opts=child
        )
        # The public routes carry the nodes' own egress, or the NAT gateways'.
        self.egress.append(association)
        return subnet

    def _private_subnet(self, name, settings, index, zone, vpc, public_subnet, gateway, child) -> aws.ec2.Subnet:
        address = aws.ec2.Eip(
            f"{name}-nat-{index}", domain="vpc", tags=tags(settings, f"{name}-nat-{zone}"), opts=child
        )
        nat = aws.ec2.NatGateway(
            f"{name}-nat-{index}",
            subnet_id=public_subnet.id,
            allocation_id=address.id,
            tags=tags(settings, f"{name}-nat-{zone}"),
            # A NAT gateway needs the VPC's internet gateway attached to reach out (AWS docs).
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[gateway])),
        )
        routes = aws.ec2.RouteTable(
            f"{name}-private-{index}",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
            tags=tags(settings, f"{name}-private-{zone}"),
            opts=child,
        )
        subnet = aws.ec2.Subnet(
            f"{name}-private-{index}",
            vpc_id=vpc.id,
            cidr_block=str(settings.private_subnet_cidrs[index]),
            availability_zone=zone,
            map_public_ip_on_launch=False,
            tags=tags(settings, f"{name}-private-{zone}"),
            opts=child,
        )
        association = aws.ec2.RouteTableAssociation(
            f"{name}-private-{index}", subnet_id=subnet.id, route_table_id=routes.id, opts=child
        )
        self.egress.append(association)
        return subnet
