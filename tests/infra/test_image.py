"""The image component's pure parts: build arguments, the content tag, the pinned reference."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.image import build_args, content_tag
from infra.settings import Settings

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
