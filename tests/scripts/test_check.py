"""`make check STACK=<stack>` (scripts/check.py): a stack file validated and what it would create
listed, with the program under the project's mocks; problems one line each, exit 1."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.support.pulumi_program import REPO
from tests.support.stack_variants import STACK_VARIANTS, api_image, variant_config

pytestmark = pytest.mark.unit


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check.py"), *args], capture_output=True, text=True, timeout=300
    )


def test_a_valid_stack_lists_what_it_would_create_by_type():
    answer = check("dev")
    assert answer.returncode == 0, answer.stderr
    lines = answer.stdout.splitlines()
    assert lines[0].startswith("dev: the settings are valid; `pulumi up` would create ")
    counts = {line.split()[1]: int(line.split()[0]) for line in lines[1:]}
    assert counts["aws:autoscaling/group:Group"] == 2  # managers and workers
    assert counts["docker:index/service:Service"] == 1
    assert int(lines[0].split(" would create ")[1].split()[0]) == sum(counts.values())


def test_a_bad_stack_file_is_one_line_per_problem_and_creates_nothing(tmp_path):
    bad = tmp_path / "Pulumi.local.yaml"
    bad.write_text("config:\n  restdmo:replicas: 5\n  restdemo:workerCount: 4\n")
    answer = check("local", "--file", str(bad))
    assert (answer.returncode, answer.stdout) == (1, "")
    assert answer.stderr.splitlines() == [
        "check: local: invalid stack settings:",
        "  restdmo:replicas: restdmo is not a namespace this program reads; did you mean restdemo:replicas? "
        "settings are restdemo:<setting>, besides the providers' (aws, docker, docker-build, pulumi, random, tls)",
        "  restdemo:workerCount applies to AWS stacks only (platform aws): the local stack ignores it; remove it",
    ]


def test_a_missing_or_broken_stack_file_is_one_line(tmp_path):
    assert (
        check("prd").stderr
        == "check: no stack 'prd'; the stacks are: dev local prod staging (stacks/Pulumi.<stack>.yaml)\n"
    )
    assert check("prd").returncode == 2
    gone = tmp_path / "Pulumi.gone.yaml"
    assert check("gone", "--file", str(gone)).stderr == f"check: gone: no stack file {gone}\n"
    broken = tmp_path / "Pulumi.dev.yaml"
    broken.write_text("config: [\n")
    answer = check("dev", "--file", str(broken))
    assert answer.returncode == 1 and len(answer.stderr.splitlines()) == 1
    assert answer.stderr.startswith(f"check: dev: {broken} is not YAML: ")


@pytest.mark.parametrize("stack,variant", STACK_VARIANTS)
def test_every_optional_feature_passes_the_check(stack, variant, tmp_path, capsys, monkeypatch):
    """Each feature alone and all together, on every AWS stack, as a stack file would set them (the
    Compose app's secret as `--secret` writes it, ciphertext)."""
    monkeypatch.setenv("API_IMAGE", api_image(stack))
    config = variant_config(stack, variant)
    if "restdemo:secrets" in config:
        config["restdemo:secrets"] = [{"secure": "v1:c2FsdA==:Y2lwaGVydGV4dA=="}]
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    assert check_module().main([stack, "--file", str(path)]) == 0, capsys.readouterr().err
    assert f"{stack}: the settings are valid; `pulumi up` would create " in capsys.readouterr().out


@functools.cache
def check_module():
    """scripts/check.py in this process: the program's imports are paid once, not per variant."""
    spec = importlib.util.spec_from_file_location("check", REPO / "scripts" / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_check_runs_in_the_programs_environment_without_the_test_tools(tmp_path):
    """`make up` and `make check` install pyproject.toml's dependencies alone (uv's default groups are
    none): the test group (pytest, Selenium, moto and what they pull in) is what `make test` adds."""
    uv = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    environment = tmp_path / "venv"
    synced = subprocess.run(
        [uv, "sync", "--locked", "--quiet"],
        cwd=REPO,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(environment), "UV_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert synced.returncode == 0, synced.stderr
    installed = {p.name.split("-")[0].lower() for p in environment.glob("lib/python3*/site-packages/*.dist-info")}
    assert {"pulumi", "pulumi_aws", "pulumi_policy", "pydantic"} <= installed
    assert not installed & {"pytest", "selenium", "moto", "sympy", "awscli", "ruff"}
    answer = subprocess.run(
        [str(environment / "bin" / "python"), str(REPO / "scripts" / "check.py"), "local"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith("local: the settings are valid; `pulumi up` would create ")


def test_a_compose_stack_with_encrypted_secrets_is_checked_without_them(tmp_path):
    """The stack file holds what `pulumi config set --secret --path` wrote: ciphertext, which `make
    check` cannot read. It checks the rest and says so; the secrets' values are checked at deploy."""
    stack = tmp_path / "Pulumi.shop.yaml"
    stack.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "restdemo:platform": "local",
                    "restdemo:composeFile": ["tests/e2e/compose_app/compose.yaml"],
                    "restdemo:healthCheckPath": "/ready",
                    "restdemo:database": "postgres",
                    "restdemo:secrets": [{"secure": "v1:c2FsdA==:Y2lwaGVydGV4dA=="}],
                    "restdemo:registryLogins": {"secure": "v1:c2FsdA==:bG9naW5z"},
                }
            }
        )
    )
    answer = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check.py"), "shop", "--file", str(stack)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "API_IMAGE": "127.0.0.1:5000/tests/api:1"},
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.splitlines()[0] == (
        "shop: restdemo:secrets, restdemo:registryLogins are encrypted in the stack file: not read here "
        "(their values are checked at deploy)"
    )
    counts = {line.split()[1]: int(line.split()[0]) for line in answer.stdout.splitlines()[2:]}
    # greeting, and the database's six files (its password the stack secret `database`); its service too.
    assert (counts["docker:index/secret:Secret"], counts["docker:index/service:Service"]) == (7, 4)
