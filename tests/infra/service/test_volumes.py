"""infra/service/volumes.py: a Compose volume as the tasks mount it, on a node's disk or on EFS."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.support.stack_variants import COMPOSE_VARIANT, compose_app_run, variant_run

pytestmark = pytest.mark.unit

SERVICE = "docker:index/service:Service"


def web_spec(run) -> dict:
    return run.named(SERVICE, "restdemo-web").inputs["taskSpec"]["containerSpec"]


def test_on_the_local_stack_a_volume_is_the_nodes_own_named_after_the_app():
    container = web_spec(compose_app_run())
    assert container["user"] == "65534:65534"
    assert container["mounts"] == [
        {
            "type": "volume",
            "source": "restdemo_notes",
            "target": "/data",
            "volumeOptions": {
                "driverName": "local",
                "labels": [{"label": "restdemo.volume.owner", "value": "65534:65534"}],
            },
        }
    ]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_on_aws_a_volume_is_its_own_directory_of_the_stacks_file_system_over_nfs(stack):
    container = web_spec(variant_run(stack, COMPOSE_VARIANT))
    (mount,) = container["mounts"]
    assert mount["volumeOptions"]["driverOptions"] == {
        "type": "nfs",
        "o": "addr=fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com,nfsvers=4.1,rsize=1048576,wsize=1048576,"
        "hard,timeo=600,retrans=2,noresvport,nosuid,nodev",
        "device": ":/notes",
    }
    # Named after the options too (the first 8 hex digits of their SHA-256, keys sorted, as JSON).
    options = json.dumps(mount["volumeOptions"]["driverOptions"], sort_keys=True).encode()
    assert (mount["source"], mount["target"], mount["volumeOptions"]["driverName"]) == (
        "restdemo_notes_" + hashlib.sha256(options).hexdigest()[:8],
        "/data",
        "local",
    )


def test_new_options_are_a_new_volume_name_on_the_nodes():
    """Swarm fixes a volume's options on a node when it first makes it there: another file system or
    another mount option must not reach only the nodes that never had the volume."""
    from infra.service.volumes import VolumeStore, digest

    one = {"type": "nfs", "o": "addr=fs-1.efs.eu-west-1.amazonaws.com,nfsvers=4.1", "device": ":/notes"}
    assert digest(one) == digest(dict(reversed(one.items())))  # the options, not their order
    assert digest(one) != digest({**one, "o": "addr=fs-2.efs.eu-west-1.amazonaws.com,nfsvers=4.1"})
    assert digest(one) != digest({**one, "o": one["o"] + ",nosuid"})
    assert VolumeStore().volume_name("restdemo", "notes") == "restdemo_notes"


def test_the_services_wait_for_the_mount_targets():
    run = variant_run("dev", COMPOSE_VARIANT)
    targets = {t.urn for t in run.of_type("aws:efs/mountTarget:MountTarget")}
    web = run.named(SERVICE, "restdemo-web")
    component = run.by_urn(web.parent)
    assert targets <= set(component.dependencies)


def test_the_services_that_mount_no_volume_have_no_mounts():
    run = variant_run("dev", COMPOSE_VARIANT)
    assert "mounts" not in run.named(SERVICE, "restdemo-api").inputs["taskSpec"]["containerSpec"]
