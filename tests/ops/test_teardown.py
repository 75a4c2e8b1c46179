"""ops/teardown.py: `make down` empties the stack's repositories, stops before anything on
deletion protection, and says what stays.

The state is the program's own under mocks, exported as `pulumi stack export` prints it, with the
outputs AWS computes (an ECR repository's ARN, a KMS key's id) filled in as terraform-provider-aws
sets them. ECR is moto's server, reached by the real AWS CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import boto3
import pytest

from ops.teardown import Teardown, TeardownError, empty_repository, leftovers, main, plan, refusal
from tests.support.net import free_port
from tests.support.pulumi_program import run_program, stack_config

pytestmark = pytest.mark.unit

ACCOUNT = "123456789012"  # moto's default account, which the CLI reaches


def exported(stack: str, **config: str) -> dict:
    """The stack's state after an up: each resource's inputs as its outputs, plus what AWS computes."""
    run = run_program(stack, {**stack_config(stack), **config})
    region = stack_config(stack).get("aws:region", "eu-west-1")
    resources = []
    for number, resource in enumerate(r for r in run.registered if r.custom):
        outputs = dict(resource.inputs)
        if resource.type == "aws:ecr/repository:Repository":
            outputs["arn"] = f"arn:aws:ecr:{region}:{ACCOUNT}:repository/{outputs['name']}"
        if resource.type == "aws:kms/key:Key":
            outputs["keyId"] = str(uuid.UUID(int=number))
        if resource.type == "aws:lb/loadBalancer:LoadBalancer":
            outputs["name"] = f"{resource.name}-{number}"
        resources.append({"urn": resource.urn, "type": resource.type, "custom": True, "outputs": outputs})
    return {"version": 3, "deployment": {"resources": resources}}


def test_the_plan_of_an_aws_stack_names_its_repositories_and_keys():
    teardown = plan(exported("dev"))
    assert teardown.repositories == [
        ("restdemo-dev", "eu-west-1", ACCOUNT),
        ("restdemo-agent-dev", "eu-west-1", ACCOUNT),
    ]
    assert [days for _, days in teardown.keys] == [30, 30]  # the swarm's secrets, the alarm topic
    assert teardown.protected == []


def test_deletion_protection_stops_it_before_anything_saying_how():
    teardown = plan(exported("prod"))  # prod's stack file turns it on
    assert len(teardown.protected) == 2  # web and admin
    assert refusal("prod", teardown) == (
        f"stack 'prod' has deletion protection on its load balancers ({', '.join(teardown.protected)}), which AWS "
        "refuses to delete: set restdemo:deletionProtection: false in stacks/Pulumi.prod.yaml, run 'STACK=prod make "
        "up', then make down again; nothing was deleted"
    )
    assert refusal("prod", plan(exported("prod", **{"restdemo:deletionProtection": "false"}))) is None


def test_the_local_stack_leaves_its_state_in_the_repository():
    teardown = plan(exported("local"))
    assert (teardown.repositories, teardown.keys) == ([], [])
    assert leftovers("local", teardown, "file:///work/.pulumi") == [
        "the state of stack 'local' (its history, no resources) in /work/.pulumi (this machine): "
        "'pulumi stack rm local' removes it"
    ]


def test_an_aws_stack_leaves_its_state_and_its_keys_pending_deletion():
    teardown = Teardown(repositories=[], protected=[], keys=[("k-1", 30)], pullers=[])
    assert leftovers("dev", teardown, "https://api.pulumi.com")[0] == (
        "the state of stack 'dev' (its history, no resources) in your Pulumi backend (https://api.pulumi.com): "
        "'pulumi stack rm dev' removes it"
    )
    assert leftovers("dev", teardown, "s3://state") == [
        "the state of stack 'dev' (its history, no resources) in your Pulumi backend (s3://state): 'pulumi stack rm "
        "dev' removes it; the state bucket is yours to keep or delete",
        "KMS key k-1, pending deletion for 30 days (AWS deletes it then; 'aws kms cancel-key-deletion --key-id k-1' "
        "brings it back)",
    ]


def test_a_stack_with_volumes_says_its_file_system_and_backups_stay():
    arn = "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-0123456789abcdef0"
    teardown = Teardown(
        repositories=[], protected=[], keys=[], pullers=[], file_systems=[("fs-0123456789abcdef0", arn)]
    )
    assert leftovers("dev", teardown, "file:///state")[1:] == [
        "EFS file system fs-0123456789abcdef0 (the stack's volumes) with its data: the program never deletes one "
        "('aws efs delete-file-system --file-system-id fs-0123456789abcdef0' does); its daily backups stay 35 days "
        f"in AWS Backup's aws/efs/automatic-backup-vault ('aws backup list-recovery-points-by-resource "
        f"--resource-arn {arn}')"
    ]
    from tests.support.stack_variants import COMPOSE_VARIANT, variant_run

    state = {
        "deployment": {
            "resources": [
                {"type": r.type, "outputs": {**r.inputs, "id": f"{r.name}-id"}}
                for r in variant_run("dev", COMPOSE_VARIANT).registered
                if r.custom
            ]
        }
    }
    assert plan(state).file_systems == [("volumes-id", "")]


def test_a_stack_with_a_database_says_its_instance_and_backups_stay():
    """The program never deletes the database (retain_on_delete): make down names it and how to delete it,
    with a final snapshot of its own name."""
    from tests.support.stack_variants import COMPOSE_VARIANT, variant_run

    run = variant_run("dev", COMPOSE_VARIANT)
    identifier = "restdemo-dev-database-20261207143000000000000001"
    state = {
        "deployment": {
            "resources": [
                {"type": r.type, "outputs": {**r.inputs, **({"identifier": identifier} if "rds" in r.type else {})}}
                for r in run.registered
                if r.custom and r.type == "aws:rds/instance:Instance"
            ]
        }
    }
    teardown = plan(state)
    assert teardown.databases == [identifier]
    assert leftovers("dev", teardown, "file:///state")[1:] == [
        f"RDS instance {identifier} (the stack's database) with its data and automated backups: the program never "
        f"deletes one ('aws rds delete-db-instance --db-instance-identifier {identifier} "
        f"--final-db-snapshot-identifier {identifier}-final-$(date +%Y%m%d%H%M)' does, after "
        "'aws rds modify-db-instance --no-deletion-protection' where it is protected)"
    ]


@pytest.fixture(scope="module")
def ecr():
    """moto's server on a loopback port, and the environment the AWS CLI reaches it with."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    environment = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # the test group's aws
    }
    yield environment
    server.stop()


def push_images(environment: dict, repository: str, count: int) -> None:
    client = boto3.client("ecr", region_name="eu-west-1", endpoint_url=environment["AWS_ENDPOINT_URL"])
    client.create_repository(repositoryName=repository)
    for number in range(count):
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"digest": f"sha256:{number:064x}"},
                "layers": [],
            }
        )
        client.put_image(repositoryName=repository, imageManifest=manifest, imageTag=f"v{number}")


def images_in(environment: dict, repository: str) -> int:
    client = boto3.client("ecr", region_name="eu-west-1", endpoint_url=environment["AWS_ENDPOINT_URL"])
    return len(client.list_images(repositoryName=repository)["imageIds"])


def test_a_repository_is_emptied_in_batches_of_a_hundred(ecr, monkeypatch):
    for name, value in ecr.items():
        monkeypatch.setenv(name, value)
    push_images(ecr, "batch-dev", 150)
    assert empty_repository("batch-dev", "eu-west-1", ACCOUNT) == 150
    assert images_in(ecr, "batch-dev") == 0
    assert empty_repository("batch-dev", "eu-west-1", ACCOUNT) == 0


def test_a_repository_already_gone_has_nothing_to_empty(ecr, monkeypatch):
    for name, value in ecr.items():
        monkeypatch.setenv(name, value)
    assert empty_repository("never-made", "eu-west-1", ACCOUNT) == 0


def test_another_accounts_repository_of_the_same_name_is_never_touched(ecr, monkeypatch):
    """The state's account, not the credentials': moto answers for 123456789012 only."""
    for name, value in ecr.items():
        monkeypatch.setenv(name, value)
    push_images(ecr, "same-name-dev", 2)
    assert empty_repository("same-name-dev", "eu-west-1", "210987654321") == 0
    assert images_in(ecr, "same-name-dev") == 2


def test_a_state_with_partial_outputs_plans_what_it_can():
    partial = {"deployment": {"resources": [{"type": "aws:ecr/repository:Repository", "outputs": {"name": "x"}}]}}
    assert plan(partial).repositories == []


def test_without_the_aws_cli_it_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TeardownError, match="^the AWS CLI is not on PATH$"):
        empty_repository("restdemo-dev", "eu-west-1", ACCOUNT)


def remaining(state: dict, *types: str) -> dict:
    """The state a destroy leaves when it stops: the resources of these types."""
    kept = [r for r in state["deployment"]["resources"] if r["type"] in types]
    return {"version": 3, "deployment": {"resources": kept}}


def fake_pulumi(tmp_path, state: dict, left: dict | None = None) -> tuple[str, Path]:
    """A `pulumi` on PATH that exports `state` and logs every call; with `left`, its first destroy
    fails and leaves that state (as one stopped at a repository that holds images), the next succeeds."""
    calls = tmp_path / "calls"
    (tmp_path / "state.json").write_text(json.dumps(state))
    if left is not None:
        (tmp_path / "left.json").write_text(json.dumps(left))
    script = tmp_path / "bin" / "pulumi"
    script.parent.mkdir()
    script.write_text(
        textwrap.dedent(f"""\
            #!/bin/sh
            echo "$*" >> {calls}
            [ "$1 $2" = "stack export" ] && cat {tmp_path / "state.json"}
            if [ "$1" = destroy ] && [ -f {tmp_path / "left.json"} ]; then
              mv {tmp_path / "left.json"} {tmp_path / "state.json"}; exit 1
            fi
            exit 0
            """)
    )
    script.chmod(0o755)
    return str(script.parent), calls


REPOSITORY_TYPES = ("aws:ecr/repository:Repository", "aws:ecr/lifecyclePolicy:LifecyclePolicy")


def test_make_down_empties_the_repositories_only_once_the_destroy_stops_at_them(ecr, tmp_path, monkeypatch, capsys):
    state = exported("dev")
    for name, *_ in plan(state).repositories:
        push_images(ecr, name, 3)
    bin_dir, calls = fake_pulumi(tmp_path, state, left=remaining(state, *REPOSITORY_TYPES))
    for name, value in {**ecr, "PATH": f"{bin_dir}{os.pathsep}{ecr['PATH']}", "PULUMI_BACKEND_URL": "s3://b"}.items():
        monkeypatch.setenv(name, value)
    assert main(["dev", "--", "pulumi", "destroy", "--yes", "--stack", "dev"]) == 0
    assert calls.read_text().splitlines() == [
        "stack export --stack dev",
        "destroy --yes --stack dev",
        "stack export --stack dev",
        "destroy --yes --stack dev",
    ]
    assert images_in(ecr, "restdemo-dev") == images_in(ecr, "restdemo-agent-dev") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        "restdemo: emptied ECR repository restdemo-dev (3 images): AWS deletes only an empty one",
        "restdemo: emptied ECR repository restdemo-agent-dev (3 images): AWS deletes only an empty one",
        "restdemo: stack 'dev' is down; it leaves:",
    ]
    assert len(out) == 6 and out[4].startswith("  - KMS key ") and out[5].startswith("  - KMS key ")


def test_a_destroy_that_stops_before_the_service_is_gone_keeps_every_image(ecr, tmp_path, monkeypatch, capsys):
    """A tunnel lost mid-destroy: the service still runs from the repositories, which keep every version."""
    state = exported("dev")
    for name, *_ in plan(state).repositories:
        push_images(ecr, f"{name}-kept", 2)
    kept = remaining(state, "docker:index/service:Service", *REPOSITORY_TYPES)
    for resource in kept["deployment"]["resources"]:
        if resource["type"] == "aws:ecr/repository:Repository":
            resource["outputs"]["name"] += "-kept"
    bin_dir, calls = fake_pulumi(tmp_path, state, left=kept)
    for name, value in {**ecr, "PATH": f"{bin_dir}{os.pathsep}{ecr['PATH']}"}.items():
        monkeypatch.setenv(name, value)
    assert main(["dev", "--", "pulumi", "destroy", "--yes", "--stack", "dev"]) == 1
    assert calls.read_text().splitlines()[-1] == "stack export --stack dev"  # no second destroy
    assert images_in(ecr, "restdemo-dev-kept") == images_in(ecr, "restdemo-agent-dev-kept") == 2
    assert capsys.readouterr().err.splitlines() == [
        "restdemo: the destroy stopped while docker:index/service:Service still pull from the stack's ECR "
        "repositories: they keep their images"
    ]


def test_make_down_on_a_protected_stack_deletes_nothing(ecr, tmp_path, monkeypatch, capsys):
    state = exported("prod")
    bin_dir, calls = fake_pulumi(tmp_path, state)
    push_images(ecr, "restdemo-prod", 2)
    for name, value in {**ecr, "PATH": f"{bin_dir}{os.pathsep}{ecr['PATH']}"}.items():
        monkeypatch.setenv(name, value)
    assert main(["prod", "--", "pulumi", "destroy", "--yes", "--stack", "prod"]) == 1
    assert calls.read_text().splitlines() == ["stack export --stack prod"]
    assert images_in(ecr, "restdemo-prod") == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("restdemo: stack 'prod' has deletion protection on its load balancers")


def test_ctrl_c_lets_pulumi_cancel_its_destroy_cleanly(tmp_path):
    """Ctrl-C reaches Pulumi from the terminal; the teardown neither kills it nor prints a traceback."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "state.json").write_text(json.dumps(exported("local")))
    (bin_dir / "pulumi").write_text(
        textwrap.dedent(f"""\
            #!/bin/sh
            [ "$1 $2" = "stack export" ] && cat {tmp_path / "state.json"} && exit 0
            trap 'sleep 1; echo cancelled cleanly; exit 255' INT
            echo destroying; while :; do sleep 0.1; done
            """)
    )
    (bin_dir / "pulumi").chmod(0o755)
    process = subprocess.Popen(
        [sys.executable, "-m", "ops.teardown", "local", "--", "pulumi", "destroy"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        start_new_session=True,
    )
    assert process.stdout.readline() == "destroying\n"
    os.killpg(process.pid, signal.SIGINT)  # as the terminal does: the whole foreground group
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out, err) == (255, "cancelled cleanly\n", "")


def test_the_module_runs_as_make_down_calls_it(tmp_path):
    bin_dir, calls = fake_pulumi(tmp_path, exported("local"))
    result = subprocess.run(
        [sys.executable, "-m", "ops.teardown", "local", "--", "pulumi", "destroy", "--yes", "--stack", "local"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PULUMI_BACKEND_URL": "file://x"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("  - the state of stack 'local' (its history, no resources)")
