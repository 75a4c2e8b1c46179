"""What the program relies on in the service's image, and what it reads from its Dockerfile.

restdemo's own contract is the default (app/Dockerfile): it listens on 8000, answers `/health`, and
`restdemo-cli show health` is its check. Your own service sets its own (docs/your-service.md). A
health-check command runs at the timings below, restated in the service spec so that nothing
silently depends on the image; the image's own HEALTHCHECK (`healthCheck: []`) runs at the timings
its Dockerfile gives, which the settings read to bound a rollout's time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.config.durations import parse_duration

RESTDEMO_PORT = 8000
RESTDEMO_HEALTH_PATH = "/health"
RESTDEMO_HEALTHCHECK = ["CMD", "restdemo-cli", "show", "health", "--timeout", "4"]
HEALTH_INTERVAL_SECONDS = 5
HEALTH_TIMEOUT_SECONDS = 5
HEALTH_RETRIES = 3
HEALTH_START_PERIOD_SECONDS = 10
# The Dockerfile reference: HEALTHCHECK --interval defaults to 30s.
DOCKERFILE_DEFAULT_INTERVAL_SECONDS = 30.0


@dataclass(frozen=True)
class Stage:
    """One `FROM` of a Dockerfile: its name (lower case, as BuildKit compares them), what it is
    built on, and the arguments of its last HEALTHCHECK, if it has one."""

    name: str | None
    base: str
    healthcheck: str | None = None


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with `\\` line continuations joined and comments left out."""
    instructions, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        word, _, arguments = (pending + stripped).partition(" ")
        instructions.append((word.upper(), arguments.strip()))
        pending = ""
    return instructions


def stages(dockerfile_text: str) -> list[Stage]:
    """The Dockerfile's stages in order."""
    found: list[Stage] = []
    for instruction, arguments in _instructions(dockerfile_text):
        if instruction == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--")]
            name = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append(Stage(name=name, base=words[0] if words else ""))
        elif instruction == "HEALTHCHECK" and found:
            found[-1] = Stage(found[-1].name, found[-1].base, arguments)
    return found


def target_stage(dockerfile_text: str, target: str) -> Stage | None:
    """The stage a build of `target` ends in: the named one, or the last for "" (no target)."""
    all_stages = stages(dockerfile_text)
    if not target:
        return all_stages[-1] if all_stages else None
    return next((s for s in all_stages if s.name == target.lower()), None)


def image_healthcheck(dockerfile_text: str, target: str) -> str | None:
    """The HEALTHCHECK an image built to `target` has: its stage's own, else that of the stage it is
    built on, and so on (a stage inherits its base's); None when none has one, or it is NONE. A
    check that only an external base image brings is not seen."""
    by_name = {s.name: s for s in stages(dockerfile_text) if s.name}
    stage, seen = target_stage(dockerfile_text, target), set()
    while stage is not None and stage.name not in seen:
        if stage.healthcheck is not None:
            return None if stage.healthcheck.upper() == "NONE" else stage.healthcheck
        seen.add(stage.name)
        stage = by_name.get(stage.base.lower())
    return None


def healthcheck_interval(arguments: str) -> float:
    """A HEALTHCHECK's `--interval` in seconds (the Dockerfile's default when it gives none)."""
    match = re.search(r"--interval[= ](\S+)", arguments)
    return parse_duration(match.group(1)) if match else DOCKERFILE_DEFAULT_INTERVAL_SECONDS
