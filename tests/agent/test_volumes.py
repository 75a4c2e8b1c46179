"""agent/src/restdemo_agent/volumes.py: the directories the services' volume mounts need."""

from __future__ import annotations

import pytest

from restdemo_agent.volumes import VolumeDirectory, parent_device, volume_directories

pytestmark = pytest.mark.unit

NFS = "addr=fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com,nfsvers=4.1,hard"


def service(*mounts: dict) -> dict:
    return {"Spec": {"TaskTemplate": {"ContainerSpec": {"Mounts": list(mounts)}}}}


def volume(device: str | None, owner: str | None = "65534:65534", driver: str = "local", kind: str = "volume") -> dict:
    options = {"type": "nfs", "o": NFS} | ({"device": device} if device else {})
    return {
        "Type": kind,
        "Source": "restdemo_notes",
        "Target": "/data",
        "VolumeOptions": {
            "Labels": {"restdemo.volume.owner": owner} if owner else {},
            "DriverConfig": {"Name": driver, "Options": options},
        },
    }


def test_each_nfs_volume_is_a_directory_of_its_parent_owned_as_labelled():
    found = volume_directories([service(volume(":/notes")), service(volume(":/notes"), volume(":/uploads", "1000:50"))])
    parent = (("device", ":/"), ("o", NFS), ("type", "nfs"))
    assert found == {
        VolumeDirectory(parent, "notes", 65534, 65534),
        VolumeDirectory(parent, "uploads", 1000, 50),
    }


@pytest.mark.parametrize(
    "mount",
    [
        volume(None),  # a node's own volume: Docker makes it
        volume(":/notes", owner=None),
        volume(":/notes", owner="nobody"),
        volume(":/notes", owner="1:2:3"),
        volume(":/notes", driver="rexray/efs"),
        volume(":/notes", kind="bind"),
        volume(":/.."),
        volume(":/a/.."),
        volume(":/."),
        volume(":/"),
        volume(":/no spaces"),
    ],
)
def test_what_names_no_directory_of_a_volume_needs_none(mount):
    assert volume_directories([service(mount)]) == set()


def test_the_parent_of_a_device():
    assert parent_device(":/notes") == (":/", "notes")
    assert parent_device("/srv/volumes/notes/") == ("/srv/volumes", "notes")
    assert parent_device("notes") == ("/", "notes")
    assert parent_device("/srv/../..") is None
