"""infra/image/build_context.py: the files of a build context, by moby/patternmatcher's rules."""

from __future__ import annotations

import pytest

from infra.image.build_context import context_files, ignore_rules, ignored
from tests.support.pulumi_program import REPO

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "patterns,path,expected",
    [
        ("*.md", "README.md", True),
        ("*.md", "docs/guide.md", False),  # `*` stays within one segment
        ("**/*.md", "docs/guide.md", True),
        ("**/*.pyc", "a.pyc", True),  # `**/` also matches no directory at all
        ("docs", "docs/a/b.md", True),  # a directory's pattern leaves out what is below it
        ("/docs/", "docs/a.md", True),  # cleaned: leading and trailing slashes do not matter
        ("src/?.py", "src/a.py", True),
        ("src/?.py", "src/ab.py", False),
        ("src/[ab].py", "src/b.py", True),
        ("*.md\n!README.md", "README.md", False),  # the last pattern that matches decides
        ("!README.md\n*.md", "README.md", True),
        ("# a comment\n\n*.md", "README.md", True),
        ("**\n!src/**\n**/__pycache__", "src/restdemo/routes.py", False),
        ("**\n!src/**\n**/__pycache__", "src/restdemo/__pycache__/routes.cpython-311.pyc", True),
        ("**\n!src/**", "README.md", True),
        ("", "anything", False),
    ],
)
def test_ignore_patterns_follow_moby(patterns, path, expected):
    assert ignored(path, ignore_rules(patterns)) is expected


def test_the_apps_context_is_what_its_dockerfile_copies():
    files = {f.as_posix() for f in context_files(REPO / "app", REPO / "app" / "Dockerfile")}
    assert {"pyproject.toml", "requirements.lock", "image/collect.py", "src/restdemo/server.py"} <= files
    assert "public/index.html" in files
    assert not {"README.md", "Dockerfile", ".dockerignore"} & files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)


def test_a_dockerfile_specific_ignore_file_wins(tmp_path):
    """`<Dockerfile>.dockerignore` before the context's own (docs.docker.com, build context)."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / ".dockerignore").write_text("a.txt\n")
    (tmp_path / "Dockerfile.dockerignore").write_text("b.txt\n")
    assert [f.as_posix() for f in context_files(tmp_path, tmp_path / "Dockerfile")] == [
        ".dockerignore",
        "Dockerfile",
        "Dockerfile.dockerignore",
        "a.txt",
    ]
