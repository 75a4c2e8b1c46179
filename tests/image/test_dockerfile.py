"""The Dockerfiles themselves: hadolint finds nothing; base images pinned by digest."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docker_engine import REPO

pytestmark = pytest.mark.image


DOCKERFILES = [REPO / "app" / "Dockerfile", REPO / "agent" / "Dockerfile"]
# The e2e tier's second app and the broken variants: what a newcomer copies must lint clean too.
E2E = REPO / "tests" / "e2e"
LINTED = [
    *DOCKERFILES,
    E2E / "second_app" / "Dockerfile",
    E2E / "second_app" / "broken.Dockerfile",
    E2E / "broken.Dockerfile",
]


@pytest.mark.parametrize(
    "dockerfile", LINTED, ids=["app", "agent", "second-app", "second-app-broken", "restdemo-broken"]
)
def test_hadolint_reports_nothing(dockerfile):
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=["app", "agent"])
def test_default_base_images_are_pinned_by_digest(dockerfile):
    """The default bases are Docker Hub's official python images, by digest: the same bytes on every
    build until someone moves the pin in a reviewed change (the tests' stand-ins come as --build-arg)."""
    bases = dict(re.findall(r"^ARG (BUILD_BASE|RUNTIME_BASE)=(\S+)$", dockerfile.read_text(), re.M))
    assert set(bases) == {"BUILD_BASE", "RUNTIME_BASE"}
    for name, image in bases.items():
        assert re.fullmatch(r"python:3\.11-(slim-)?bookworm@sha256:[0-9a-f]{64}", image), (name, image)
    assert bases["RUNTIME_BASE"].startswith("python:3.11-slim-bookworm@")


def test_dockerfile_ignores_no_rule_silently():
    # Any `hadolint ignore` must carry a comment saying why, on the line above.
    lines = (REPO / "app" / "Dockerfile").read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert number > 0 and lines[number - 1].startswith("#") and "hadolint" not in lines[number - 1]


def test_the_second_app_is_on_the_projects_runtime_base():
    def runtime_base(dockerfile: Path) -> str:
        return re.search(r"^ARG RUNTIME_BASE=(\S+)$", dockerfile.read_text(), re.M).group(1)

    assert runtime_base(E2E / "second_app" / "Dockerfile") == runtime_base(REPO / "app" / "Dockerfile")
