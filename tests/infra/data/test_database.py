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
    prefix = f"restdemo-{stack}-database-"
    assert {k: v for k, v in database.items() if k not in ("tags", "dbSubnetGroupName", "vpcSecurityGroupIds")} == {
        "identifierPrefix": prefix,
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
        "skipFinalSnapshot": False,
        "finalSnapshotIdentifier": f"{prefix}final",
        "deleteAutomatedBackups": False,
        "dbName": "app",
        "username": "app",
    }
    # No password anywhere: not sent, not in the state.
    assert not {"password", "passwordWo"} & set(database)
    # Never deleted by the program (its data outlives its use, as the volumes' does).
    assert run.one(RDS).retain_on_delete is True
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
        # Over TLS (RDS forces it from PostgreSQL 15; the client asks for it too).
        "/run/secrets/database_url": f"postgresql://{{username|url}}:{{password|url}}@{address}:5432/app?sslmode=require",
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
    assert services["restdemo_admin"].ignore_changes[0] == "taskSpec.containerSpec.secrets"
    # No Postgres service on the swarm on AWS, and no Docker secret of the database's.
    assert "restdemo_database" not in services
    assert not [s for s in run.of_type("docker:index/secret:Secret") if "database" in s.name]


def test_a_restore_is_a_new_instance_from_the_snapshot_beside_the_old():
    """A snapshot set replaces the instance (snapshot_identifier is ForceNew); the old one is retained,
    so the services keep working on it until the leader has rendered the new files; unsetting the
    snapshot later sends no snapshot and the same prefix (the provider keeps the identifier it made)."""
    config = compose_app_config(stack="dev", **{"restdemo:databaseSnapshot": "restdemo-dev-before-migration"})
    run = run_compose_app(config, {"API_IMAGE": api_image("dev")}, "dev")
    database = run.one(RDS)
    assert database.inputs["snapshotIdentifier"] == "restdemo-dev-before-migration"
    assert database.inputs["identifierPrefix"] == "restdemo-dev-database-" and "identifier" not in database.inputs
    # No DBName or user: RDS takes them from the snapshot (and refuses a DBName restoring PostgreSQL).
    assert "dbName" not in database.inputs and "username" not in database.inputs
    assert database.inputs["manageMasterUserPassword"] is True and database.retain_on_delete is True
    plain = variant_run("dev", COMPOSE_VARIANT).one(RDS).inputs
    assert plain["identifierPrefix"] == database.inputs["identifierPrefix"] and "snapshotIdentifier" not in plain


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
        'restdemo:databaseVersion = "12": must be one of 15, 16, 17: RDS for PostgreSQL\'s major versions in '
        "standard support",
        'restdemo:databaseInstanceClass = "db.t2.micro": is no DB instance class of RDS for PostgreSQL: db. and one '
        "of the t3, t4g, m5, m6g, m6i, m7g, r5, r6g, r6i, r7g types",
        'restdemo:databaseStorageGb = "10": must be at least 20',
        'restdemo:databaseBackupDays = "3": must be at least 7',
        'restdemo:databaseSnapshot = "1-bad": must be a DB snapshot identifier (letters, digits, hyphens, starting '
        "with a letter) or a snapshot ARN",
    ]


def test_a_workers_role_cannot_read_the_master_secret_and_a_managers_can():
    """Every policy on each node role (its own and the database's reader), evaluated as IAM would: the
    managers may read exactly the master secret; a worker, root on it or not, may not."""
    from tests.support.iam_eval import Request, identity_allows

    run = variant_run("dev", COMPOSE_VARIANT)
    secret = made(run)["masterUserSecrets"][0]["secretArn"]
    policies = {
        role: [
            json.loads(p.inputs["policy"])
            for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
            if p.inputs["role"] in (f"restdemo-dev-eu-west-1-{role}", f"swarm-{role}s-role-id")
        ]
        for role in ("manager", "worker")
    }
    assert len(policies["manager"]) == 2 and len(policies["worker"]) == 1

    def reads(role: str, arn: str) -> bool:
        request = Request(
            f"arn:aws:iam::123456789012:role/restdemo-dev-eu-west-1-{role}", "secretsmanager:GetSecretValue", arn
        )
        return identity_allows(policies[role], request)

    assert reads("manager", secret)
    assert not reads("manager", secret.replace("rds!db-", "rds!db-0"))
    assert not reads("worker", secret)
