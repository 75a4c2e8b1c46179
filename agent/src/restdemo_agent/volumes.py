"""The volumes' directories: which ones the services' mounts need, decided from their specs alone.

A Compose volume on AWS is one directory of the stack's EFS file system, mounted by Docker's local
driver over NFS (`device` `:/<volume>`, infra/service/volumes.py). NFS mounts only a directory that
exists, and a new one is root's: the leader's agent makes each one, owned by the uid:gid the
service's spec labels it with (VOLUME_OWNER_LABEL), through its own engine, which mounts the
parent with the volume's own driver options (ADR 0028). Pure: no calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from restdemo_agent.contract import MAX_OWNER_ID, VOLUME_OWNER_LABEL

# A volume's directory: one path component, as Compose names a volume (no slash, no `..`).
DIRECTORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
OWNER = re.compile(r"(\d{1,10}):(\d{1,10})")


@dataclass(frozen=True)
class VolumeDirectory:
    """A directory to make: `name` under the volume whose local-driver options are `parent_options`."""

    parent_options: tuple[tuple[str, str], ...]
    name: str
    uid: int
    gid: int


def parent_device(device: str) -> tuple[str, str] | None:
    """`:/notes` -> (`:/`, `notes`); `/srv/volumes/notes` -> (`/srv/volumes`, `notes`); None when the
    last component is not a volume's directory name."""
    head, _, name = device.rstrip("/").rpartition("/")
    if not DIRECTORY.fullmatch(name) or name.strip(".") == "":
        return None
    return (head + "/" if head.endswith(":") or not head else head), name


def accepted(options: dict[str, str], bind_root: str = "") -> bool:
    """Only what the program deploys: an NFS export's directory (`type=nfs`, `device=:/<volume>`); the
    leader mounts nothing else of the node's. `bind_root` (the lab only): a bind below that directory."""
    device = options.get("device", "")
    if options.get("type") == "nfs":
        return device.startswith(":/")
    return bool(bind_root) and options.get("type") == "none" and device.startswith(bind_root.rstrip("/") + "/")


def volume_directories(services: list[dict], bind_root: str = "") -> set[VolumeDirectory]:
    """The directories the services' volume mounts name: local-driver NFS volumes (`accepted`) with an
    owner label. Anything else (a node's own volume, a malformed label or device) needs none."""
    found = set()
    for service in services:
        container = service.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
        for mount in container.get("Mounts") or []:
            options = mount.get("VolumeOptions") or {}
            driver = options.get("DriverConfig") or {}
            device = (driver.get("Options") or {}).get("device")
            owner = OWNER.fullmatch((options.get("Labels") or {}).get(VOLUME_OWNER_LABEL, ""))
            split = parent_device(device) if device and accepted(driver.get("Options") or {}, bind_root) else None
            if mount.get("Type") != "volume" or driver.get("Name") != "local" or not owner or not split:
                continue
            if max(int(owner[1]), int(owner[2])) > MAX_OWNER_ID:
                continue
            parent, name = split
            parent_options = tuple(sorted({**driver["Options"], "device": parent}.items()))
            found.add(VolumeDirectory(parent_options, name, int(owner[1]), int(owner[2])))
    return found


# A volume's directory is checked again this often (made again if it went), retried this long after
# a failure.
RECHECK_SECONDS = 300
RETRY_SECONDS = 60


def due_directories(
    wanted: set[VolumeDirectory], made: dict[VolumeDirectory, float], failed: dict[VolumeDirectory, float], now: float
) -> list[VolumeDirectory]:
    """What to make this round: never made (or its owner changed: a new VolumeDirectory), made longer
    than RECHECK_SECONDS ago, or failed longer than RETRY_SECONDS ago."""
    return sorted(
        (
            directory
            for directory in wanted
            if now - made.get(directory, -1e18) > RECHECK_SECONDS and now - failed.get(directory, -1e18) > RETRY_SECONDS
        ),
        key=str,
    )
