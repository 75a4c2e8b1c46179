"""EFS: the stack's file system for its volumes, its mount targets and backup policy, and how the
nodes' Docker mounts it (the local driver's NFS options).

Sources: terraform-provider-aws (tpa) internal/service/efs, the Amazon EFS API reference and User
Guide, moby daemon/volume/local (local_unix.go) and kreuzwerker/terraform-provider-docker (tpd).
"""

from __future__ import annotations

from typing import Any

from tests.fidelity.rules import Count, Field, OneOf, Pattern, Satisfies

SERVICE = "docker:index/service:Service"
# Amazon EFS User Guide, "Mounting EFS file systems using NFS" (recommended mount options); with
# them a client rides out a mount target's failover and a reconnection (noresvport).
AWS_NFS_OPTIONS = ("nfsvers=4.1", "rsize=1048576", "wsize=1048576", "hard", "timeo=600", "retrans=2", "noresvport")
# moby daemon/volume/local/local_unix.go validOpts: what the local driver takes.
LOCAL_DRIVER_OPTIONS = {"type", "device", "o", "size"}


# moby/sys/mount flags_unix.go (the local driver mounts through it): options the kernel takes as
# mount flags, `nosuid` and `nodev` among them.
MOUNT_FLAGS = ("nosuid", "nodev")


def _nfs_options(value: Any) -> str | None:
    """`addr=<name or address>` (the local driver resolves a name for nfs and cifs: local_unix.go
    getMountOptions, resolveIP), every option AWS recommends, and nosuid and nodev (any node can
    write the file system)."""
    options = str(value).split(",")
    if not options[0].startswith("addr=") or len(options[0]) == len("addr="):
        return "does not start with addr=<the file system's DNS name>"
    missing = [option for option in (*AWS_NFS_OPTIONS, *MOUNT_FLAGS) if option not in options[1:]]
    return f"lacks {', '.join(missing)}" if missing else None


def _local_driver_options(value: Any) -> str | None:
    unknown = sorted(set(value) - LOCAL_DRIVER_OPTIONS)
    if unknown:
        return f"{', '.join(unknown)}: not an option of the local driver (type, device, o, size)"
    if value.get("type") == "nfs" and not str(value.get("device", "")).startswith(":/"):
        return "an NFS device is :/<path on the server> (the server is o's addr)"
    return None


FIELDS = [
    Field(
        "aws:efs/fileSystem:FileSystem",
        "performanceMode",
        OneOf(("generalPurpose", "maxIO")),
        "tpa efs/file_system.go performance_mode StringInSlice(PerformanceMode_Values)",
        "fast",
    ),
    Field(
        "aws:efs/fileSystem:FileSystem",
        "throughputMode",
        OneOf(("bursting", "provisioned", "elastic")),
        "tpa efs/file_system.go throughput_mode StringInSlice(ThroughputMode_Values)",
        "unlimited",
    ),
    Field(
        "aws:efs/fileSystem:FileSystem",
        "kmsKeyId",
        Pattern(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]+"),
        "tpa efs/file_system.go kms_key_id verify.ValidARN; EFS CreateFileSystem KmsKeyId (a key, not an alias)",
        "alias/restdemo-dev",
    ),
    Field(
        "aws:efs/fileSystem:FileSystem",
        "encrypted",
        OneOf((True,)),
        "EFS CreateFileSystem: KmsKeyId needs Encrypted true (tpa: kms_key_id RequiredWith encrypted)",
        False,
    ),
    Field(
        "aws:efs/backupPolicy:BackupPolicy",
        "backupPolicy.status",
        OneOf(("ENABLED", "DISABLED")),
        "tpa efs/backup_policy.go status StringInSlice(ENABLED, DISABLED): ENABLING and DISABLING are AWS's",
        "ON",
    ),
    Field(
        "aws:efs/mountTarget:MountTarget",
        "securityGroups",
        Count(1, 5),
        "EFS CreateMountTarget SecurityGroups: up to 5",
        ["sg-1", "sg-2", "sg-3", "sg-4", "sg-5", "sg-6"],
    ),
    Field(
        SERVICE,
        "taskSpec.containerSpec.mounts[].type",
        OneOf(("bind", "volume", "tmpfs")),
        "tpd resource_docker_service.go mounts.type StringInSlice(bind, volume, tmpfs)",
        "nfs",
    ),
    Field(
        SERVICE,
        "taskSpec.containerSpec.mounts[].volumeOptions.driverOptions",
        Satisfies(_local_driver_options),
        "moby daemon/volume/local/local_unix.go validOpts; Docker docs, docker volume create: NFS device :/path",
        {"type": "nfs", "o": "addr=fs.example,nfsvers=4.1", "device": "/notes"},
    ),
    Field(
        SERVICE,
        "taskSpec.containerSpec.mounts[].volumeOptions.driverOptions.o",
        Satisfies(_nfs_options),
        "EFS User Guide, Mounting EFS file systems using NFS; moby local_unix.go resolves addr",
        "addr=fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com,nfsvers=4.0",
    ),
]
