"""Security groups, and their rules one resource per rule (what AWS now recommends over inline rules)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.config.tags import Owned, tags


def security_group(
    name: str, owned: Owned, vpc_id: pulumi.Input[str], description: str, opts: pulumi.ResourceOptions
) -> aws.ec2.SecurityGroup:
    """An empty, tagged group in the stack's VPC; its rules are separate resources."""
    return aws.ec2.SecurityGroup(name, vpc_id=vpc_id, description=description, tags=tags(owned, name), opts=opts)


def allow_in(
    name: str,
    owned: Owned,
    group: aws.ec2.SecurityGroup,
    port: int | None,
    description: str,
    opts: pulumi.ResourceOptions,
    *,
    protocol: str = "tcp",
    cidr: pulumi.Input[str] | None = None,
    source_group_id: pulumi.Input[str] | None = None,
) -> aws.vpc.SecurityGroupIngressRule:
    """On `port` over `protocol`; `port` None for a protocol without ports (ESP is "50")."""
    return aws.vpc.SecurityGroupIngressRule(
        name,
        security_group_id=group.id,
        ip_protocol=protocol,
        from_port=port,
        to_port=port,
        cidr_ipv4=cidr,
        referenced_security_group_id=source_group_id,
        description=description,
        tags=tags(owned, name),
        opts=opts,
    )


def allow_out(
    name: str,
    owned: Owned,
    group: aws.ec2.SecurityGroup,
    cidr: pulumi.Input[str],
    description: str,
    opts: pulumi.ResourceOptions,
    *,
    port: int | None = None,
) -> aws.vpc.SecurityGroupEgressRule:
    """To `cidr` on `port` over TCP, or on every port and protocol when no port is given."""
    ports = {"ip_protocol": "tcp", "from_port": port, "to_port": port} if port else {"ip_protocol": "-1"}
    return aws.vpc.SecurityGroupEgressRule(
        name,
        security_group_id=group.id,
        cidr_ipv4=cidr,
        description=description,
        tags=tags(owned, name),
        opts=opts,
        **ports,
    )
