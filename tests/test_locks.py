"""The images' lock files are exactly what uv.lock says (make lock writes them)."""

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
EXPORTS = [
    ("restdemo", ["--no-dev"], "app/requirements.lock"),
    ("restdemo", ["--only-group", "build"], "app/build-requirements.lock"),
    ("restdemo-agent", ["--no-dev"], "agent/requirements.lock"),
    ("restdemo-agent", ["--only-group", "build"], "agent/build-requirements.lock"),
]


def pinned_uv() -> str:
    """The Makefile's pinned uv, installed if this environment has none (pytest run from any venv)."""
    subprocess.run(["make", "-s", "-C", str(REPO), ".tools/bin/uv"], check=True, capture_output=True)
    return str(REPO / ".tools" / "bin" / "uv")


@pytest.mark.parametrize("package,selection,path", EXPORTS)
def test_image_lock_file_matches_uv_lock(package, selection, path):
    uv = shutil.which("uv") or pinned_uv()
    exported = subprocess.run(
        [uv, "export", "--package", package, *selection, "--no-emit-workspace", "--frozen", "--no-header", "-q"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    ).stdout
    assert exported == (REPO / path).read_text(), f"{path} is stale: run make lock"
