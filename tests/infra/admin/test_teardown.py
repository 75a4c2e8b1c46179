"""infra/admin/teardown.py: `make down` empties the stack's repositories, stops before anything on
deletion protection, and says what stays.

The state is the program's own under mocks, exported as `pulumi stack export` prints it, with the
outputs AWS computes (an ECR repository's ARN, a KMS key's id) filled in as terraform-provider-aws
sets them. ECR is moto's server, reached by the real AWS CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import boto3
import pytest

from infra.admin.teardown import Teardown, TeardownError, empty_repository, leftovers, main, plan, refusal
from tests.support.net import free_port
from tests.support.pulumi_program import run_program, stack_config

pytestmark = pytest.mark.unit

ACCOUNT = "123456789012"


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
    assert teardown.repositories == [("restdemo-dev", "eu-west-1"), ("restdemo-agent-dev", "eu-west-1")]
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
        "the state of stack 'local' (its history, no resources) in .pulumi/ (this machine): "
        "'pulumi stack rm local' removes it"
    ]


def test_an_aws_stack_leaves_its_state_and_its_keys_pending_deletion():
    teardown = Teardown(repositories=[], protected=[], keys=[("k-1", 30)])
    assert leftovers("dev", teardown, "s3://state") == [
        "the state of stack 'dev' (its history, no resources) in your backend (s3://state): 'pulumi stack rm dev' "
        "removes it; the state bucket is yours to keep or delete",
        "KMS key k-1, pending deletion for 30 days (AWS deletes it then; 'aws kms cancel-key-deletion --key-id k-1' "
        "brings it back)",
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
    assert empty_repository("batch-dev", "eu-west-1") == 150
    assert images_in(ecr, "batch-dev") == 0
    assert empty_repository("batch-dev", "eu-west-1") == 0


def test_a_repository_that_cannot_be_listed_is_one_line(ecr, monkeypatch):
    for name, value in ecr.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(TeardownError) as caught:
        empty_repository("never-made", "eu-west-1")
    assert str(caught.value).startswith("aws ecr list-images: An error occurred (RepositoryNotFoundException)")


def fake_pulumi(tmp_path, state: dict) -> tuple[str, Path]:
    """A `pulumi` on PATH that exports `state` and logs every call."""
    calls = tmp_path / "calls"
    (tmp_path / "state.json").write_text(json.dumps(state))
    script = tmp_path / "bin" / "pulumi"
    script.parent.mkdir()
    script.write_text(
        textwrap.dedent(f"""\
            #!/bin/sh
            echo "$*" >> {calls}
            [ "$1 $2" = "stack export" ] && cat {tmp_path / "state.json"}
            exit 0
            """)
    )
    script.chmod(0o755)
    return str(script.parent), calls


def test_make_down_empties_the_repositories_destroys_then_says_what_stays(ecr, tmp_path, monkeypatch, capsys):
    state = exported("dev")
    for name, _ in plan(state).repositories:
        push_images(ecr, name, 3)
    bin_dir, calls = fake_pulumi(tmp_path, state)
    for name, value in {**ecr, "PATH": f"{bin_dir}{os.pathsep}{ecr['PATH']}", "PULUMI_BACKEND_URL": "s3://b"}.items():
        monkeypatch.setenv(name, value)
    assert main(["dev", "--", "pulumi", "destroy", "--yes", "--stack", "dev"]) == 0
    assert calls.read_text().splitlines() == ["stack export --stack dev", "destroy --yes --stack dev"]
    assert images_in(ecr, "restdemo-dev") == images_in(ecr, "restdemo-agent-dev") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        "restdemo: emptied ECR repository restdemo-dev (3 images), which AWS deletes only when empty",
        "restdemo: emptied ECR repository restdemo-agent-dev (3 images), which AWS deletes only when empty",
        "restdemo: stack 'dev' is down; it leaves:",
    ]
    assert len(out) == 6 and out[4].startswith("  - KMS key ") and out[5].startswith("  - KMS key ")


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


def test_the_module_runs_as_make_down_calls_it(tmp_path):
    bin_dir, calls = fake_pulumi(tmp_path, exported("local"))
    result = subprocess.run(
        [sys.executable, "-m", "infra.admin.teardown", "local", "--", "pulumi", "destroy", "--yes", "--stack", "local"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PULUMI_BACKEND_URL": "file://x"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("  - the state of stack 'local' (its history, no resources)")
