"""EC2 and VPC: security groups and their rules, addresses, tags, launch templates, route tables,
NAT gateways.

Sources: the AWS EC2 API reference and terraform-provider-aws (tpa) internal/service/ec2 and its docs.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import moto.ec2

from tests.fidelity.rules import Between, Field, Needs, OneOf, Pattern, TwoPlaces
from tests.support.pulumi_program import AMI_IDS, ProgramRun, Registered

SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
# What an instance boots: an image of an architecture its type supports ("The architecture of the AMI
# must be compatible with the instance type", EC2 User Guide, "Find an AMI"; RunInstances fails with
# "The architecture 'arm64' of the specified instance type does not match the architecture 'x86_64'
# of the specified AMI"). The types' architectures: DescribeInstanceTypes' ProcessorInfo, as moto
# keeps it (moto/ec2/resources/instance_types.json.gz); the images': DescribeImages' Architecture of
# those the mocks resolve (tests/support/pulumi_program.py `amazon_image`).
BOOTS = "EC2 User Guide, Find an AMI; RunInstances (architecture of the type and of the AMI)"
INSTANCE_ARCHITECTURES = {
    name: described["ProcessorInfo"]["SupportedArchitectures"]
    for name, described in json.loads(
        gzip.decompress((Path(moto.ec2.__file__).parent / "resources/instance_types.json.gz").read_bytes())
    ).items()
}
IMAGE_ARCHITECTURES = {image: arch for arch, image in AMI_IDS.items()}
EC2_DESCRIPTION = Pattern(r"[0-9A-Za-z_ .:/()#,@\[\]+=&;{}!$*-]*", 255)


FIELDS = [
    # Security groups
    Field(
        SG_INGRESS,
        "description",
        EC2_DESCRIPTION,
        "AWS EC2 API IpRange.Description; tpa ec2/validate.go validSecurityGroupRuleDescription",
        "the agent's readiness",
    ),
    Field(SG_EGRESS, "description", EC2_DESCRIPTION, "AWS EC2 API IpRange.Description", "managers' API"),
    Field(
        "aws:ec2/securityGroup:SecurityGroup",
        "description",
        EC2_DESCRIPTION,
        "AWS EC2 CreateSecurityGroup GroupDescription; tpa ec2/vpc_security_group.go (ForceNew, 0-255)",
        "nodes' group",
    ),
    Field(
        "aws:ec2/eip:Eip",
        "domain",
        OneOf(("vpc", "standard")),
        "tpa ec2/ec2_eip.go domain enum.Validate[DomainType]",
        "classic",
    ),
    # Tags: EC2 allows 127-character keys (not aws:...) and 256-character values.
    Field("aws:ec2/vpc:Vpc", "tags{keys}", Pattern(r"(?!aws:).{1,127}"), "AWS EC2 API Tag.Key", "aws:owner"),
    Field("aws:ec2/launchTemplate:LaunchTemplate", "tags{}", Pattern(r".{0,256}"), "AWS EC2 API Tag.Value", "x" * 257),
]


# Kept apart from FIELDS only so the assembled table keeps its order (after Auto Scaling's).
LAUNCH_TEMPLATE_FIELDS = [
    Field(
        TEMPLATE,
        "metadataOptions.httpTokens",
        OneOf(("optional", "required")),
        "tpa ec2/ec2_launch_template.go LaunchTemplateHttpTokensState",
        "enforced",
    ),
    Field(
        TEMPLATE,
        "metadataOptions.httpPutResponseHopLimit",
        Between(1, 64),
        "tpa ec2/ec2_launch_template.go IntBetween(1, 64)",
        0,
    ),
    Field(
        TEMPLATE,
        "blockDeviceMappings[].ebs.volumeType",
        OneOf(("standard", "gp2", "gp3", "io1", "io2", "sc1", "st1")),
        "tpa ec2/ec2_launch_template.go ec2.VolumeType_Values",
        "gp4",
    ),
    Field(
        TEMPLATE,
        "blockDeviceMappings[].ebs.encrypted",
        OneOf(("true", "false")),
        "tpa ec2/ec2_launch_template.go nullable.TypeNullableBool (a string)",
        True,
    ),
]


TWO_PLACES = [
    TwoPlaces(
        "aws:ec2/securityGroup:SecurityGroup",
        "ingress",
        SG_INGRESS,
        "securityGroupId",
        "id",
        "tpa docs security_group: inline rules conflict with rule resources",
    ),
    TwoPlaces(
        "aws:ec2/securityGroup:SecurityGroup", "egress", SG_EGRESS, "securityGroupId", "id", "tpa docs security_group"
    ),
    TwoPlaces(
        "aws:ec2/routeTable:RouteTable",
        "routes",
        "aws:ec2/route:Route",
        "routeTableId",
        "id",
        "tpa docs route_table: inline routes conflict with aws_route",
    ),
]


def _internet_gateways(resource: Registered, run: ProgramRun) -> list[Registered]:
    return run.of_type("aws:ec2/internetGateway:InternetGateway")


NEEDS = [
    Needs(
        "aws:ec2/natGateway:NatGateway",
        "the internet gateway",
        _internet_gateways,
        "tpa docs nat_gateway: depends_on the VPC's internet gateway for proper ordering",
    ),
]
