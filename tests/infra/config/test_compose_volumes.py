"""Compose `volumes` (named, top-level and per service), read as `docker stack deploy` reads them: the
subset deployed, every other form refused one line each with what to do instead."""

from __future__ import annotations

import pytest

from infra.config.compose import VolumeMount, load_app
from tests.infra.config.test_compose import compose_in, problems_of

pytestmark = pytest.mark.unit


def test_named_volumes_are_typed_with_their_mounts_and_owner(tmp_path):
    compose = compose_in(
        tmp_path,
        """\
        services:
          db:
            image: postgres
            user: "999:999"
            volumes:
              - data:/var/lib/postgresql/data
              - type: volume
                source: backups
                target: /backups
                read_only: true
                volume: {nocopy: true}
        volumes:
          data: {}
          backups:
            labels: {purpose: dumps}
        """,
    )
    app = load_app([compose])
    (db,) = app.services
    assert db.user == "999:999"
    assert db.volumes == [
        VolumeMount(source="data", target="/var/lib/postgresql/data"),
        VolumeMount(source="backups", target="/backups", read_only=True, nocopy=True),
    ]
    assert app.volumes == {"backups": {"purpose": "dumps"}, "data": {}}


def test_every_other_form_of_volume_is_refused_one_line_each(tmp_path):
    (tmp_path / "rel").mkdir()
    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            image: nginx
            volumes:
              - /scratch
              - ./rel:/rel
              - data:/data:z
              - type: tmpfs
                target: /tmp/cache
              - {type: volume, source: data, target: /other, consistency: cached}
        volumes:
          data:
            driver: rexray/ebs
            driver_opts: {size: "10"}
            external: true
            name: shared
        """,
    )
    assert problems_of(compose) == [
        "compose.yaml: services.web.volumes[4].consistency: not supported: this program deploys read_only, source, "
        "target, type and volume in volumes[4]; remove it",
        "compose.yaml: services.web.volumes[1]: ./rel:/rel is a directory of the node; a task gets none, mount a "
        "named volume declared under the top-level volumes",
        "compose.yaml: services.web.volumes[2]: data:/data:z: the mode may be ro or rw only",
        "compose.yaml: volumes.data.driver: not supported: the platform chooses the driver (Docker's local driver, "
        "on EFS on AWS: docs/your-app.md, Volumes); remove it",
        "compose.yaml: volumes.data.driver_opts: not supported: the platform chooses the driver (Docker's local "
        "driver, on EFS on AWS: docs/your-app.md, Volumes); remove it",
        "compose.yaml: volumes.data.external: not yet: the program makes each volume of the stack; remove it",
        "compose.yaml: volumes.data.name: not supported: a volume is named <serviceName>_<volume> in the swarm, as "
        "docker stack deploy names it; remove it",
    ]


def test_what_the_loader_makes_of_the_short_forms_is_refused_after_it(tmp_path):
    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            image: nginx
            volumes: [/scratch, "data:/data", {type: tmpfs, target: /cache}, "other:/other"]
          api:
            image: nginx
            user: app
            volumes: ["data:/data"]
        volumes:
          data: {}
        """,
    )
    assert problems_of(compose) == [
        "services.api.user: app: a service that mounts a volume runs as a numeric uid or uid:gid (its volume's "
        "directory is made owned by it)",
        "services.web.user: a service that mounts a volume states its user, a numeric uid or uid:gid (its volume's "
        "directory is made owned by it; the image's own user is not known here)",
        "services.web.volumes: /scratch is an anonymous volume, which stays on the node its task ran on; name it "
        "and declare it under the top-level volumes",
        "services.web.volumes: /cache is a tmpfs mount: not yet; write to a named volume or the container's own files",
        "services.web.volumes: other is not declared under the top-level volumes",
        "volumes.data: mounted by services that run as different users (api as app, web as 0:0); give them one uid:gid",
    ]


def test_a_volume_mounted_by_services_of_one_user_is_shared(tmp_path):
    compose = compose_in(
        tmp_path,
        """\
        services:
          web: {image: nginx, user: "1000", volumes: ["uploads:/srv/uploads"]}
          worker: {image: nginx, user: "1000:1000", volumes: ["uploads:/data:ro"]}
        volumes:
          uploads: {}
        """,
    )
    app = load_app([compose])
    assert [(s.name, s.volumes) for s in app.services] == [
        ("web", [VolumeMount(source="uploads", target="/srv/uploads")]),
        ("worker", [VolumeMount(source="uploads", target="/data", read_only=True)]),
    ]
    assert app.volume_owner("uploads") == "1000:1000"


def test_a_bind_a_variable_makes_a_bad_name_and_a_uid_beyond_chowns_are_refused(tmp_path, monkeypatch):
    """What file_problems cannot see in the text: a ${VAR} that makes a bind mount, a volume name that
    is no directory name, an id chown would not take."""
    monkeypatch.setenv("HOSTDIR", "/etc")
    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            image: nginx
            user: "4294967295"
            volumes: ["${HOSTDIR}:/data", {type: volume, source: "..", target: /up}, "-x:/x"]
        volumes:
          "..": {}
          "-x": {}
        """,
    )
    assert problems_of(compose) == [
        "services.web.user: 4294967295: a service that mounts a volume runs as a numeric uid or uid:gid (its "
        "volume's directory is made owned by it)",
        "services.web.volumes: /etc:/data is a directory of the node; a task gets none, mount a named volume "
        "declared under the top-level volumes",
        "volumes.-x: a volume's name is 1-128 letters, digits, '.', '_' and '-', starting with a letter or digit",
        "volumes...: a volume's name is 1-128 letters, digits, '.', '_' and '-', starting with a letter or digit",
    ]


def test_a_long_form_bind_is_refused_before_the_loader(tmp_path):
    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            image: nginx
            volumes:
              - {type: bind, source: /, target: /host}
              - {type: volume, source: data, target: /d, volume: {subpath: x}}
        volumes: {data: {}}
        """,
    )
    assert problems_of(compose) == [
        "compose.yaml: services.web.volumes[0]: type bind is a directory of the node; a task gets none, mount a named "
        "volume declared under the top-level volumes",
        "compose.yaml: services.web.volumes[1].volume.subpath: not supported: this program deploys nocopy in "
        "volumes[1].volume; remove it",
    ]
