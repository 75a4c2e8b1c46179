"""The Dockerfile itself: hadolint finds nothing."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docker_engine import REPO

pytestmark = pytest.mark.image


def test_hadolint_reports_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(REPO / "app" / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_dockerfile_ignores_no_rule_silently():
    # Any `hadolint ignore` must carry a comment saying why, on the line above.
    lines = (REPO / "app" / "Dockerfile").read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert number > 0 and lines[number - 1].startswith("#") and "hadolint" not in lines[number - 1]
