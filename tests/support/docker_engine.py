"""Access to the real Docker engine (and other tools) for the tiers that need them, and image builds.

In CI (CI=true) a missing engine fails the tier; on a laptop without Docker it skips
with the reason. Builds go through a BuildKit-capable client because the Dockerfile
takes an optional BuildKit secret (the CA bundle for TLS-intercepting proxies).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_BUILD_BASE = "restdemo-base/python-build:bookworm"
LOCAL_RUNTIME_BASE = "restdemo-base/python-runtime:bookworm"
# Postgres from Debian's packages, with python3-psycopg2 (scripts/base-images.sh): the e2e tier's
# database, and the base of the tests' Compose app, whose admin keeps rows in it.
LOCAL_POSTGRES = "restdemo-base/postgres:bookworm"
# Python for linux/arm64, made under QEMU (scripts/base-images.sh): both stages of the arm64 build.
LOCAL_ARM64_BASE = "restdemo-base/python:bookworm-arm64"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str):
    """Something a tier needs is missing: a failure in CI (CI=true), a skip with the reason elsewhere."""
    if in_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, install: str) -> str:
    """The path of a command-line tool the tier needs; see `unavailable` when it is missing."""
    path = shutil.which(name)
    if not path:
        unavailable(f"{name} is not installed ({install})")
    return path


def require_engine():
    """A docker SDK client for a reachable engine; see `unavailable` when none answers."""
    import docker

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        unavailable(f"no Docker engine reachable ({exc.__class__.__name__}); start one with scripts/docker-engine.sh")
    return client


def base_image_args(client) -> dict[str, str]:
    """BUILD_BASE/RUNTIME_BASE: from the environment, else the local images when present, else the defaults."""
    args = {}
    for arg, env, local in (
        ("BUILD_BASE", "RESTDEMO_BUILD_BASE", LOCAL_BUILD_BASE),
        ("RUNTIME_BASE", "RESTDEMO_RUNTIME_BASE", LOCAL_RUNTIME_BASE),
    ):
        if os.environ.get(env):
            args[arg] = os.environ[env]
        elif client.images.list(name=local):
            args[arg] = local
    return args


def compose_app_base(client) -> str | None:
    """The tests' Compose app's RUNTIME_BASE: one with the database's client (the local Postgres image
    has it); unset, its Dockerfile's default, where pip installs one."""
    return LOCAL_POSTGRES if client.images.list(name=LOCAL_POSTGRES) else base_image_args(client).get("RUNTIME_BASE")


def buildkit_command() -> tuple[list[str], dict[str, str]]:
    """The docker build command line that supports --secret, and its environment."""
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    docker = shutil.which("docker") or "docker"
    if subprocess.run([docker, "buildx", "version"], capture_output=True).returncode == 0:
        return [docker, "buildx", "build", "--load"], env
    # Debian's docker.io client (20.10) builds with BuildKit without buildx; the
    # newer static client first on PATH refuses DOCKER_BUILDKIT=1 without buildx.
    if Path("/usr/bin/docker").exists():
        return ["/usr/bin/docker", "build"], env
    return [docker, "build"], env


def build_image(
    context: Path,
    tag: str,
    *,
    target: str | None = None,
    build_args: dict[str, str] | None = None,
    dockerfile: Path | None = None,
    platform: str | None = None,
) -> subprocess.CompletedProcess:
    command, env = buildkit_command()
    command = [*command, "--tag", tag, "--progress", "plain"]
    if platform:
        command += ["--platform", platform]
    if dockerfile:
        command += ["--file", str(dockerfile)]
    if target:
        command += ["--target", target]
    for key, value in (build_args or {}).items():
        command += ["--build-arg", f"{key}={value}"]
    ca_bundle = os.environ.get("RESTDEMO_BUILD_CA_BUNDLE")
    if ca_bundle:
        command += ["--secret", f"id=ca_bundle,src={ca_bundle}"]
    result = subprocess.run([*command, str(context)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"docker build failed ({' '.join(command)}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result
