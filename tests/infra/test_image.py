"""The image component's pure parts: build arguments and the content tag."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra.build.image import build_args, content_tag
from infra.config.settings import Settings

pytestmark = pytest.mark.unit

APP = Path(__file__).resolve().parents[2] / "app"


@pytest.fixture
def context(tmp_path):
    copy = tmp_path / "app"
    shutil.copytree(APP, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return copy


def test_build_args_carry_version_revision_and_bases_when_set():
    assert build_args(Settings(version="v3"), "abc") == {"VERSION": "v3", "REVISION": "abc"}
    settings = Settings(build_base="local/build:1", runtime_base="local/run:1")
    assert build_args(settings, "abc")["BUILD_BASE"] == "local/build:1"
    assert build_args(settings, "abc")["RUNTIME_BASE"] == "local/run:1"


def test_same_source_same_tag(context):
    args = {"VERSION": "v3", "REVISION": "abc"}
    tag = content_tag(context, args)
    assert tag == content_tag(context, dict(args))
    assert tag.startswith("v3-") and len(tag) == len("v3-") + 12


def test_a_one_line_change_changes_the_tag(context):
    args = {"VERSION": "v3", "REVISION": "abc"}
    before = content_tag(context, args)
    server = context / "src" / "restdemo" / "server.py"
    server.write_text(server.read_text() + "\n# one line\n")
    assert content_tag(context, args) != before


def test_build_args_change_the_tag(context):
    assert content_tag(context, {"VERSION": "v3", "REVISION": "a"}) != content_tag(
        context, {"VERSION": "v3", "REVISION": "b"}
    )


def test_what_docker_ignores_does_not_change_the_tag(context):
    args = {"VERSION": "v3", "REVISION": "abc"}
    before = content_tag(context, args)
    (context / "src" / "restdemo" / "__pycache__").mkdir()
    (context / "src" / "restdemo" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"x")
    (context / "src" / "restdemo.egg-info").mkdir()
    (context / "src" / "restdemo.egg-info" / "PKG-INFO").write_text("x")
    assert content_tag(context, args) == before


def test_what_makes_the_provider_rebuild_makes_a_new_tag(context):
    """A checkout with another umask (public/ 0664), or another platform, is rebuilt by
    pulumi-docker-build (its context hash includes each file's mode; platforms are an input):
    under the same tag, ECR's immutable tags would refuse the second push."""
    args = {"VERSION": "v3", "REVISION": "abc"}
    before = content_tag(context, args, {"target": "runtime", "platform": ""})
    (context / "public" / "style.css").chmod(0o664)
    after_mode = content_tag(context, args, {"target": "runtime", "platform": ""})
    assert after_mode != before
    assert content_tag(context, args, {"target": "runtime", "platform": "linux/arm64"}) != after_mode


def test_the_revision_is_the_last_commit_touching_app_and_unknown_in_a_shallow_clone(tmp_path):
    """CI checks out one commit by default: `git log -1 -- app` then names HEAD for every merge,
    and every merge would roll the service. The workflows fetch the whole history."""
    from infra.program import REPO, revision_of

    expected = subprocess.run(
        ["git", "log", "-1", "--format=%H", "--", "app"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert revision_of(REPO / "app") == expected
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{REPO}", str(shallow)], check=True)
    assert revision_of(shallow / "app", repo=shallow) == "unknown"
