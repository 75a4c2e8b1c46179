"""The stack's database (restdemo:database, ADR 0030) as the services take it: pure decisions, no calls.

A Compose service that mounts the external secret `database` gets, instead of that one file, six
beside where it would be (`/run/secrets/database_url`, `_host`, `_port`, `_name`, `_user`,
`_password`). Each is a template over the credentials (`{username}`, `{password}`; `|url` quoted for
the URL): on the local stack the program fills them with the stack secret `database` (the password)
and stores them as Docker secrets; on AWS the leader's agent fills them from RDS's master secret
(restdemo_agent.secrets), so a rotation reaches the services as any secret kept in AWS does.
"""

from __future__ import annotations

import dataclasses
import re

from infra.config.compose import Mount

# The external secret a Compose file names for the database, on every stack; on the local stack also
# the Postgres service's name (and its volume's), by which the other services reach it.
DATABASE_SECRET = "database"
LOCAL_SERVICE = "database"
# The database and its user: one of each per stack, the same names everywhere, so the URL differs
# between stacks only in its host and password. RDS's DBName: letters, digits, underscores, starting
# with a letter; its MasterUsername: letters and digits, starting with a letter, not a reserved word.
DATABASE_NAME = "app"
DATABASE_USER = "app"
POSTGRES_PORT = 5432
# The files, by the suffix after the mount's target.
PARTS = ("url", "host", "port", "name", "user", "password")

# RDS for PostgreSQL's major versions in standard support (Amazon RDS User Guide, "Supported PostgreSQL
# major versions on Amazon RDS", as of 2026-12: 13 left standard support on 2026-02-28), from 15: whose
# default parameter group sets rds.force_ssl (Amazon RDS User Guide, "Using SSL with a PostgreSQL DB
# instance"), so no connection to it is in clear text. RDS picks the minor version and moves it forward
# in the maintenance window.
POSTGRES_VERSIONS = ("15", "16", "17")
# The DB instance class families RDS for PostgreSQL runs on (Amazon RDS User Guide, "Supported DB engines
# for DB instance classes"); a class is `db.` and an EC2 instance type of one of them, as botocore's EC2
# model lists it, not a bare-metal one.
POSTGRES_CLASS_FAMILIES = ("t3", "t4g", "m5", "m6g", "m6i", "m7g", "r5", "r6g", "r6i", "r7g")
# gp3 storage for RDS for PostgreSQL: 20 GiB to 64 TiB (Amazon RDS User Guide, "Amazon RDS DB instance
# storage", General Purpose SSD storage).
STORAGE_GB = (20, 65536)
# Automated backups kept 7 (the floor: a week to notice) to 35 days (RDS's most,
# BackupRetentionPeriod).
BACKUP_DAYS = (7, 35)
# A snapshot to restore from: its identifier (1-255 letters, digits or hyphens, starting with a letter,
# no two hyphens in a row, not ending with one: RDS CreateDBSnapshot; an automated one's starts rds:) or a
# shared snapshot's ARN.
SNAPSHOT = re.compile(
    r"(?:arn:aws:rds:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:snapshot:)?(?:rds:)?[A-Za-z](?:-?[A-Za-z0-9]){0,254}"
)


def instance_class_problem(value: str, ec2_types: tuple[str, ...]) -> str | None:
    """Why `value` is no DB instance class RDS for PostgreSQL offers (None: it is one)."""
    ec2_type = value.removeprefix("db.")
    family, _, size = ec2_type.partition(".")
    if not value.startswith("db.") or ec2_type not in ec2_types or family not in POSTGRES_CLASS_FAMILIES:
        families = ", ".join(POSTGRES_CLASS_FAMILIES)
        return f"is no DB instance class of RDS for PostgreSQL: db. and one of the {families} types"
    burstable = family in ("t3", "t4g")
    if (burstable and size not in BURSTABLE_GIB) or (not burstable and not RDS_SIZE.fullmatch(size)):
        offered = ", ".join(BURSTABLE_GIB) if burstable else "large, xlarge, 2xlarge and up"
        return f"is a size RDS does not offer in db.{family} ({offered})"
    return None


# Memory of a DB instance class in GiB (Amazon RDS User Guide, "Hardware specifications for DB instance
# classes"): burstable t3 and t4g by size; the general purpose m families 4 GiB a vCPU, the memory
# optimized r families 8, at 2 vCPUs for large, 4 for xlarge and 4 a step beyond.
BURSTABLE_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
# The general purpose and memory optimized sizes RDS offers: large, xlarge, Nxlarge (no medium, no metal).
RDS_SIZE = re.compile(r"large|xlarge|(?:[2-9]|[1-4]\d)xlarge")
GIB_PER_VCPU = {"m": 4, "r": 8}
# RDS for PostgreSQL's default max_connections: LEAST({DBInstanceClassMemory/9531392}, 5000) (Amazon RDS
# User Guide, "Maximum number of database connections").
BYTES_PER_CONNECTION = 9531392
MAX_CONNECTIONS = 5000


def instance_memory_gib(instance_class: str) -> int:
    """The class's memory (a validated class: db.<family>.<size>)."""
    family, size = instance_class.removeprefix("db.").split(".")
    if family in ("t3", "t4g"):
        return BURSTABLE_GIB[size]
    vcpus = 2 if size == "large" else 4 * int(size.removesuffix("xlarge") or 1)
    return vcpus * GIB_PER_VCPU[family[0]]


def max_connections(instance_class: str) -> int:
    """Connections the instance takes at RDS's default (its memory's; the OS's share not counted)."""
    return min(instance_memory_gib(instance_class) * 2**30 // BYTES_PER_CONNECTION, MAX_CONNECTIONS)


# On AWS the URL asks for TLS (libpq's sslmode=require: encrypted, the server's certificate not checked,
# which needs RDS's CA bundle in the image); locally the database is on the app's own overlay network.
AWS_URL_OPTIONS = "?sslmode=require"


def part_templates(
    host: str, port: int | str = POSTGRES_PORT, name: str = DATABASE_NAME, options: str = ""
) -> dict[str, str]:
    """Each file's template: the URL (`postgresql://user:password@host:port/name` and `options`, the
    credentials percent-encoded), the address's parts as they are, the credentials."""
    return {
        "url": f"postgresql://{{username|url}}:{{password|url}}@{host}:{port}/{name}{options}",
        "host": host,
        "port": str(port),
        "name": name,
        "user": "{username}",
        "password": "{password}",
    }


def database_mounts(mount: Mount) -> list[Mount]:
    """The six files a mount of the database becomes: `<target>_<part>`, each as the mount says
    (owner, mode); their sources `<source>_<part>`."""
    return [
        dataclasses.replace(mount, source=f"{mount.source}_{part}", target=f"{mount.target}_{part}") for part in PARTS
    ]
