"""The files of a build context, as pulumi-docker-build hashes them to decide on a rebuild.

The provider (provider/internal/context.go `hashBuildContext`) reads `<Dockerfile>.dockerignore`,
else the context's `.dockerignore`, filters the context with moby/patternmatcher's rules, hashes
each remaining file's path, mode and content, and the Dockerfile's content besides (an ignore
file may exclude it). The image's tag and revision follow the same files, so a file Docker
ignores (a README) neither rebuilds nor rolls the service.

moby/patternmatcher's rules, as implemented here: patterns are cleaned paths; `*` matches within
one path segment, `?` one character of it, `**` any number of segments; a pattern that matches a
directory matches everything below it; `!` re-includes; the last pattern that matches decides.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path


def _regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*" and pattern[i + 1 : i + 2] == "*":
            i += 2
            if pattern[i : i + 1] == "/":
                i += 1
            out += ".*" if i == len(pattern) else "(.*/)?"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif char == "[":
            end = pattern.find("]", i + 1)
            out, i = (out + pattern[i : end + 1], end) if end > i else (out + re.escape(char), i)
        else:
            out += re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


@dataclass(frozen=True)
class IgnoreRule:
    regex: re.Pattern[str]
    include: bool  # a `!` pattern


def ignore_rules(text: str) -> list[IgnoreRule]:
    """The patterns of a .dockerignore file: comments and blank lines skipped, each path cleaned."""
    rules = []
    for line in text.splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        include = pattern.startswith("!")
        pattern = posixpath.normpath(pattern.removeprefix("!").strip()).lstrip("/")
        rules.append(IgnoreRule(_regex(pattern), include))
    return rules


def ignored(relative: str, rules: list[IgnoreRule]) -> bool:
    """Whether the context leaves out this file (a path relative to the context, with /)."""
    parents = [posixpath.join(*relative.split("/")[: n + 1]) for n in range(relative.count("/"))]
    verdict = False
    for rule in rules:
        if rule.regex.match(relative) or any(rule.regex.match(parent) for parent in parents):
            verdict = not rule.include
    return verdict


def context_files(context: Path, dockerfile: Path) -> list[Path]:
    """The context's files that go to the build, relative to it, sorted."""
    candidates = [Path(f"{dockerfile}.dockerignore"), context / ".dockerignore"]
    ignore_file = next((path for path in candidates if path.is_file()), None)
    rules = ignore_rules(ignore_file.read_text()) if ignore_file else []
    files = sorted(p.relative_to(context) for p in context.rglob("*") if p.is_file())
    return [f for f in files if not ignored(f.as_posix(), rules)]
