"""RDS: the stack's database (an RDS for PostgreSQL instance, its DB subnet group), and Secrets Manager:
the secrets the leader's agent reads for the services (awsSecrets', and RDS's master secret).

Sources: terraform-provider-aws (tpa) internal/service/rds (instance.go, subnet_group.go, validate.go),
internal/verify (validate.go); the Amazon RDS API reference (CreateDBInstance) and User Guide; botocore's
EC2 model for the instance types a DB instance class is made of; the AWS Secrets Manager API reference
(CreateSecret) and the Systems Manager API reference (PutParameter).
"""

from __future__ import annotations

import json
import re
from typing import Any

from infra.config.database import POSTGRES_VERSIONS, instance_class_problem
from infra.config.settings import ec2_instance_types
from restdemo_agent.contract import AWS_SECRETS_LABEL
from tests.fidelity.rules import Between, Field, Needs, OneOf, Pattern, Satisfies
from tests.support.pulumi_program import ProgramRun, Registered

INSTANCE = "aws:rds/instance:Instance"
SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
SERVICE = "docker:index/service:Service"

# tpa rds/validate.go validIdentifierPrefix: lower-case letters, digits and hyphens, a letter first, no
# two hyphens in a row; the provider adds 26 characters (id.PrefixedUniqueId) to an identifier of at
# most 63 (validIdentifier), so the prefix is 37 at most.
IDENTIFIER_PREFIX = r"[a-z](?:-?[a-z0-9])*-?"
# tpa validFinalSnapshotIdentifier: letters, digits and hyphens, a letter first, no two hyphens in a row,
# no hyphen last, at most 255.
SNAPSHOT_IDENTIFIER = r"[A-Za-z](?:-?[A-Za-z0-9])*"
# RDS CreateDBInstance, PostgreSQL: DBName 1-63 letters, digits or underscores, a letter first;
# MasterUsername the same (and not a word Postgres reserves).
POSTGRES_NAME = r"[A-Za-z][A-Za-z0-9_]{0,62}"
# tpa verify.ValidOnceADayWindowFormat and ValidOnceAWeekWindowFormat.
DAY_WINDOW = r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d"
WEEK_WINDOW = (
    r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d"
)
# Secrets Manager CreateSecret Name: 1-512 of letters, digits and /_+=.@-; a secret a service manages
# carries its prefix (RDS's: rds!db-<uuid>), and its ARN 6 more characters. SSM PutParameter Name: letters,
# digits and _.-/, at most 2048 with the ARN's prefix, 15 levels at most, not under aws or ssm.
SECRET_NAME = re.compile(r"(?:rds!)?[A-Za-z0-9/_+=.@-]{1,512}-[A-Za-z0-9]{6}")
PARAMETER_NAME = re.compile(r"/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+){0,14}")


def _instance_class(value: Any) -> str | None:
    return instance_class_problem(str(value), ec2_instance_types())


def _kept_sources(value: Any) -> str | None:
    """Each source the label names is a Secrets Manager secret or an SSM parameter AWS would hold."""
    if value.get("label") != AWS_SECRETS_LABEL:
        return None
    for mount in json.loads(value["value"])["mounts"]:
        arn = mount["source"].split("#", 1)[0]
        service, name = arn.split(":")[2], arn.split(":", 6)[-1]
        if service == "secretsmanager" and not SECRET_NAME.fullmatch(name):
            return f"{name}: no Secrets Manager secret's name (1-512 of A-Z a-z 0-9 /_+=.@-, and 6 characters)"
        if service == "ssm":
            parameter = arn.split(":parameter", 1)[1]
            if (
                len(parameter) > 2048
                or not PARAMETER_NAME.fullmatch(parameter)
                or parameter.lstrip("/")[:3]
                in (
                    "aws",
                    "ssm",
                )
            ):
                return f"{parameter}: no SSM parameter's name"
    return None


def _reader_policies(service: Registered, run: ProgramRun) -> list[Registered]:
    """A service that mounts the database's files waits for the managers' permission to read them."""
    labels = {item["label"]: item["value"] for item in service.inputs.get("labels") or []}
    if "rds!" not in labels.get(AWS_SECRETS_LABEL, ""):
        return []
    return [
        p
        for p in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if "secretsmanager:GetSecretValue" in p.inputs["policy"] and "rds!" in p.inputs["policy"]
    ]


FIELDS = [
    Field(
        INSTANCE,
        "identifierPrefix",
        Pattern(IDENTIFIER_PREFIX, 37),
        "tpa rds/validate.go validIdentifierPrefix; validIdentifier's 63 less the 26 characters added",
        "Restdemo--db-",
    ),
    Field(
        INSTANCE,
        "engine",
        OneOf(("postgres",)),
        "RDS CreateDBInstance Engine (the program's: RDS for PostgreSQL)",
        "postgresql",
    ),
    Field(
        INSTANCE,
        "engineVersion",
        OneOf(POSTGRES_VERSIONS),
        "RDS User Guide, Supported PostgreSQL major versions (standard support, 2026-12)",
        "9.6",
    ),
    Field(
        INSTANCE,
        "instanceClass",
        Satisfies(_instance_class),
        "RDS User Guide, Supported DB engines for DB instance classes; botocore EC2 InstanceType",
        "db.t2.nano",
    ),
    Field(
        INSTANCE,
        "allocatedStorage",
        Between(20, 65536),
        "RDS User Guide, DB instance storage: gp3 for PostgreSQL 20 GiB-64 TiB",
        10,
    ),
    Field(
        INSTANCE,
        "storageType",
        OneOf(("standard", "gp2", "gp3", "io1", "io2")),
        "tpa rds/instance.go storage_type StringInSlice(StorageType_Values)",
        "gp4",
    ),
    Field(INSTANCE, "storageEncrypted", OneOf((True,)), "RDS: KmsKeyId needs StorageEncrypted", False),
    Field(
        INSTANCE,
        "kmsKeyId",
        Pattern(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]+"),
        "tpa rds/instance.go kms_key_id verify.ValidARN",
        "alias/restdemo",
    ),
    Field(
        INSTANCE,
        "backupRetentionPeriod",
        Between(0, 35),
        "tpa rds/instance.go backup_retention_period IntBetween(0, 35)",
        36,
    ),
    Field(INSTANCE, "backupWindow", Pattern(DAY_WINDOW), "tpa verify.ValidOnceADayWindowFormat", "2am-3am"),
    Field(
        INSTANCE,
        "maintenanceWindow",
        Pattern(WEEK_WINDOW),
        "tpa verify.ValidOnceAWeekWindowFormat (lower case: the provider lowers it, RDS reads it back so)",
        "Sun:03:30-Sun:04:30",
    ),
    Field(INSTANCE, "dbName", Pattern(POSTGRES_NAME), "RDS CreateDBInstance DBName (PostgreSQL)", "1app"),
    Field(INSTANCE, "username", Pattern(POSTGRES_NAME), "RDS CreateDBInstance MasterUsername (PostgreSQL)", "app-user"),
    Field(
        INSTANCE,
        "finalSnapshotIdentifier",
        Pattern(SNAPSHOT_IDENTIFIER, 255),
        "tpa rds/validate.go validFinalSnapshotIdentifier",
        "final--",
    ),
    Field(INSTANCE, "port", Between(1150, 65535), "RDS CreateDBInstance Port (PostgreSQL: 1150-65535)", 80),
    Field(
        SUBNET_GROUP,
        "name",
        Pattern(r"(?!default$)[a-z0-9 ._-]+", 255),
        "tpa rds/validate.go validSubnetGroupName",
        "Default",
    ),
    Field(
        SERVICE,
        "labels[]",
        Satisfies(_kept_sources),
        "Secrets Manager CreateSecret Name; Systems Manager PutParameter Name",
        {
            "label": AWS_SECRETS_LABEL,
            "value": json.dumps({"mounts": [{"source": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:my db"}]}),
        },
    ),
]
# No ForceNew rule: the instance is named by a prefix, so a replacement (a restore: snapshot_identifier is
# ForceNew) is made beside the old one, not delete-first; tests/infra/data/test_database.py holds it to that.
FORCE_NEW: list = []
NEEDS = [
    Needs(
        SERVICE,
        "the managers' permission to read the database's master secret",
        _reader_policies,
        "IAM is eventually consistent: the leader's first reads would be denied, its files late",
    ),
]
