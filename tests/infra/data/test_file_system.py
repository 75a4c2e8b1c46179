"""infra/data/file_system.py: the stack's EFS file system for its Compose volumes, under mocks."""

from __future__ import annotations

import pytest

from tests.support.aws_stack import AWS_STACKS
from tests.support.pulumi_program import kms_key_arn
from tests.support.stack_variants import COMPOSE_VARIANT, variant_run

pytestmark = pytest.mark.unit

EFS = "aws:efs/fileSystem:FileSystem"


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_one_encrypted_file_system_backed_up_with_a_mount_target_in_each_nodes_subnet(stack):
    run = variant_run(stack, COMPOSE_VARIANT)
    file_system = run.one(EFS).inputs
    assert file_system == {
        "encrypted": True,
        "kmsKeyId": kms_key_arn("eu-west-1", "secrets", stack),
        "performanceMode": "generalPurpose",
        "throughputMode": "elastic",
        "tags": {
            "project": "restdemo",
            "stack": stack,
            "owner": file_system["tags"]["owner"],
            "Name": f"restdemo-{stack}-volumes",
        },
    }
    assert run.one("aws:efs/backupPolicy:BackupPolicy").inputs["backupPolicy"] == {"status": "ENABLED"}
    subnets = [s for s in run.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("network-private-")] or [
        s for s in run.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("network-public-")
    ]
    targets = run.of_type("aws:efs/mountTarget:MountTarget")
    assert len(targets) == len(subnets) >= 2
    assert sorted(t.inputs["subnetId"] for t in targets) == sorted(f"{s.name}-id" for s in subnets)


def test_the_program_never_deletes_the_file_system():
    """Its data outlives the program's use of it: no volume left in the Compose file, a replacement or
    `make down` leave it in the account (ops/teardown.py names it); its mount targets go."""
    run = variant_run("dev", COMPOSE_VARIANT)
    assert run.one(EFS).retain_on_delete is True
    assert not any(t.retain_on_delete for t in run.of_type("aws:efs/mountTarget:MountTarget"))


def test_nfs_is_admitted_from_the_nodes_only():
    run = variant_run("prod", COMPOSE_VARIANT)
    (group,) = [g for g in run.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name == "volumes"]
    rules = [
        r.inputs
        for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.name.startswith("volumes")
    ]
    assert rules == [
        {
            "securityGroupId": "volumes-id",
            "ipProtocol": "tcp",
            "fromPort": 2049,
            "toPort": 2049,
            "referencedSecurityGroupId": "swarm-nodes-id",
            "description": "NFS from the nodes",
            "tags": rules[0]["tags"],
        }
    ]
    for target in run.of_type("aws:efs/mountTarget:MountTarget"):
        assert target.inputs["securityGroups"] == [f"{group.name}-id"]


def test_a_stack_without_volumes_has_no_file_system():
    from tests.support.pulumi_program import run_program

    assert run_program("dev").of_type(EFS) == []
