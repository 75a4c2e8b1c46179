"""What the program relies on in the service's image, and what it reads from its Dockerfile.

restdemo's own contract is the default (app/Dockerfile): it listens on 8000, answers `/health`, and
`restdemo-cli show health` is its check. Your own service sets its own (docs/your-service.md). A
health-check command runs at the timings below. With `healthCheck: []` the image's own
HEALTHCHECK is read from its Dockerfile and restated in the service spec, command and timings:
the spec never leaves the check to the image (an omitted block would keep the provider's previous
one, as the block is Optional+Computed), and a rollout's time is bounded by its interval.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from infra.config.durations import parse_duration

RESTDEMO_CONTEXT = "app"
RESTDEMO_PORT = 8000
RESTDEMO_HEALTH_PATH = "/health"
RESTDEMO_HEALTHCHECK = ["CMD", "restdemo-cli", "show", "health", "--timeout", "4"]
HEALTH_INTERVAL_SECONDS = 5
HEALTH_TIMEOUT_SECONDS = 5
HEALTH_RETRIES = 3
HEALTH_START_PERIOD_SECONDS = 10


class DockerfileError(ValueError):
    """A Dockerfile the program cannot read its stages or HEALTHCHECK from."""


@dataclass(frozen=True)
class HealthCheck:
    """A HEALTHCHECK: its test in the Engine API's form and its timings, with the Dockerfile
    reference's defaults (interval 30s, timeout 30s, start period 0s, 3 retries)."""

    test: list[str]
    interval: float = 30.0
    timeout: float = 30.0
    start_period: float = 0.0
    retries: int = 3


@dataclass(frozen=True)
class Stage:
    """One `FROM` of a Dockerfile: its name (lower case, as BuildKit compares them), what it is
    built on, the arguments of its last HEALTHCHECK if it has one, the ports it EXPOSEs, the ARGs
    it declares (name, has a default) and the other stages its COPY/RUN read (`--from=`)."""

    name: str | None
    base: str
    healthcheck: str | None = None
    exposed: tuple[str, ...] = ()
    args: tuple[tuple[str, bool], ...] = ()
    reads: tuple[str, ...] = ()


ESCAPE_DIRECTIVE = re.compile(r"#\s*escape\s*=\s*([\\`])\s*$", re.I)
# A heredoc opener: <<EOF, <<-EOF, <<"EOF", <<'EOF' (BuildKit's dockerfile frontend).
HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def _escape_character(lines: list[str]) -> str:
    """The parser directive `# escape=` (before any instruction), else backslash."""
    for line in lines:
        match = ESCAPE_DIRECTIVE.match(line.strip())
        if match:
            return match.group(1)
        if not line.strip().startswith("#"):
            break
    return "\\"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), with continuation lines joined, and comments, empty lines inside a
    continuation and heredoc bodies left out."""
    lines = text.splitlines()
    escape = _escape_character(lines)
    instructions: list[tuple[str, str]] = []
    pending, heredocs = "", []
    for line in lines:
        stripped = line.strip()
        if heredocs:  # inside a heredoc's body: only its terminator counts
            strip_tabs, word = heredocs[0]
            if (line.lstrip("\t") if strip_tabs else line) == word:
                heredocs.pop(0)
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith(escape):
            pending += stripped[:-1].rstrip() + " "
            continue
        word, _, arguments = (pending + stripped).partition(" ")
        instructions.append((word.upper(), arguments.strip()))
        pending = ""
        heredocs = [(dash == "-", name) for dash, _, name in HEREDOC.findall(arguments)]
    return instructions


def _declared_args(arguments: str) -> list[tuple[str, bool]]:
    """`ARG NAME[=default] ...`: each name and whether it has a default."""
    return [(word.partition("=")[0], "=" in word) for word in arguments.split() if word.partition("=")[0]]


# `COPY --from=<stage>`, `RUN --mount=type=...,from=<stage>`: other stages a stage reads from.
READS_FROM = re.compile(r"--(?:from=|mount=\S*?\bfrom=)([^\s,]+)")


def stages(dockerfile_text: str) -> list[Stage]:
    """The Dockerfile's stages in order."""
    found: list[Stage] = []
    for instruction, arguments in _instructions(dockerfile_text):
        if instruction == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--")]
            name = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append(Stage(name=name, base=words[0] if words else ""))
        elif not found:
            continue  # before the first FROM: only global ARGs (global_args)
        elif instruction == "HEALTHCHECK":
            found[-1] = replace(found[-1], healthcheck=arguments)
        elif instruction == "EXPOSE":
            found[-1] = replace(found[-1], exposed=found[-1].exposed + tuple(arguments.split()))
        elif instruction == "ARG":
            found[-1] = replace(found[-1], args=found[-1].args + tuple(_declared_args(arguments)))
        elif instruction in ("COPY", "RUN", "ADD"):
            found[-1] = replace(found[-1], reads=found[-1].reads + tuple(READS_FROM.findall(arguments)))
    return found


def global_args(dockerfile_text: str) -> dict[str, bool]:
    """The ARGs before the first FROM (the global scope): name -> has a default."""
    declared: dict[str, bool] = {}
    for instruction, arguments in _instructions(dockerfile_text):
        if instruction == "FROM":
            break
        if instruction == "ARG":
            declared |= dict(_declared_args(arguments))
    return declared


def target_stage(dockerfile_text: str, target: str) -> Stage | None:
    """The stage a build of `target` ends in: the named one, or the last for "" (no target)."""
    all_stages = stages(dockerfile_text)
    if not target:
        return all_stages[-1] if all_stages else None
    return next((s for s in all_stages if s.name == target.lower()), None)


def image_healthcheck(dockerfile_text: str, target: str) -> HealthCheck | None:
    """The HEALTHCHECK an image built to `target` has: its stage's own, else that of the stage it is
    built on, and so on (a stage inherits its base's); None when none has one, or it is NONE. A
    check that only an external base image brings is not seen."""
    stage = next((s for s in _base_chain(dockerfile_text, target) if s.healthcheck is not None), None)
    return parse_healthcheck(stage.healthcheck) if stage else None


HEALTHCHECK_OPTIONS = {"interval", "timeout", "start-period", "start-interval", "retries"}


def parse_healthcheck(arguments: str) -> HealthCheck | None:
    """A HEALTHCHECK's arguments: `NONE`, or options then `CMD` and the exec form (a JSON array) or
    the shell form (run by /bin/sh -c: CMD-SHELL in the Engine API)."""
    words = arguments.split(None, 1)
    options: dict[str, str] = {}
    while words and words[0].startswith("--"):
        name, equals, value = words[0][2:].partition("=")
        if name not in HEALTHCHECK_OPTIONS or not equals:
            raise DockerfileError(f"HEALTHCHECK option {words[0]} is not one of --{', --'.join(HEALTHCHECK_OPTIONS)}")
        options[name] = value
        words = words[1].split(None, 1) if len(words) > 1 else []
    if words and words[0].upper() == "NONE":
        return None
    if not words or words[0].upper() != "CMD" or len(words) < 2:
        raise DockerfileError("a HEALTHCHECK is NONE, or its options then CMD and a command")
    command = words[1].strip()
    try:
        exec_form = json.loads(command) if command.startswith("[") else None
    except ValueError:
        exec_form = None  # not JSON: the shell form, as the Dockerfile frontend reads it
    is_exec = isinstance(exec_form, list) and exec_form and all(isinstance(w, str) for w in exec_form)
    test = ["CMD", *exec_form] if is_exec else ["CMD-SHELL", command]
    try:
        timings = {
            field: parse_duration(options[option])
            for option, field in (("interval", "interval"), ("timeout", "timeout"), ("start-period", "start_period"))
            if option in options
        }
        retries = int(options.get("retries", "3"))
    except ValueError as exc:
        raise DockerfileError(f"HEALTHCHECK {arguments}: {exc}") from None
    return HealthCheck(test=test, retries=retries, **timings)


def _stage_by_reference(all_stages: list[Stage], reference: str) -> Stage | None:
    """A stage named in FROM or --from=: by name, or by its index."""
    if reference.isdigit():
        return all_stages[int(reference)] if int(reference) < len(all_stages) else None
    return next((s for s in all_stages if s.name == reference.lower()), None)


def _base_chain(dockerfile_text: str, target: str) -> list[Stage]:
    """The target stage, the stage it is built on, and so on: what its image inherits."""
    all_stages, chain = stages(dockerfile_text), []
    stage = target_stage(dockerfile_text, target)
    while stage is not None and stage not in chain:
        chain.append(stage)
        stage = _stage_by_reference(all_stages, stage.base)
    return chain


def needed_stages(dockerfile_text: str, target: str) -> list[Stage]:
    """The stages a build of `target` runs (BuildKit builds only these): the target and every stage
    it is built on or reads files from, in the Dockerfile's order."""
    all_stages = stages(dockerfile_text)
    start = target_stage(dockerfile_text, target)
    needed, pending = [], [start] if start else []
    while pending:
        stage = pending.pop()
        if stage in needed:
            continue
        needed.append(stage)
        references = (stage.base, *stage.reads)
        pending += [s for s in (_stage_by_reference(all_stages, r) for r in references) if s is not None]
    return [s for s in all_stages if s in needed]


def exposed_ports(dockerfile_text: str, target: str) -> set[int] | None:
    """The TCP ports an image built to `target` EXPOSEs (its stage's and those it is built on);
    None when a port is a variable or a range, which only the build knows."""
    ports: set[int] = set()
    for stage in _base_chain(dockerfile_text, target):
        for port in stage.exposed:
            number, _, protocol = port.partition("/")
            if not number.isdigit():
                return None
            if protocol.lower() in ("", "tcp"):
                ports.add(int(number))
    return ports


# What BuildKit sets by itself (docs.docker.com/reference/dockerfile/#predefined-args and
# #automatic-platform-args-in-the-global-scope, moby/buildkit frontend/dockerfile/dockerfile2llb):
# the platform ARGs, the proxy ARGs and SOURCE_DATE_EPOCH; the BUILDKIT_* ones configure BuildKit.
PREDEFINED_ARGS = frozenset(
    {
        "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
        "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
        "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY",
        "http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy",
        "SOURCE_DATE_EPOCH",
    }
)  # fmt: skip


def unset_args(dockerfile_text: str, target: str, given: set[str]) -> list[str]:
    """The ARGs a build of `target` declares with no default and that neither `given` (the build
    arguments passed) nor BuildKit sets: each would be empty. A stage's `ARG NAME` takes the global
    ARG's default; a global ARG counts only where a FROM of a needed stage uses it."""
    defaults = global_args(dockerfile_text)
    unset: list[str] = []
    needed = needed_stages(dockerfile_text, target)
    for name, has_default in defaults.items():
        used = any(re.search(rf"\$\{{?{re.escape(name)}\b", stage.base) for stage in needed)
        if used and not has_default and name not in given and name not in PREDEFINED_ARGS:
            unset.append(name)
    for stage in needed:
        for name, has_default in stage.args:
            if has_default or defaults.get(name) or name in given or name in PREDEFINED_ARGS:
                continue
            if name.startswith("BUILDKIT_") or name in unset:
                continue
            unset.append(name)
    return unset
