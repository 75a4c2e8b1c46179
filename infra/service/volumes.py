"""Where a stack's named volumes are, and how a task mounts one: pure decisions, no calls.

A Compose volume is `<serviceName>_<volume>` on every node, made by Docker's own `local` driver the
first time a task there mounts it (as `docker stack deploy` leaves it to swarm): on the local stack
the node's own directory; on AWS an NFS mount of the stack's EFS file system, the volume's own
directory there, so a task rescheduled to another node finds what it wrote (ADR 0028).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from infra.config.compose import VolumeMount
from infra.config.names import swarm_object_name
from restdemo_agent.contract import VOLUME_OWNER_LABEL

# The options AWS gives NFS clients of EFS (Amazon EFS User Guide, "Mounting EFS file systems using
# NFS"; tests/fidelity/data/efs.py): NFS 4.1, 1 MiB reads and writes, hard mounts with a 60 s
# timeout and 2 retries, a new source port when it reconnects (noresvport); and no set-uid program
# or device file on a volume takes effect in a task (nosuid, nodev): any node can write the file
# system (ADR 0028).
EFS_NFS_OPTIONS = "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,nosuid,nodev"


@dataclass(frozen=True)
class UnitVolume:
    """A named volume a service mounts, with what its directory is owned by and its labels."""

    mount: VolumeMount
    owner: str = "0:0"
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeStore:
    """Where the volumes are: on each node (no address: the local stack), or on the NFS server at
    `nfs_address` (the stack's EFS file system's DNS name, which each node resolves to the mount
    target in its own zone; Docker's local driver resolves a name given as `addr`)."""

    nfs_address: pulumi.Input[str] | None = None

    def driver_options(self, volume: str) -> dict[str, pulumi.Input[str]] | None:
        """The local driver's options: none on a node's disk; NFS of the volume's own directory."""
        if self.nfs_address is None:
            return None
        return {
            "type": "nfs",
            "o": pulumi.Output.concat("addr=", self.nfs_address, ",", EFS_NFS_OPTIONS),
            "device": f":/{volume}",
        }

    def volume_name(self, app: str, volume: str) -> pulumi.Input[str]:
        """`<serviceName>_<volume>` on a node's disk; on NFS with 8 hex digits of the driver's options
        after it: swarm fixes a volume's options on a node when it first makes it there, so new
        options (another file system, another mount option) must be a new name, or the nodes that
        had it would keep mounting the old."""
        options = self.driver_options(volume)
        if options is None:
            return swarm_object_name(app, volume)
        return pulumi.Output.all(**options).apply(lambda given: f"{swarm_object_name(app, volume)}_{digest(given)}")


def digest(options: dict[str, str]) -> str:
    """8 hex digits of the SHA-256 of a volume's driver options (as JSON, keys sorted)."""
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]


def volume_mounts(
    app: str, volumes: list[UnitVolume], store: VolumeStore
) -> list[docker.ServiceTaskSpecContainerSpecMountArgs] | None:
    """A task's named volumes as the provider takes them (its `mounts`)."""
    return [
        docker.ServiceTaskSpecContainerSpecMountArgs(
            type="volume",
            source=store.volume_name(app, volume.mount.source),
            target=volume.mount.target,
            read_only=volume.mount.read_only or None,
            volume_options=docker.ServiceTaskSpecContainerSpecMountVolumeOptionsArgs(
                driver_name="local",
                driver_options=store.driver_options(volume.mount.source),
                labels=[
                    docker.ServiceTaskSpecContainerSpecMountVolumeOptionsLabelArgs(label=k, value=v)
                    for k, v in sorted((volume.labels | {VOLUME_OWNER_LABEL: volume.owner}).items())
                ],
                no_copy=volume.mount.nocopy or None,
            ),
        )
        for volume in volumes
    ] or None
