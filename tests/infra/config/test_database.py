"""infra/config/database.py and the settings' database checks: the classes, versions and names RDS takes,
the files a mount of the database becomes, and every mistake named at preview (ADR 0030)."""

from __future__ import annotations

import pytest

from infra.config.compose import Mount
from infra.config.database import (
    SNAPSHOT,
    database_mounts,
    instance_class_problem,
    max_connections,
    part_templates,
)
from infra.config.settings import ec2_instance_types
from restdemo_agent.contract import render_template
from tests.infra.config.test_compose import settings_error
from tests.support.pulumi_program import stack_config, wire_config
from tests.support.stack_variants import api_image, compose_app_config

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "value,problem",
    [
        ("db.t4g.micro", None),
        ("db.m7g.large", None),
        ("db.r6i.32xlarge", None),
        ("t4g.micro", "is no DB instance class"),
        ("db.t2.micro", "is no DB instance class"),  # t2: not for current PostgreSQL versions
        ("db.x9.large", "is no DB instance class"),
        ("db.m6i.metal", "is a size RDS does not offer in db.m6i (large, xlarge, 2xlarge and up)"),
        ("db.m6g.medium", "is a size RDS does not offer in db.m6g (large, xlarge, 2xlarge and up)"),
        ("db.t4g.nano", "is a size RDS does not offer in db.t4g (micro, small, medium, large, xlarge, 2xlarge)"),
    ],
)
def test_a_class_is_db_and_an_ec2_type_of_the_families_rds_for_postgres_runs_on(value, problem):
    found = instance_class_problem(value, ec2_instance_types())
    assert found == problem if problem is None else found.startswith(problem)


def test_max_connections_follows_the_classs_memory_up_to_5000():
    assert [max_connections(c) for c in ("db.t4g.micro", "db.t3.medium", "db.m7g.large", "db.r6g.4xlarge")] == [
        112,
        450,
        901,
        5000,
    ]


@pytest.mark.parametrize(
    "snapshot,ok",
    [
        ("restdemo-prod-database-final", True),
        ("rds:restdemo-prod-database-2026-12-01-02-07", True),
        ("arn:aws:rds:eu-west-1:123456789012:snapshot:shared-1", True),
        ("1-starts-with-a-digit", False),
        ("two--hyphens", False),
        ("ends-with-", False),
    ],
)
def test_a_snapshot_is_an_identifier_or_an_arn(snapshot, ok):
    assert bool(SNAPSHOT.fullmatch(snapshot)) is ok


def test_a_mount_of_the_database_is_six_files_each_as_the_mount_says():
    mount = Mount("db", "/run/secrets/db", uid="1000", gid="1000", mode=0o400)
    assert [(m.source, m.target, m.uid, m.mode) for m in database_mounts(mount)] == [
        (f"db_{part}", f"/run/secrets/db_{part}", "1000", 0o400)
        for part in ("url", "host", "port", "name", "user", "password")
    ]


def test_the_files_rendered_from_the_credentials_quote_them_in_the_url_only():
    templates = part_templates("database")
    credentials = {"username": "app", "password": "p@ss/w:rd"}
    assert {part: render_template(t, credentials) for part, t in templates.items()} == {
        "url": "postgresql://app:p%40ss%2Fw%3Ard@database:5432/app",
        "host": "database",
        "port": "5432",
        "name": "app",
        "user": "app",
        "password": "p@ss/w:rd",
    }


def problems(stack: str, monkeypatch, **config) -> list[str]:
    monkeypatch.setenv("API_IMAGE", api_image(stack))
    config = wire_config({**compose_app_config(stack=stack), **config})
    return [line.strip() for line in settings_error(config, frozenset({"restdemo:secrets"}))]


def test_on_aws_the_database_is_in_no_other_secrets_setting(monkeypatch):
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:restdemo/db-Ab12Cd"
    assert problems(
        "dev",
        monkeypatch,
        **{"restdemo:secrets": ["greeting=hello", "database=mine"], "restdemo:awsSecrets": [f"database={arn}"]},
    ) == [
        "restdemo:awsSecrets: database is in restdemo:secrets too; keep it in one of them",
        "restdemo:secrets: database is the database's, whose credentials RDS keeps on AWS; remove it",
        "restdemo:awsSecrets: database is the database's, whose credentials RDS keeps on AWS; remove it",
    ]


def test_on_aws_a_service_mounting_the_database_keeps_its_other_secrets_in_aws(tmp_path, monkeypatch):
    """The leader's agent writes the references of a service that mounts the database: all of them."""
    overlay = tmp_path / "more.yaml"
    overlay.write_text("services:\n  admin:\n    secrets: [database, greeting]\n")
    files = [compose_app_config(stack="dev")["restdemo:composeFile"][0], str(overlay)]
    assert problems("dev", monkeypatch, **{"restdemo:composeFile": files}) == [
        "restdemo:composeFile: services.admin.secrets: database kept in AWS (restdemo:awsSecrets), greeting not; a "
        "service takes all its secrets from AWS or none (its node agent writes all of its references: docs/adr/0029)"
    ]


def test_locally_the_password_is_a_stack_secret_and_the_name_database_is_the_databases(tmp_path, monkeypatch):
    overlay = tmp_path / "more.yaml"
    overlay.write_text(
        "services:\n  database:\n    image: example/db:1\n    healthcheck: {test: [CMD, x]}\nvolumes:\n  database: {}\n"
    )
    files = [compose_app_config()["restdemo:composeFile"][0], str(overlay)]
    assert problems("local", monkeypatch, **{"restdemo:composeFile": files, "restdemo:secrets": ["greeting=hi"]}) == [
        "restdemo:composeFile: secrets.database is external, but restdemo:secrets has no database; add it: pulumi "
        "config set --secret --path 'restdemo:secrets[1]' \"database=$(openssl rand -hex 24)\"",
        "restdemo:composeFile: services.database: the local stack's database service and volume are named database; "
        "rename yours",
        "restdemo:composeFile: volumes.database: the local stack's database service and volume are named database; "
        "rename yours",
    ]


def test_the_database_needs_a_compose_file_that_mounts_it(tmp_path, monkeypatch):
    monkeypatch.setenv("API_IMAGE", api_image("dev"))
    single = {**wire_config(stack_config("dev")), "restdemo:database": "postgres", "restdemo:databaseSnapshot": "x1"}
    assert [line.strip() for line in settings_error(single)] == [
        "restdemo:database is for a Compose file's services, which mount it as the secret database; the single "
        "service mounts none (set restdemo:composeFile)"
    ]
    snapshot_alone = {**wire_config(stack_config("dev")), "restdemo:databaseSnapshot": "x1"}
    assert [line.strip() for line in settings_error(snapshot_alone)] == [
        "restdemo:databaseSnapshot restores the database; set restdemo:database too"
    ]
    unmounted = tmp_path / "compose.yaml"
    unmounted.write_text(
        "services:\n  web:\n    image: ghcr.io/example/web:1\n    ports: ['8080:8080']\n"
        "    healthcheck: {test: [CMD, x]}\nsecrets:\n  database: {external: true}\n"
    )
    assert problems("dev", monkeypatch, **{"restdemo:composeFile": [str(unmounted)]}) == [
        "restdemo:database: no service of the Compose file mounts the external secret database; declare it "
        "(secrets: {database: {external: true}}) and name it in the services' secrets that use the database"
    ]


def test_a_compose_file_may_not_write_the_labels_the_agents_act_on(tmp_path, monkeypatch):
    """A service's own `restdemo.secrets.aws` would have the leader mount the database's master secret
    (an ARN in the state, which the managers may read) into a service that never named it."""
    overlay = tmp_path / "more.yaml"
    overlay.write_text(
        "services:\n  web:\n    labels: {restdemo.volume.owner: '0:0'}\n"
        "    deploy:\n      labels: {restdemo.secrets.aws: '{}', team: shop}\n"
    )
    files = [compose_app_config(stack="dev")["restdemo:composeFile"][0], str(overlay)]
    why = "is the program's and its node agents' (restdemo.*: which secrets the leader reads for a service, whose "
    assert problems("dev", monkeypatch, **{"restdemo:composeFile": files}) == [
        f"restdemo:composeFile: services.web.deploy.labels: restdemo.secrets.aws {why}a volume's directory is); "
        "name yours otherwise",
        f"restdemo:composeFile: services.web.labels: restdemo.volume.owner {why}a volume's directory is); name "
        "yours otherwise",
    ]
