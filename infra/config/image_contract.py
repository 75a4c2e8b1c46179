"""What the program relies on in the service's image, and what it reads from its Dockerfile.

restdemo's own contract is the default (app/Dockerfile): it listens on 8000, answers `/health`, and
`restdemo-cli show health` is its check. Your own service sets its own (docs/your-app.md). A
health-check command runs at the timings below. With `healthCheck: []` the image's own
HEALTHCHECK is read from its Dockerfile and restated in the service spec, command and timings:
the spec never leaves the check to the image (an omitted block would keep the provider's previous
one, as the block is Optional+Computed), and a rollout's time is bounded by its interval.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
    it declares (name, has a default), the other stages its COPY/RUN read (`--from=`), and the
    arguments of all its instructions after FROM (where variables are used)."""

    name: str | None
    base: str
    healthcheck: str | None = None
    exposed: tuple[str, ...] = ()
    args: tuple[tuple[str, bool], ...] = ()
    reads: tuple[str, ...] = ()
    body: tuple[str, ...] = ()


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
        # Only these take heredocs (BuildKit's dockerfile frontend); elsewhere << is text.
        opens = word.upper() in ("RUN", "COPY", "ADD")
        heredocs = [(dash == "-", name) for dash, _, name in HEREDOC.findall(arguments)] if opens else []
    return instructions


def _declared_args(arguments: str) -> list[tuple[str, bool]]:
    """`ARG NAME[=default] ...`: each name and whether it has a default, words split as a shell
    would (`ARG GREETING="hello world"` is one)."""
    try:
        words = shlex.split(arguments, comments=False, posix=True)
    except ValueError:  # an unbalanced quote: BuildKit refuses the file; read what can be read
        words = arguments.split()
    return [(word.partition("=")[0], "=" in word) for word in words if word.partition("=")[0]]


def _use(name: str, texts: Iterable[str]) -> str:
    """How instructions use a variable: "required" ($NAME, ${NAME}, ${NAME:?...}), "optional" (only
    ${NAME:-...}, ${NAME:+...} and their forms without the colon) or "none" in the text (a script a
    RUN calls may still read it from the environment)."""
    escaped = re.escape(name)
    required = re.compile(rf"\$(?:{escaped}(?![A-Za-z0-9_])|\{{{escaped}(?:\}}|:?\?))")
    optional = re.compile(rf"\$\{{{escaped}:?[-+]")
    joined = "\n".join(texts)
    if required.search(joined):
        return "required"
    return "optional" if optional.search(joined) else "none"


def _reads_from(arguments: str) -> list[str]:
    """`COPY --from=<stage>`, `RUN --mount=type=...,from=<stage>`: the other stages an instruction
    reads from (its flags come first; split, never matched by a pattern, in linear time)."""
    found = []
    for word in arguments.split():
        if not word.startswith("--"):
            break
        if word.startswith("--from="):
            found.append(word.removeprefix("--from="))
        elif word.startswith("--mount="):
            options = dict(o.partition("=")[::2] for o in word.removeprefix("--mount=").split(","))
            if options.get("from"):
                found.append(options["from"])
    return found


def stages(dockerfile_text: str) -> list[Stage]:
    """The Dockerfile's stages in order."""
    found: list[dict] = []
    for instruction, arguments in _instructions(dockerfile_text):
        if instruction == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--")]
            name = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append({"name": name, "base": words[0] if words else "", "healthcheck": None, "exposed": [],
                          "args": [], "reads": [], "body": []})  # fmt: skip
            continue
        if not found:
            continue  # before the first FROM: only global ARGs (global_args)
        stage = found[-1]
        stage["body"].append(arguments)
        if instruction == "HEALTHCHECK":
            stage["healthcheck"] = arguments
        elif instruction == "EXPOSE":
            stage["exposed"] += arguments.split()
        elif instruction == "ARG":
            stage["args"] += _declared_args(arguments)
        elif instruction in ("COPY", "RUN", "ADD"):
            stage["reads"] += _reads_from(arguments)
    return [Stage(**{k: tuple(v) if isinstance(v, list) else v for k, v in stage.items()}) for stage in found]


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


def _stage_numbers(all_stages: list[Stage]) -> Callable[[str], int | None]:
    """Where a stage named in FROM or --from= is: by name (BuildKit compares them in lower case), or
    by its index; None for an image."""
    by_name = {s.name: i for i, s in reversed(list(enumerate(all_stages))) if s.name}

    def number(reference: str) -> int | None:
        if reference.isdigit():
            return int(reference) if int(reference) < len(all_stages) else None
        return by_name.get(reference.lower())

    return number


def _target_number(all_stages: list[Stage], target: str) -> int | None:
    """Where target_stage's stage is."""
    if not target:
        return len(all_stages) - 1 if all_stages else None
    return next((i for i, s in enumerate(all_stages) if s.name == target.lower()), None)


def _base_chain(dockerfile_text: str, target: str) -> list[Stage]:
    """The target stage, the stage it is built on, and so on: what its image inherits."""
    all_stages = stages(dockerfile_text)
    number_of = _stage_numbers(all_stages)
    chain, seen = [], set()
    number = _target_number(all_stages, target)
    while number is not None and number not in seen:
        seen.add(number)
        chain.append(all_stages[number])
        number = number_of(all_stages[number].base)
    return chain


def needed_stages(dockerfile_text: str, target: str) -> list[Stage]:
    """The stages a build of `target` runs (BuildKit builds only these): the target and every stage
    it is built on or reads files from, in the Dockerfile's order."""
    all_stages = stages(dockerfile_text)
    number_of = _stage_numbers(all_stages)
    needed: set[int] = set()
    start = _target_number(all_stages, target)
    pending = [start] if start is not None else []
    while pending:
        number = pending.pop()
        if number in needed:
            continue
        needed.add(number)
        for reference in (all_stages[number].base, *all_stages[number].reads):
            found = number_of(reference)
            if found is not None:
                pending.append(found)
    return [all_stages[i] for i in sorted(needed)]


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
    ARG's default; a global ARG counts only where a FROM of a needed stage uses it. One used only
    as ${NAME:-default} or ${NAME:+...} is optional by its writer's choice."""
    defaults = global_args(dockerfile_text)
    unset: list[str] = []
    needed = needed_stages(dockerfile_text, target)
    for name, has_default in defaults.items():
        in_from = _use(name, (stage.base for stage in needed)) == "required"
        if in_from and not has_default and name not in given and name not in PREDEFINED_ARGS:
            unset.append(name)
    for stage in needed:
        for name, has_default in stage.args:
            if has_default or defaults.get(name) or name in given or name in PREDEFINED_ARGS:
                continue
            if name.startswith("BUILDKIT_") or name in unset or _use(name, stage.body) == "optional":
                continue
            unset.append(name)
    return unset
