"""Database: the stack's RDS for PostgreSQL instance (restdemo:database on AWS, ADR 0030).

In the nodes' subnets (the private ones when the nodes are private; a DB subnet group over their
zones), never publicly accessible, its security group admitting 5432 from the nodes only. Its storage
(gp3) is encrypted with the stack's KMS key; its automated backups are kept databaseBackupDays (7 at
least); deletionProtection keeps it from deletion; prod runs
it Multi-AZ. The program never deletes it: a final snapshot would be taken and its automated backups
kept if anyone did. Its master password is RDS's own (`manage_master_user_password`): RDS makes it, keeps it
in Secrets Manager under the account's `aws/secretsmanager` key and rotates it; neither Pulumi's state
nor a stack file holds it. The managers' role may read that one secret (a policy of its own, made
here), which the leader's agent turns into the services' files. From databaseSnapshot a new instance
is made beside the old, which stays until the operator deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config.database import DATABASE_NAME, DATABASE_USER, POSTGRES_PORT
from infra.config.iam_policy import allow, policy
from infra.config.names import database_prefix, database_subnet_group
from infra.config.settings import SettingsView
from infra.config.tags import tags
from infra.network.firewall import allow_in, security_group
from infra.network.network import Network


@dataclass(frozen=True)
class DatabaseSettings(SettingsView):
    """What `Database` reads of the settings."""

    owner: str | None
    database_version: str
    database_instance_class: str
    database_storage_gb: int
    database_backup_days: int
    database_multi_az: bool
    database_snapshot: str | None
    deletion_protection: bool


ENGINE = "postgres"
STORAGE_TYPE = "gp3"
# When RDS backs up and patches (UTC): apart, at night in Europe, the backup first.
BACKUP_WINDOW = "02:00-03:00"
MAINTENANCE_WINDOW = "sun:03:30-sun:04:30"


def instance_args(settings: DatabaseSettings, prefix: str) -> dict:
    """The instance's settings that depend on the stack's alone: what RDS makes, how it is kept, and
    what a restore leaves to the snapshot (its database's name and user: RDS refuses a DBName when
    restoring PostgreSQL). Named by a prefix RDS's provider completes once, at creation: a restore is a
    new instance beside the old, and an instance is never renamed (unsetting databaseSnapshot changes
    nothing). If it is ever deleted, a final snapshot is taken and its automated backups stay."""
    return {
        "identifier_prefix": prefix,
        "engine": ENGINE,
        "engine_version": settings.database_version,
        "instance_class": settings.database_instance_class,
        "allocated_storage": settings.database_storage_gb,
        "storage_type": STORAGE_TYPE,
        "storage_encrypted": True,
        "publicly_accessible": False,
        "multi_az": settings.database_multi_az,
        "port": POSTGRES_PORT,
        "manage_master_user_password": True,
        "backup_retention_period": settings.database_backup_days,
        "backup_window": BACKUP_WINDOW,
        "maintenance_window": MAINTENANCE_WINDOW,
        "copy_tags_to_snapshot": True,
        "auto_minor_version_upgrade": True,
        # A raised databaseVersion upgrades in place (in the maintenance window's stead: at once).
        "allow_major_version_upgrade": True,
        "apply_immediately": True,
        "deletion_protection": settings.deletion_protection,
        "skip_final_snapshot": False,
        "final_snapshot_identifier": f"{prefix}final",
        "delete_automated_backups": False,
        **(
            {"snapshot_identifier": settings.database_snapshot}
            if settings.database_snapshot
            else {"db_name": DATABASE_NAME, "username": DATABASE_USER}
        ),
    }


def secret_reader_policy(secret_arn: str) -> str:
    """The managers may read the master secret, and nothing else of RDS's: AWS's managed key lets any
    principal of the account decrypt through Secrets Manager, so no KMS statement is needed."""
    return policy(allow(["secretsmanager:GetSecretValue"], [secret_arn]))


class Database(pulumi.ComponentResource):
    """The stack's RDS for PostgreSQL instance, its subnet group and security group, and the managers'
    permission to read its master secret.

    Takes:
        name: the prefix of every child's name (`<name>`, `<name>-subnets`, `<name>-postgres`, `<name>-reader`).
        settings: its slice of the settings (version, class, storage, backups, Multi-AZ, snapshot, protection).
        network: the VPC and the nodes' subnets (the DB subnet group's).
        node_security_group_id: the group every node is in (the only source 5432 is admitted from).
        kms_key_arn: the stack's KMS key, which encrypts the storage.
        reader_role: the managers' role's name (the leader's agent reads the master secret).
        opts: resource options.

    Gives:
        address: the instance's DNS name; port: 5432.
        secret_arn: the master secret's ARN (JSON with `username` and `password`).
        identifier: the instance's identifier (the alarms' dimension).
        reader: the managers' policy (the services wait for it).
    """

    def __init__(
        self,
        name: str,
        *,
        settings: DatabaseSettings,
        network: Network,
        node_security_group_id: pulumi.Input[str],
        kms_key_arn: pulumi.Input[str],
        reader_role: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:data:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=database_subnet_group(pulumi.get_stack()),
            subnet_ids=network.node_subnet_ids,
            description="restdemo database: the nodes' subnets",
            tags=tags(settings, "database"),
            opts=child,
        )
        group = security_group(name, settings, network.vpc_id, "restdemo database: Postgres from the nodes only", child)
        allow_in(
            f"{name}-postgres",
            settings,
            group,
            POSTGRES_PORT,
            "Postgres from the nodes",
            child,
            source_group_id=node_security_group_id,
        )
        instance = aws.rds.Instance(
            name,
            **instance_args(settings, database_prefix(pulumi.get_stack())),
            kms_key_id=kms_key_arn,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[group.id],
            tags=tags(settings, "database"),
            # The data outlives the program's use of it, as the volumes' file system does: a restore, a
            # Compose file with no database left, or `make down` leave the instance running in the
            # account (make down names it); the operator deletes it (operations.md, Restoring).
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        self.secret_arn = instance.master_user_secrets.apply(lambda secrets: secrets[0].secret_arn)
        self.reader = aws.iam.RolePolicy(
            f"{name}-reader",
            role=reader_role,
            policy=self.secret_arn.apply(secret_reader_policy),
            opts=child,
        )
        self.address = instance.address
        self.port = pulumi.Output.from_input(POSTGRES_PORT)
        self.identifier = instance.identifier
        self.register_outputs({"address": self.address, "secret_arn": self.secret_arn, "identifier": self.identifier})
