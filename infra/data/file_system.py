"""VolumeFileSystem: the stack's EFS file system, where its Compose volumes live on AWS.

One file system per stack, encrypted with the stack's own KMS key, in General Purpose mode with
Elastic throughput (pay per byte moved, no burst credits to run out), AWS Backup's daily backups on.
A mount target in each of the nodes' subnets, so every node mounts it in its own zone; its security
group admits NFS (2049) from the nodes only. The nodes mount it through Docker's `local` driver
(infra/service/volumes.py), each volume its own directory (ADR 0028). Never deleted by the program:
when it stops using the file system, it leaves it (and its data) in the account.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config.settings import SettingsView
from infra.config.tags import tags
from infra.network.firewall import allow_in, security_group
from infra.network.network import Network


@dataclass(frozen=True)
class VolumeFileSystemSettings(SettingsView):
    """What `VolumeFileSystem` reads of the settings: the owner it tags with."""

    owner: str | None


NFS_PORT = 2049
PERFORMANCE_MODE = "generalPurpose"
THROUGHPUT_MODE = "elastic"


class VolumeFileSystem(pulumi.ComponentResource):
    """The stack's EFS file system for its volumes, its mount targets and their security group.

    Takes:
        name: the prefix of every child's name (`<name>`, `<name>-<i>` per subnet, `<name>-backup`).
        settings: its slice of the settings (the owner, for the tags).
        network: the VPC and the nodes' subnets (one mount target in each).
        node_security_group_id: the group every node is in (the only source NFS is admitted from).
        kms_key_arn: the stack's KMS key, which encrypts the file system at rest.
        opts: resource options.

    Gives:
        file_system_id: the file system's id.
        dns_name: its DNS name, which resolves in each zone to that zone's mount target.
        mount_targets: the mount targets (a node mounts once its zone's exists).
    """

    def __init__(
        self,
        name: str,
        *,
        settings: VolumeFileSystemSettings,
        network: Network,
        node_security_group_id: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:data:VolumeFileSystem", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        file_system = aws.efs.FileSystem(
            name,
            encrypted=True,
            kms_key_id=kms_key_arn,
            performance_mode=PERFORMANCE_MODE,
            throughput_mode=THROUGHPUT_MODE,
            tags=tags(settings, "volumes"),
            # Its data outlives the program's use of it: a Compose file with no volume left, a
            # replacement, `make down` each leave it in the account (make down names it).
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        aws.efs.BackupPolicy(
            f"{name}-backup",
            file_system_id=file_system.id,
            backup_policy=aws.efs.BackupPolicyBackupPolicyArgs(status="ENABLED"),
            opts=child,
        )
        group = security_group(name, settings, network.vpc_id, "restdemo EFS: NFS from the nodes only", child)
        allow_in(
            f"{name}-nfs",
            settings,
            group,
            NFS_PORT,
            "NFS from the nodes",
            child,
            source_group_id=node_security_group_id,
        )
        self.mount_targets = [
            aws.efs.MountTarget(
                f"{name}-{index}",
                file_system_id=file_system.id,
                subnet_id=network.node_subnet_ids.apply(lambda ids, i=index: ids[i]),
                security_groups=[group.id],
                opts=child,
            )
            for index in range(network.node_subnet_count)
        ]
        self.file_system_id = file_system.id
        self.dns_name = file_system.dns_name
        self.register_outputs({"file_system_id": self.file_system_id, "dns_name": self.dns_name})
