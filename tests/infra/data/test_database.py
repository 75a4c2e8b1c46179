"""infra/data/database.py: the stack's RDS for PostgreSQL instance, under mocks (ADR 0030)."""

from __future__ import annotations

import json

import pytest

from infra.config.settings import SettingsError
from tests.support.aws_stack import AWS_STACKS
from tests.support.pulumi_program import fake_outputs, kms_key_arn, run_program, wire_config
from tests.support.stack_variants import (
    COMPOSE_AWS_SECRETS_VARIANT,
    COMPOSE_VARIANT,
    api_image,
    compose_app_config,
    run_compose_app,
    variant_run,
)

pytestmark = pytest.mark.unit

RDS = "aws:rds/instance:Instance"


def made(run, stack: str = "dev") -> dict:
    """What RDS gives the instance (the mocks' address and master secret, as the provider's)."""
    database = run.one(RDS)
    return fake_outputs(RDS, database.name, database.inputs, "eu-west-1")


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_an_encrypted_private_instance_whose_password_rds_keeps(stack):
    run = variant_run(stack, COMPOSE_VARIANT)
    database = run.one(RDS).inputs
    prod = stack == "prod"
    identifier = f"restdemo-{stack}-database"
    assert {k: v for k, v in database.items() if k not in ("tags", "dbSubnetGroupName", "vpcSecurityGroupIds")} == {
        "identifier": identifier,
        "engine": "postgres",
        "engineVersion": "16",
        "instanceClass": "db.t4g.micro",
        "allocatedStorage": 20,
        "storageType": "gp3",
        "storageEncrypted": True,
        "kmsKeyId": kms_key_arn("eu-west-1", "secrets", stack),
        "publiclyAccessible": False,
        "multiAz": prod,
        "port": 5432,
        "manageMasterUserPassword": True,
        "backupRetentionPeriod": 7,
        "backupWindow": "02:00-03:00",
        "maintenanceWindow": "sun:03:30-sun:04:30",
        "copyTagsToSnapshot": True,
        "autoMinorVersionUpgrade": True,
        "allowMajorVersionUpgrade": True,
        "applyImmediately": True,
        "deletionProtection": prod,
        "skipFinalSnapshot": not prod,
        **({"finalSnapshotIdentifier": f"{identifier}-final"} if prod else {}),
        "dbName": "app",
        "username": "app",
    }
    # No password anywhere: not sent, not in the state.
    assert not {"password", "passwordWo"} & set(database)
    assert database["dbSubnetGroupName"] == f"restdemo-{stack}-database"


def test_postgres_is_admitted_from_the_nodes_only_and_the_subnets_are_the_nodes():
    run = variant_run("prod", COMPOSE_VARIANT)
    rules = [
        r.inputs
        for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.name.startswith("database")
    ]
    node_group = next(g for g in run.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name == "swarm-nodes")
    assert [(r["ipProtocol"], r["fromPort"], r["toPort"], r["referencedSecurityGroupId"]) for r in rules] == [
        ("tcp", 5432, 5432, f"{node_group.name}-id")
    ]
    assert not any("cidrIpv4" in r for r in rules)
    assert run.one(RDS).inputs["vpcSecurityGroupIds"] == ["database-id"]
    private = sorted(
        f"{s.name}-id" for s in run.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("network-private-")
    )
    assert sorted(run.one("aws:rds/subnetGroup:SubnetGroup").inputs["subnetIds"]) == private


def test_only_the_managers_read_the_master_secret_exactly():
    run = variant_run("dev", COMPOSE_VARIANT)
    reader = next(p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "database-reader")
    secret = made(run)["masterUserSecrets"][0]["secretArn"]
    assert reader.inputs["role"] == "restdemo-dev-eu-west-1-manager"
    assert json.loads(reader.inputs["policy"])["Statement"] == [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": [secret]}
    ]


def test_the_services_that_mount_it_get_its_files_from_the_master_secret_by_templates():
    """admin mounts `database`: its label names six files, each rendered by the leader's agent from
    RDS's master secret; web and api mount none of it. The same Compose file as the local stack's."""
    run = variant_run("dev", COMPOSE_AWS_SECRETS_VARIANT)
    services = {s.inputs["name"]: s for s in run.of_type("docker:index/service:Service")}
    labels = {item["label"]: item["value"] for item in services["restdemo_admin"].inputs["labels"]}
    mounts = json.loads(labels["restdemo.secrets.aws"])["mounts"]
    secret, address = made(run)["masterUserSecrets"][0]["secretArn"], made(run)["address"]
    assert {m["target"]: m["template"] for m in mounts} == {
        "/run/secrets/database_url": f"postgresql://{{username|url}}:{{password|url}}@{address}:5432/app",
        "/run/secrets/database_host": address,
        "/run/secrets/database_port": "5432",
        "/run/secrets/database_name": "app",
        "/run/secrets/database_user": "{username}",
        "/run/secrets/database_password": "{password}",
    }
    assert {m["source"] for m in mounts} == {secret}
    assert {m["name"] for m in mounts} == {
        f"restdemo_database_{part}" for part in ("url", "host", "port", "name", "user", "password")
    }
    assert "rds!" not in json.dumps(services["restdemo_web"].inputs) and "rds!" not in json.dumps(
        services["restdemo_api"].inputs
    )
    assert services["restdemo_admin"].ignore_changes == ["taskSpec.containerSpec.secrets"]
    # No Postgres service on the swarm on AWS, and no Docker secret of the database's.
    assert "restdemo_database" not in services
    assert not [s for s in run.of_type("docker:index/secret:Secret") if "database" in s.name]


def test_a_restore_is_a_new_instance_from_the_snapshot_beside_the_old():
    config = compose_app_config(stack="dev", **{"restdemo:databaseSnapshot": "restdemo-dev-before-migration"})
    run = run_compose_app(config, {"API_IMAGE": api_image("dev")}, "dev")
    database = run.one(RDS).inputs
    assert database["snapshotIdentifier"] == "restdemo-dev-before-migration"
    # A new identifier (the old instance is deleted after the new one exists), and no DBName or user:
    # RDS takes them from the snapshot (and refuses a DBName when restoring PostgreSQL).
    assert database["identifier"].startswith("restdemo-dev-database-") and len(database["identifier"]) == 30
    assert "dbName" not in database and "username" not in database
    assert database["manageMasterUserPassword"] is True


def test_bad_versions_classes_sizes_and_snapshots_are_named_in_one_run(monkeypatch):
    monkeypatch.setenv("API_IMAGE", api_image("dev"))
    config = {
        **wire_config(compose_app_config(stack="dev")),
        "restdemo:databaseVersion": "12",
        "restdemo:databaseInstanceClass": "db.t2.micro",
        "restdemo:databaseStorageGb": "10",
        "restdemo:databaseBackupDays": "3",
        "restdemo:databaseSnapshot": "1-bad",
    }
    with pytest.raises(SettingsError) as raised:
        run_program("dev", config)
    lines = [line.strip() for line in str(raised.value).splitlines()[1:]]
    assert lines == [
        'restdemo:databaseVersion = "12": must be one of 14, 15, 16, 17: RDS for PostgreSQL\'s major versions in '
        "standard support",
        'restdemo:databaseInstanceClass = "db.t2.micro": is no DB instance class of RDS for PostgreSQL: db. and one '
        "of the t3, t4g, m5, m6g, m6i, m7g, r5, r6g, r6i, r7g types",
        'restdemo:databaseStorageGb = "10": must be at least 20',
        'restdemo:databaseBackupDays = "3": must be at least 7',
        'restdemo:databaseSnapshot = "1-bad": must be a DB snapshot identifier (letters, digits, hyphens, starting '
        "with a letter) or a snapshot ARN",
    ]
