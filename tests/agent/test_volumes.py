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


def test_only_an_nfs_export_is_mounted_by_the_leader_unless_the_lab_names_a_bind_root():
    """A service spec naming a bind of the leader's own directory (`type=none,o=bind,device=/etc`) gets
    nothing made: only what the program deploys, an NFS export's directory."""
    bind = volume("/etc")
    bind["VolumeOptions"]["DriverConfig"]["Options"] = {"type": "none", "o": "bind", "device": "/etc"}
    assert volume_directories([service(bind)]) == set()
    assert volume_directories([service(bind)], bind_root="/var/lib/restdemo-lab") == set()
    lab = volume("/var/lib/restdemo-lab/volumes-1/notes")
    lab["VolumeOptions"]["DriverConfig"]["Options"] = {
        "type": "none",
        "o": "bind",
        "device": "/var/lib/restdemo-lab/volumes-1/notes",
    }
    (made,) = volume_directories([service(lab)], bind_root="/var/lib/restdemo-lab")
    assert (made.name, dict(made.parent_options)["device"]) == ("notes", "/var/lib/restdemo-lab/volumes-1")
    nfs_without_root = volume("/notes")
    assert volume_directories([service(nfs_without_root)]) == set()  # NFS devices are :/<path>


def test_an_id_chown_would_not_take_gets_nothing_made():
    assert volume_directories([service(volume(":/notes", owner="4294967295:0"))]) == set()
    assert volume_directories([service(volume(":/notes", owner="4294967294:0"))]) != set()


def test_a_directory_is_made_when_new_checked_again_later_and_retried_after_a_failure():
    from restdemo_agent.volumes import RECHECK_SECONDS, RETRY_SECONDS, due_directories

    parent = (("device", ":/"), ("type", "nfs"))
    notes, uploads = VolumeDirectory(parent, "notes", 1, 1), VolumeDirectory(parent, "uploads", 1, 1)
    back_to_root = VolumeDirectory(parent, "notes", 0, 0)
    assert due_directories({notes, uploads}, {}, {}, 1000.0) == [notes, uploads]
    assert due_directories({notes, uploads}, {notes: 1000.0}, {uploads: 1000.0}, 1001.0) == []
    assert due_directories({notes}, {notes: 1000.0}, {}, 1000.0 + RECHECK_SECONDS + 1) == [notes]
    assert due_directories({uploads}, {}, {uploads: 1000.0}, 1000.0 + RETRY_SECONDS + 1) == [uploads]
    assert due_directories({back_to_root}, {notes: 1000.0}, {}, 1001.0) == [back_to_root]  # an owner changed
