"""`make down`: what `pulumi destroy` needs done first, and what it leaves, said.

Read from the stack's state (`pulumi stack export`):

- before anything: load balancers with deletion protection on (`restdemo:deletionProtection`).
  AWS refuses to delete them, so the destroy would stop halfway; it stops first, saying how.
- the stack's ECR repositories: AWS deletes a repository only when it holds no image, and the
  program sets no force-delete (a `pulumi up` must never lose an image). So the destroy stops at
  them; only then, when nothing that pulls from them is left (no service, no node group), are
  they emptied and the destroy run again. A destroy that fails earlier leaves every image.

After the destroy it names what stays: the stack's state in its backend, and each KMS key, which
AWS keeps pending deletion for its window (`aws kms cancel-key-deletion` brings one back).

    python -m ops.teardown STACK -- pulumi destroy --yes --stack STACK
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

from ops.client import run_command

# What pulls from the repositories: while one is left, no image may go.
PULLERS = ("docker:index/service:Service", "aws:autoscaling/group:Group")
ECR_REPOSITORY = "aws:ecr/repository:Repository"
KMS_KEY = "aws:kms/key:Key"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
FILE_SYSTEM = "aws:efs/fileSystem:FileSystem"
DATABASE = "aws:rds/instance:Instance"
# Where AWS Backup keeps an EFS file system's automatic backups, and for how long (EFS User Guide,
# "Automatic backups").
AUTOMATIC_BACKUP_VAULT = "aws/efs/automatic-backup-vault"
BACKUP_RETENTION_DAYS = 35
# BatchDeleteImage takes at most 100 image ids a call (Amazon ECR API reference).
DELETE_BATCH = 100
# An image an index (a multi-platform image, attestations) refers to is deleted only after the index:
# BatchDeleteImage answers ImageReferencedByManifestList for it, so it is tried again next pass.
DELETE_PASSES = 3
# aws_kms_key's deletion_window_in_days when the program sets none (terraform-provider-aws).
KMS_DEFAULT_WINDOW_DAYS = 30


class TeardownError(Exception):
    """Why nothing, or nothing more, was deleted: one line."""


@dataclass(frozen=True)
class Teardown:
    """What a stack's state says a destroy meets: repositories to empty (name, region, account),
    protected load balancers (names), KMS keys (id, days pending deletion), what still pulls (types) and
    the volumes' file systems (ids), whose backups stay."""

    repositories: list[tuple[str, str, str]]
    protected: list[str]
    keys: list[tuple[str, int]]
    pullers: list[str]
    file_systems: list[tuple[str, str]] = field(default_factory=list)  # (id, ARN)
    databases: list[str] = field(default_factory=list)  # RDS instance identifiers


def plan(exported: dict) -> Teardown:
    """The teardown of a state as `pulumi stack export` prints it."""
    resources = [r for r in (exported.get("deployment") or {}).get("resources") or [] if r.get("outputs")]

    def of(kind: str) -> list[dict]:
        return [r["outputs"] for r in resources if r.get("type") == kind]

    return Teardown(
        # arn:aws:ecr:<region>:<account>:repository/<name>; one without (never created) has nothing in it.
        repositories=[
            (o["name"], *o["arn"].split(":")[3:5]) for o in of(ECR_REPOSITORY) if o.get("name") and o.get("arn")
        ],
        protected=[o.get("name") or o.get("arn", "") for o in of(LOAD_BALANCER) if o.get("enableDeletionProtection")],
        keys=[
            (o["keyId"], int(o.get("deletionWindowInDays") or KMS_DEFAULT_WINDOW_DAYS))
            for o in of(KMS_KEY)
            if o.get("keyId")
        ],
        pullers=sorted({r["type"] for r in resources if r.get("type") in PULLERS}),
        file_systems=[(o["id"], o.get("arn", "")) for o in of(FILE_SYSTEM) if o.get("id")],
        databases=[o["identifier"] for o in of(DATABASE) if o.get("identifier")],
    )


def refusal(stack: str, teardown: Teardown) -> str | None:
    if not teardown.protected:
        return None
    return (
        f"stack '{stack}' has deletion protection on its load balancers ({', '.join(teardown.protected)}), which "
        f"AWS refuses to delete: set restdemo:deletionProtection: false in stacks/Pulumi.{stack}.yaml, run "
        f"'STACK={stack} make up', then make down again; nothing was deleted"
    )


# Backends whose state lives in a bucket of the user's.
BUCKET_BACKENDS = ("s3://", "gs://", "azblob://")


def leftovers(stack: str, teardown: Teardown, backend: str) -> list[str]:
    """What stays after the destroy, a line each."""
    if backend.startswith("file://"):
        where = f"{backend.removeprefix('file://')} (this machine)"
    else:
        where = f"your Pulumi backend ({backend or 'the one pulumi login chose'})"
    lines = [
        f"the state of stack '{stack}' (its history, no resources) in {where}: 'pulumi stack rm {stack}' removes it"
        + ("; the state bucket is yours to keep or delete" if backend.startswith(BUCKET_BACKENDS) else "")
    ]
    lines += [
        f"KMS key {key_id}, pending deletion for {days} days (AWS deletes it then; "
        f"'aws kms cancel-key-deletion --key-id {key_id}' brings it back)"
        for key_id, days in teardown.keys
    ]
    lines += [
        f"EFS file system {file_system} (the stack's volumes) with its data: the program never deletes one "
        f"('aws efs delete-file-system --file-system-id {file_system}' does); its daily backups stay "
        f"{BACKUP_RETENTION_DAYS} days in AWS Backup's {AUTOMATIC_BACKUP_VAULT} "
        f"('aws backup list-recovery-points-by-resource --resource-arn {arn}')"
        for file_system, arn in teardown.file_systems
    ]
    lines += [
        f"RDS instance {identifier} (the stack's database) with its data and automated backups: the program never "
        f"deletes one ('aws rds delete-db-instance --db-instance-identifier {identifier} "
        f"--final-db-snapshot-identifier {identifier}-final-$(date +%Y%m%d%H%M)' does, after "
        "'aws rds modify-db-instance --no-deletion-protection' where it is protected)"
        for identifier in teardown.databases
    ]
    return lines


def _aws(arguments: list[str]) -> str:
    try:
        result = subprocess.run(["aws", *arguments], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise TeardownError("the AWS CLI is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise TeardownError(f"aws {' '.join(arguments[:2])} did not answer within 120 s") from None
    if result.returncode != 0:
        said = [line for line in result.stderr.splitlines() if line.strip()]
        raise TeardownError(f"aws {' '.join(arguments[:2])}: {said[-1] if said else f'exit {result.returncode}'}")
    return result.stdout


def empty_repository(name: str, region: str, account: str) -> int:
    """Delete every image of an ECR repository; how many there were (0 for one already gone). The
    account is the state's: credentials for another one never touch its repository of that name."""
    common = ["--repository-name", name, "--registry-id", account, "--region", region, "--output", "json"]
    try:
        images = json.loads(_aws(["ecr", "list-images", *common, "--query", "imageIds"]) or "[]") or []
    except TeardownError as error:
        if "RepositoryNotFoundException" in str(error):
            return 0
        raise
    pending, failures = images, []
    for _ in range(DELETE_PASSES):
        failures = []
        for start in range(0, len(pending), DELETE_BATCH):
            batch = pending[start : start + DELETE_BATCH]
            answer = json.loads(_aws(["ecr", "batch-delete-image", *common, "--image-ids", json.dumps(batch)]))
            failures += answer.get("failures") or []
        pending = [f["imageId"] for f in failures if f.get("failureCode") == "ImageReferencedByManifestList"]
        if not pending:
            break
    if failures:
        first = failures[0]
        raise TeardownError(
            f"ECR repository {name}: {len(failures)} images not deleted ({first.get('failureCode')}: "
            f"{first.get('failureReason')})"
        )
    return len(images)


def export_state(stack: str) -> dict:
    result = subprocess.run(["pulumi", "stack", "export", "--stack", stack], capture_output=True, text=True)
    if result.returncode != 0:
        said = [line for line in result.stderr.splitlines() if line.strip()]
        raise TeardownError(f"pulumi stack export: {said[-1] if said else f'exit {result.returncode}'}")
    return json.loads(result.stdout)


def run(stack: str, destroy: list[str]) -> int:
    teardown = plan(export_state(stack))
    refused = refusal(stack, teardown)
    if refused:
        raise TeardownError(refused)
    code = run_command(destroy, dict(os.environ))
    if code != 0:
        left = plan(export_state(stack))
        if not left.repositories:
            return code
        if left.pullers:
            print(
                f"restdemo: the destroy stopped while {', '.join(left.pullers)} still pull from the stack's ECR "
                "repositories: they keep their images",
                file=sys.stderr,
            )
            return code
        for name, region, account in left.repositories:
            count = empty_repository(name, region, account)
            print(f"restdemo: emptied ECR repository {name} ({count} images): AWS deletes only an empty one")
        code = run_command(destroy, dict(os.environ))
        if code != 0:
            return code
    print(f"restdemo: stack '{stack}' is down; it leaves:")
    for line in leftovers(stack, teardown, os.environ.get("PULUMI_BACKEND_URL", "")):
        print(f"  - {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) < 3 or arguments[1] != "--":
        print("usage: python -m ops.teardown STACK -- COMMAND ...", file=sys.stderr)
        return 2
    try:
        return run(arguments[0], arguments[2:])
    except TeardownError as error:
        print(f"restdemo: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
