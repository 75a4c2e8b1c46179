"""The main command's wrapper stops with a message saying what to install when a tool is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.pulumi_program import REPO

pytestmark = pytest.mark.unit

SCRIPT = REPO / "scripts" / "stack.sh"


def run_with_path(path: str, action: str = "up", stack: str = "local", **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shutil.which("bash"), str(SCRIPT), action],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, "STACK": stack, **env},
        timeout=60,
    )


def bare_path(tmp_path) -> str:
    """A PATH with the basic tools the script uses but neither pulumi nor docker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "mkdir", "head", "base64", "cat"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    return str(bin_dir)


@pytest.mark.parametrize(
    "action,pulumi_command", [("up", "up"), ("preview", "preview"), ("down", "destroy"), ("status", "stack output")]
)
def test_without_pulumi_and_docker_it_names_both(tmp_path, action, pulumi_command):
    result = run_with_path(bare_path(tmp_path), action)
    assert result.returncode == 1
    # The Pulumi command it would run, not the make target's name.
    assert f"cannot run 'pulumi {pulumi_command}' on stack 'local'" in result.stderr
    assert "the Pulumi CLI: https://www.pulumi.com/docs/install/" in result.stderr
    assert "Docker: Docker Desktop, or Docker Engine on Linux" in result.stderr


def test_with_docker_but_without_pulumi_it_names_only_pulumi(docker_client):
    # The real PATH, less any directory that holds a pulumi binary.
    path = os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if not os.path.exists(os.path.join(d, "pulumi"))
    )
    # It installs the pinned CLI; here from a release server that does not answer.
    result = run_with_path(path, PULUMI_RELEASES_URL=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if "the Pulumi CLI" in line]
    assert line.startswith("  - the Pulumi CLI: could not download http://127.0.0.1:")
    assert line.endswith("; or install it yourself: https://www.pulumi.com/docs/install/")
    assert "Docker:" not in result.stderr


def test_the_pinned_cli_an_earlier_run_installed_is_used_not_downloaded_again(tmp_path):
    """Run directly, not through make (whose PATH has .tools/bin): the CLI in .tools/bin is found
    before any download (the release server here does not answer)."""
    tools = tmp_path / "tools"
    (tools / "bin").mkdir(parents=True)
    cli = tools / "bin" / "pulumi"
    cli.write_text("#!/bin/sh\nexit 0\n")
    cli.chmod(0o755)
    result = run_with_path(
        bare_path(tmp_path), RESTDEMO_TOOLS_DIR=str(tools), PULUMI_RELEASES_URL=f"http://127.0.0.1:{free_port()}"
    )
    assert result.returncode == 1
    assert "the Pulumi CLI" not in result.stderr and "Docker: Docker Desktop" in result.stderr


@pytest.mark.parametrize("action", ["up", "preview", "down", "status"])
def test_a_misspelt_stack_is_refused_not_created(tmp_path, action):
    """`stack select --create` turned `STACK=prd` into a new stack with the local defaults: only
    the stacks in stacks/ exist, and a name that is not one of them stops at once."""
    result = run_with_path(bare_path(tmp_path), action, stack="prd")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "restdemo: no stack 'prd'; the stacks are: dev local prod staging (stacks/Pulumi.<stack>.yaml)"
    )


def test_the_make_targets_check_for_the_cli_before_building_the_environment():
    """The preflight runs first: a laptop without the Pulumi CLI hears so at once, not after minutes
    of installing pulumi-aws into .venv/."""
    makefile = (REPO / "Makefile").read_text()
    for target in ("up", "preview", "down", "status"):
        rule = next(line for line in makefile.splitlines() if line.startswith(f"{target}:"))
        assert "VENV_STAMP" not in rule.split("##")[0], rule


FAKE_PULUMI = """#!/bin/sh
echo "$*" >> "{log}"
case "$1 $2" in
  "config --json") echo '{{}}' ;;
  "stack output") exit 1 ;;
  "stack export") echo '{{"deployment": {{"resources": []}}}}' ;;
esac
"""
# An engine already in swarm mode, so the script changes nothing on the machine's own.
FAKE_DOCKER = """#!/bin/sh
[ "$1" = info ] && echo active
"""


@pytest.mark.parametrize(
    "refresh,command", [(None, "up --refresh --yes --stack local"), ("0", "up --yes --stack local")]
)
def test_up_refreshes_first_so_what_is_gone_from_the_swarm_is_made_again(tmp_path, refresh, command):
    """`make up` reads back what runs before it compares (`--refresh`): without it, Pulumi's state
    still holds a service that a swarm formed anew no longer has, and `up` changes nothing."""
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text(FAKE_PULUMI.format(log=calls))
    (fake.parent / "docker").write_text(FAKE_DOCKER)
    for tool in fake.parent.iterdir():
        tool.chmod(0o755)
    env_path = f"{fake.parent}{os.pathsep}{os.environ['PATH']}"
    result = subprocess.run(
        [shutil.which("bash"), str(SCRIPT), "up"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PATH": env_path,
            "STACK": "local",
            "MAKE": "true",
            **({"REFRESH": refresh} if refresh else {}),
        },
        timeout=120,
    )
    ups = [line for line in calls.read_text().splitlines() if line.startswith("up ")]
    assert ups == [command], (result.stdout, result.stderr)  # REFRESH=0: the escape during an outage


def test_down_goes_through_the_teardown_and_says_what_stays(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text(FAKE_PULUMI.format(log=calls))
    (fake.parent / "docker").write_text(FAKE_DOCKER)
    for tool in fake.parent.iterdir():
        tool.chmod(0o755)
    result = subprocess.run(
        [shutil.which("bash"), str(SCRIPT), "down"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}", "STACK": "local", "MAKE": "true"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    assert lines[lines.index("stack export --stack local") + 1] == "destroy --yes --stack local"
    assert result.stdout.splitlines()[-2:] == [
        "restdemo: stack 'local' is down; it leaves:",
        f"  - the state of stack 'local' (its history, no resources) in {REPO}/.pulumi (this machine): "
        "'pulumi stack rm local' removes it",
    ]


def tools(tmp_path, **scripts: str) -> str:
    """A PATH of the basic tools the script uses and these fakes (name -> shell body)."""
    path = bare_path(tmp_path)
    for tool in ("sed", "tr", "grep", "tail"):
        os.symlink(shutil.which(tool), os.path.join(path, tool))
    for name, body in scripts.items():
        fake = tmp_path / "bin" / name
        fake.write_text(f"#!/bin/sh\n{body}\n")
        fake.chmod(0o755)
    return path


PULUMI_NOT_LOGGED_IN = (
    'echo "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions" >&2; exit 1'
)


def test_an_aws_stack_names_the_backend_the_aws_cli_and_its_session_manager_plugin(tmp_path):
    """`STACK=dev make up` checked only for Pulumi and Docker."""
    path = tools(tmp_path, pulumi=PULUMI_NOT_LOGGED_IN, docker="exit 0")
    result = run_with_path(path, "up", stack="dev")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "restdemo: cannot run 'pulumi up' on stack 'dev'; install or start:",
        "  - a Pulumi state backend: set PULUMI_BACKEND_URL (for example s3://<bucket>) or run 'pulumi login'",
        "  - the AWS CLI: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html",
        "  - the AWS CLI's Session Manager plugin (adminAccess session-manager): "
        "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html",
    ]


def test_an_aws_stack_names_missing_credentials_from_one_sts_call(tmp_path):
    calls = tmp_path / "aws-calls"
    refused = 'Unable to locate credentials. You can configure credentials by running \\"aws configure\\".'
    aws = f'echo "$*" >> {calls}; echo "{refused}" >&2; exit 255'
    path = tools(tmp_path, pulumi="exit 0", docker="exit 0", aws=aws, **{"session-manager-plugin": "exit 0"})
    result = subprocess.run(
        [shutil.which("bash"), str(SCRIPT), "up"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, "STACK": "dev", "PULUMI_BACKEND_URL": "s3://state"},
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        "  - AWS credentials for the account of stack 'dev' (aws sts get-caller-identity: Unable to locate "
        'credentials. You can configure credentials by running "aws configure".)'
    ]
    assert calls.read_text() == "sts get-caller-identity --region eu-west-1 --output text\n"  # the stack's region


def run_in(repo: Path, action: str, stack: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """The copied repository's stack.sh, as `STACK=<stack> make <action>` runs it."""
    return subprocess.run(
        [shutil.which("bash"), str(repo / "scripts" / "stack.sh"), action],
        capture_output=True,
        text=True,
        env={**os.environ, "STACK": stack, **env},
        timeout=timeout,
    )


def repository_with_stack(tmp_path, name: str, stack_file: str) -> Path:
    """This repository's script, program and stacks, with one more stack file (stacks/ stays as it is)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "scripts")
    shutil.copytree(REPO / "stacks", repo / "stacks")
    shutil.copy(REPO / "Pulumi.yaml", repo)
    for shared in ("infra", ".venv", "agent"):
        (repo / shared).symlink_to(REPO / shared)
    (repo / "stacks" / f"Pulumi.{name}.yaml").write_text(stack_file)
    return repo


@pytest.mark.parametrize(
    "platform_line", ["  restdemo:platform: local  # your own app", '  restdemo:platform: "local"', ""]
)
def test_a_stack_of_your_own_on_the_local_platform_runs_as_the_local_one_does(tmp_path, platform_line):
    """Not only the stack named local: `STACK=podinfo make up` with platform local (or none: Pulumi.yaml's
    default) keeps its state in .pulumi/, asks for no AWS CLI, and is created on first use."""
    repo = repository_with_stack(tmp_path, "podinfo", f"config:\n{platform_line}\n  restdemo:replicas: 2")
    calls = tmp_path / "calls"
    path = tools(tmp_path, pulumi=FAKE_PULUMI.format(log=calls).split("\n", 1)[1], docker=FAKE_DOCKER.split("\n", 1)[1])
    result = run_in(repo, "up", "podinfo", timeout=120, PATH=path, MAKE="true")
    assert "AWS" not in result.stderr, result.stderr
    lines = calls.read_text().splitlines()
    assert lines[0] == "stack select --create podinfo --non-interactive", (result.stdout, result.stderr)
    assert "up --refresh --yes --stack podinfo" in lines
    assert (repo / ".pulumi" / "passphrase").exists()


def test_a_stack_of_your_own_on_aws_is_checked_as_an_aws_one(tmp_path):
    repo = repository_with_stack(tmp_path, "shop", "config:\n  aws:region: eu-west-1\n  restdemo:platform: aws\n")
    path = tools(tmp_path, pulumi=PULUMI_NOT_LOGGED_IN, docker="exit 0")
    result = run_in(repo, "preview", "shop", PATH=path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[:3] == [
        "restdemo: cannot run 'pulumi preview' on stack 'shop'; install or start:",
        "  - a Pulumi state backend: set PULUMI_BACKEND_URL (for example s3://<bucket>) or run 'pulumi login'",
        "  - the AWS CLI: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html",
    ]


@pytest.mark.parametrize(
    "platform_line", ["    restdemo:platform: aws", '  "restdemo:platform": aws', "  'restdemo:platform': 'aws'"]
)
def test_an_aws_platform_written_any_yaml_way_is_read_as_aws(tmp_path, platform_line):
    """Four spaces or a quoted key: YAML (and so Pulumi) reads aws; read as local, the stack's state
    would go to .pulumi/ and its deploy to this machine."""
    repo = repository_with_stack(tmp_path, "shop", f"config:\n  aws:region: eu-west-1\n{platform_line}\n")
    path = tools(tmp_path, pulumi=PULUMI_NOT_LOGGED_IN, docker="exit 0")
    result = run_in(repo, "down", "shop", PATH=path)
    assert result.returncode == 1
    assert "a Pulumi state backend" in result.stderr and not (repo / ".pulumi").exists()


@pytest.mark.parametrize(
    "platform_line",
    [
        "  restdemo:platform: gcp",
        "  restdemo:platform: [aws]",
        "restdemo:platform: aws",
        "  restdemo:platform:\n    aws",
        "  restdemo:platform: local\n  restdemo:platform: aws",
        "  other: {restdemo:platform: aws}",
    ],
)
def test_a_platform_it_cannot_read_stops_it_before_anything(tmp_path, platform_line):
    repo = repository_with_stack(tmp_path, "odd", f"config:\n{platform_line}\n")
    result = run_in(repo, "up", "odd")
    assert (result.returncode, result.stderr) == (
        2,
        "restdemo: cannot read restdemo:platform in stacks/Pulumi.odd.yaml: write it as '  restdemo:platform: local' "
        "or '  restdemo:platform: aws' under config:\n",
    )
    assert not (repo / ".pulumi").exists()


# A deployed Compose stack's outputs, as `pulumi stack output` gives them.
COMPOSE_OUTPUTS = """#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  "stack output url --stack local") echo http://127.0.0.1:9 ;;
  "stack output healthCheckPath --stack local") echo /ready ;;
  "stack output services --json --stack local") echo '{{"a": "restdemo_api", "w": "restdemo_web"}}' ;;
  "stack output images --json --stack local") echo '{{"api": "r/api@sha256:1", "web": "r/web:t@sha256:2"}}' ;;
  "config --json --stack local") echo '{{}}' ;;
  "stack output --show-secrets --stack local --json") echo '{{"dockerHost": "unix:///var/run/docker.sock"}}' ;;
esac
"""


def test_status_of_a_compose_stack_covers_every_service(tmp_path):
    """`make status` on a Compose stack: each service's image, health and tasks, not only the first's."""
    from tests.ops.test_health import fake_docker, healthy_answers

    bin_dir = fake_docker(
        tmp_path, {**healthy_answers(), "info": {"stdout": "active\n"}, "info --format": {"stdout": "active\n"}}
    )
    (bin_dir / "pulumi").write_text(COMPOSE_OUTPUTS.format(log=tmp_path / "pulumi.log"))
    (bin_dir / "pulumi").chmod(0o755)
    result = subprocess.run(
        [shutil.which("bash"), str(SCRIPT), "status"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "STACK": "local", "MAKE": "true"},
        timeout=120,
    )
    assert "image of api: r/api@sha256:1\nimage of web: r/web:t@sha256:2\n" in result.stdout, result.stderr
    assert "restdemo_api: 3 of 3 replicas running" in result.stdout
    assert "restdemo_web: 3 of 3 replicas running" in result.stdout
    calls = [json.loads(line)["args"] for line in (bin_dir / "calls.log").read_text().splitlines()]
    asked = [call[:3] for call in calls if call[0] in ("node", "service")]
    assert asked == [
        ["node", "ls", "--format"],
        ["service", "inspect", "restdemo_api"],
        ["service", "ps", "restdemo_api"],
        ["service", "inspect", "restdemo_web"],
        ["service", "ps", "restdemo_web"],
        ["service", "ps", "restdemo_api"],
        ["service", "ps", "restdemo_web"],
    ]
