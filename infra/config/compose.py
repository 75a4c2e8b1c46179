"""A stack's services from its Compose files (`restdemo:composeFile`), read as `docker stack deploy` reads them.

The Docker CLI's own loader (`docker stack config`, no daemon needed) merges the files by Compose's
rules, interpolates `${VAR}` from the environment and validates them against its schema; what it
prints is the file `docker stack deploy` would deploy. Before it, each file is checked here against
the subset this program deploys, so every key it would not honour is named, one line each, with what
to do instead, in one run (the loader stops at its first problem, so of its own problems one is
reported a run). After it, the merged file becomes `ComposeApp`, typed: the only thing the rest of
the program reads. The loader's messages are put in this program's words (`loader_problem`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.config.durations import parse_duration
from restdemo_agent.contract import MAX_OWNER_ID

# What the program deploys of a service, of its `deploy` and `build`, and of the file; `x-` extension
# fields are allowed anywhere (YAML anchors live there) and ignored.
SERVICE_KEYS = frozenset(
    {
        "image",
        "build",
        "command",
        "entrypoint",
        "environment",
        "env_file",
        "ports",
        "healthcheck",
        "deploy",
        "secrets",
        "configs",
        "networks",
        "stop_grace_period",
        "labels",
        "volumes",
        "user",
    }
)
DEPLOY_KEYS = frozenset(
    {"replicas", "update_config", "rollback_config", "resources", "placement", "restart_policy", "labels"}
)
BUILD_KEYS = frozenset({"context", "dockerfile", "target", "args", "secrets"})
BUILD_SECRET_KEYS = frozenset({"source", "target"})
RESOURCE_KEYS = frozenset({"cpus", "memory"})
ROLLOUT_KEYS = frozenset({"parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order"})
# The nested sections a service may have, below `services.<name>.`, and what each takes.
NESTED_KEYS = {
    "deploy.placement": frozenset({"constraints", "preferences", "max_replicas_per_node"}),
    "deploy.restart_policy": frozenset({"condition", "delay", "max_attempts", "window"}),
    "deploy.update_config": ROLLOUT_KEYS,
    "deploy.rollback_config": ROLLOUT_KEYS,
    "deploy.resources": frozenset({"limits", "reservations"}),
    "deploy.resources.limits": RESOURCE_KEYS,
    "deploy.resources.reservations": RESOURCE_KEYS,
    "healthcheck": frozenset({"test", "interval", "timeout", "retries", "start_period", "disable"}),
}
# The long forms of a service's list entries, and what each takes.
ENTRY_KEYS = {
    "ports": frozenset({"target", "published", "protocol", "mode"}),
    "secrets": frozenset({"source", "target", "uid", "gid", "mode"}),
    "configs": frozenset({"source", "target", "uid", "gid", "mode"}),
    "volumes": frozenset({"type", "source", "target", "read_only", "volume"}),
}
VOLUME_OPTION_KEYS = frozenset({"nocopy"})
SERVICE_NETWORK_KEYS = frozenset({"aliases"})
# A service's own extension: its route through the load balancer (docs/your-app.md, Routes), and the
# bounds its replicas follow the load within (Replicas that follow the load).
ROUTE_KEYS = frozenset({"host", "path", "health_check_path"})
EXTENSION_KEYS = ROUTE_KEYS | {"scale"}
SCALE_KEYS = frozenset({"max_replicas", "cpu_percent", "out_cooldown", "in_cooldown"})
# The bounds a scaling service's settings take (the stack's maxReplicas and scaleCpuPercent say the same).
MOST_REPLICAS = 100
CPU_PERCENTS = range(10, 91)
MAX_COOLDOWN = 86400.0
# What an ALB rule's host-header and path-pattern conditions match (ELBv2 RuleCondition: up to 128
# characters of A-Z, a-z, 0-9, - . and, for paths, _ / ~ and more; we take no wildcards).
ROUTE_HOST = re.compile(r"(?=.{1,128}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")
ROUTE_PATH = re.compile(r"/[A-Za-z0-9._~/-]{1,100}")
TOP_KEYS = frozenset({"version", "services", "networks", "secrets", "configs", "volumes"})
VOLUME_KEYS = frozenset({"labels"})
# A volume's directory is owned by the uid (and gid) its services run as: a number, as Compose's
# `user` may give it (a name would need the image's /etc/passwd).
NUMERIC_USER = re.compile(r"(?P<uid>\d{1,10})(:(?P<gid>\d{1,10}))?")
# A volume's name: its directory on the file system (one path component) and part of Docker's name.
VOLUME_NAME = re.compile(r"(?=.{1,128}$)[A-Za-z0-9][A-Za-z0-9_.-]*")
NETWORK_KEYS = frozenset({"driver", "internal"})
SOURCE_KEYS = {"secrets": frozenset({"file", "external", "name"}), "configs": frozenset({"file"})}

# What to do instead, for the keys people write most; any other gets GENERIC.
INSTEAD = {
    "volumes.driver_opts": (
        "not supported: the platform chooses the driver (Docker's local driver, on EFS on AWS: docs/your-app.md, "
        "Volumes); remove it"
    ),
    "volumes.driver": (
        "not supported: the platform chooses the driver (Docker's local driver, on EFS on AWS: docs/your-app.md, "
        "Volumes); remove it"
    ),
    "volumes.external": "not yet: the program makes each volume of the stack; remove it",
    "volumes.name": (
        "not supported: a volume is named <serviceName>_<volume> in the swarm, as docker stack deploy names it; "
        "remove it"
    ),
    "deploy.mode": "not yet: every service is replicated (deploy.replicas); a global service is not deployed",
    "deploy.endpoint_mode": "not supported: every service gets a virtual IP its name resolves to; remove it",
    "container_name": "not supported: swarm names each task itself; remove it",
    "depends_on": (
        "not supported: swarm starts services in any order (docker stack deploy ignores it); make the service "
        "retry until what it needs answers, and remove it"
    ),
    "restart": "not supported on a swarm; use deploy.restart_policy",
    "links": "not needed: services reach each other by name on their networks; remove it",
    "expose": "not needed: a service's ports are reachable on its networks; remove it",
    "privileged": "refused: a service with the host's privileges would hand the node to whoever controls its image",
    "cap_add": "refused: extra kernel capabilities would widen what a compromised task can do to its node",
    "devices": "refused: a task gets no device of its node",
    "network_mode": "refused: a task joins its stack's overlay networks only (networks)",
    "pid": "refused: a task does not share its node's process namespace",
    "ipc": "refused: a task does not share its node's IPC namespace",
    "userns_mode": "refused: a task does not leave the engine's user namespace setting",
    "security_opt": "refused: a task keeps the engine's default seccomp and AppArmor profiles",
    "logging": "not supported: the stack's logging is the platform's (docs/operations.md); remove it",
    "extra_hosts": "not supported: services reach each other by name; remove it",
    "profiles": "not supported: docker stack deploy deploys every service; split the file into overlays instead",
}
GENERIC = "not supported: this program deploys {allowed} {here}; remove it"

# Lower-case words joined by single hyphens, as an ECR repository's name allows (no `--`, no hyphen last).
SERVICE_NAME = re.compile(r"(?=.{1,31}$)[a-z0-9]+(-[a-z0-9]+)*")
# Docker's limit for a secret's or config's data (moby daemon/cluster/convert: MaxSecretSize).
MAX_FILE_BYTES = 500 * 1024
LOADER_TIMEOUT_SECONDS = 60
# What `${VAR}` may not read from the deployer's environment: its credentials (Pulumi's passphrase
# and config, cloud keys, tokens). They are neither handed to the loader nor may a file name them.
WITHHELD = re.compile(
    r"(?i)^(PULUMI_|AWS_|ARM_|GOOGLE_|ACTIONS_|RUNNER_)|SECRET|PASSWORD|PASSPHRASE|TOKEN|CREDENTIAL|_KEY$"
)
REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def loader_environment() -> dict[str, str]:
    """The deployer's environment without what WITHHELD names."""
    return {name: value for name, value in os.environ.items() if not WITHHELD.search(name)}


@dataclass(frozen=True)
class Build:
    context: Path
    dockerfile: str
    target: str
    args: dict[str, str]
    # BuildKit secrets (`RUN --mount=type=secret,id=<id>`): id -> the top-level secret it reads.
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Port:
    target: int
    published: int
    protocol: str


@dataclass(frozen=True)
class Health:
    """A Compose `healthcheck`: its test, and the timings Compose gives (None: Docker's default)."""

    test: list[str]
    interval: float | None = None
    timeout: float | None = None
    start_period: float | None = None
    retries: int | None = None


@dataclass(frozen=True)
class Rollout:
    """`update_config` or `rollback_config`, as given (None: the stack's setting applies)."""

    parallelism: int | None = None
    delay: float | None = None
    failure_action: str | None = None
    monitor: float | None = None
    max_failure_ratio: float | None = None
    order: str | None = None


@dataclass(frozen=True)
class Mount:
    """A secret or config a service mounts: `/run/secrets/<source>` unless a target is given."""

    source: str
    target: str
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444


@dataclass(frozen=True)
class VolumeMount:
    """A named volume a service mounts (Compose's long form, as the loader writes every entry)."""

    source: str
    target: str
    read_only: bool = False
    nocopy: bool = False


@dataclass(frozen=True)
class Source:
    """A top-level secret or config: from a file, or (`external`) from the stack's `restdemo:secrets`."""

    name: str
    file: Path | None = None


@dataclass(frozen=True)
class Route:
    """How the load balancer reaches a service that publishes a port (`x-restdemo` on the service):
    by host name, by path prefix, or neither (the listener's default); and the path its target
    group checks (None: the stack's healthCheckPath)."""

    hosts: tuple[str, ...] = ()
    path: str | None = None
    health_check_path: str | None = None


@dataclass(frozen=True)
class Scale:
    """The replicas of a service follow its load up to `max_replicas` (`x-restdemo.scale`; the fewest
    are its deploy.replicas); None where the stack's own setting applies."""

    max_replicas: int
    cpu_percent: int | None = None
    out_cooldown: float | None = None
    in_cooldown: float | None = None


@dataclass(frozen=True)
class ComposeService:
    name: str
    image: str | None
    build: Build | None
    command: list[str] | None
    entrypoint: list[str] | None
    environment: dict[str, str]
    ports: list[Port]
    healthcheck: Health | None
    replicas: int
    update: Rollout
    rollback: Rollout
    cpu_limit: float | None
    memory_limit: int | None
    cpu_reservation: float | None
    memory_reservation: int | None
    constraints: list[str]
    preferences: list[str]
    restart_condition: str
    restart_delay: float | None
    restart_max_attempts: int | None
    restart_window: float | None
    max_replicas_per_node: int | None
    secrets: list[Mount]
    configs: list[Mount]
    # network -> the extra aliases the service has on it (its own name always)
    networks: dict[str, list[str]]
    stop_grace_period: float | None
    labels: dict[str, str]
    service_labels: dict[str, str]
    route: Route = field(default_factory=lambda: Route())
    scale: Scale | None = None
    volumes: list[VolumeMount] = field(default_factory=list)
    user: str | None = None


@dataclass(frozen=True)
class ComposeApp:
    services: list[ComposeService]
    networks: dict[str, bool] = field(default_factory=dict)  # name -> internal
    secrets: dict[str, Source] = field(default_factory=dict)
    configs: dict[str, Source] = field(default_factory=dict)
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> labels

    def volume_owner(self, volume: str) -> str:
        """`uid:gid` its directory is owned by: its services' user (checked to be one), the gid its
        uid when none gives one; root when they give no user."""
        users = [_numeric_user(s.user) for s in self.services if any(m.source == volume for m in s.volumes)]
        uid = next((uid for uid, _ in users), "0")
        gid = next((gid for _, gid in users if gid is not None), uid)
        return f"{uid}:{gid}"


def _numeric_id_user(user: str) -> bool:
    match = NUMERIC_USER.fullmatch(user)
    return bool(match) and max(int(match["uid"]), int(match["gid"] or 0)) <= MAX_OWNER_ID


def _numeric_user(user: str | None) -> tuple[str, str | None]:
    match = NUMERIC_USER.fullmatch(user or "0")
    return (match["uid"], match["gid"]) if match else ("?", None)


class ComposeError(ValueError):
    """The problems with a stack's Compose files, one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def load_app(paths: list[Path]) -> ComposeApp:
    """The files merged, interpolated and validated as `docker stack deploy` would, as `ComposeApp`;
    or ComposeError with every problem found."""
    problems = [line for path in paths for line in file_problems(path)]
    merged = None
    if not problems:
        merged, loader_error = run_loader(paths)
        if loader_error:
            problems.append(loader_error)
    if problems:
        raise ComposeError(problems)
    return app_of(with_build_secrets(merged or {}, paths), paths[0].resolve().parent)


def with_build_secrets(merged: dict, paths: list[Path]) -> dict:
    """The merged file with each build's `secrets` put back: the loader drops them (its schema has
    them, its types do not). As Compose merges a list, a later file's replaces an earlier one's."""
    for path in paths:
        for name, service in _mapping(yaml.safe_load(path.read_text()).get("services")).items():
            secrets = _mapping(_mapping(service).get("build")).get("secrets")
            build = _mapping(_mapping(merged.get("services")).get(name)).get("build")
            if secrets is not None and isinstance(build, dict):
                build["secrets"] = secrets
    return merged


def file_problems(path: Path) -> list[str]:
    """One file's keys against the subset deployed, and what the loader cannot say for us."""
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return [f"{path.name}: no such file"]
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path.name}: cannot be read ({exc.__class__.__name__})"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        return [f"{path.name}: not valid YAML{where}"]
    if not isinstance(document, dict):
        return [f"{path.name}: must be a mapping of services, networks, secrets and configs"]
    text = path.read_text()
    lines = [
        f"${{{name}}}: names the deployer's credentials, which a Compose file may not read; give the value another name"
        for name in sorted({m.group(1) for m in REFERENCE.finditer(text.replace("$$", ""))})
        if WITHHELD.search(name)
    ]
    project = path.resolve().parent
    lines += _unknown(document, TOP_KEYS, "")
    for name, service in _mapping(document.get("services")).items():
        where = f"services.{name}"
        if not SERVICE_NAME.fullmatch(str(name)):
            lines.append(f"{where}: a service name is 1-31 lower-case letters and digits, words joined by single '-'")
        service = _mapping(service)
        lines += _unknown(service, SERVICE_KEYS, where)
        lines += _unknown(_mapping(service.get("build")), BUILD_KEYS, f"{where}.build")
        deploy = _mapping(service.get("deploy"))
        lines += _unknown(deploy, DEPLOY_KEYS, f"{where}.deploy")
        for section, allowed in NESTED_KEYS.items():
            found = service
            for part in section.split("."):
                found = _mapping(found.get(part))
            lines += _unknown(found, allowed, f"{where}.{section}")
        lines += _build_secret_problems(_mapping(service.get("build")).get("secrets"), f"{where}.build.secrets")
        for kind, allowed in ENTRY_KEYS.items():
            for number, entry in enumerate(service.get(kind) or []):
                lines += _unknown(_mapping(entry), allowed, f"{where}.{kind}[{number}]")
        lines += _volume_entry_problems(service.get("volumes"), f"{where}.volumes")
        if service.get("x-restdemo") is not None:
            lines += _route_problems(service["x-restdemo"], f"{where}.x-restdemo")
            lines += _scale_problems(service, f"{where}.x-restdemo.scale")
        networks = service.get("networks")
        for network, options in networks.items() if isinstance(networks, dict) else []:
            lines += _unknown(_mapping(options), SERVICE_NETWORK_KEYS, f"{where}.networks.{network}")
        env_files = service.get("env_file") or []
        for entry in [env_files] if isinstance(env_files, (str, dict)) else env_files:
            file = entry.get("path") if isinstance(entry, dict) else entry
            lines += _outside(f"{where}.env_file", project, str(file))
        for number, port in enumerate(service.get("ports") or []):
            if isinstance(port, str) and port.count(":") >= 2:
                lines.append(
                    f"{where}.ports[{number}]: {port} binds an address, which swarm ignores (it publishes on every "
                    "interface of every node); write published:target"
                )
            if isinstance(port, dict) and port.get("mode", "ingress") != "ingress":
                lines.append(
                    f"{where}.ports[{number}]: mode {port['mode']} is not supported: ports are published on the "
                    "routing mesh (mode ingress), where every node answers for them"
                )
    for name, network in _mapping(document.get("networks")).items():
        if name == "default":
            lines.append("networks.default: the stack's own network, made by the program; declare another one")
            continue
        network = _mapping(network)
        lines += _unknown(network, NETWORK_KEYS, f"networks.{name}")
        if network.get("driver", "overlay") != "overlay":
            lines.append(f"networks.{name}.driver: a stack's networks are overlay networks; remove it or write overlay")
    for name, volume in _mapping(document.get("volumes")).items():
        lines += _unknown(_mapping(volume), VOLUME_KEYS, f"volumes.{name}")
    for kind, allowed in SOURCE_KEYS.items():
        for name, source in _mapping(document.get(kind)).items():
            lines += _unknown(_mapping(source), allowed, f"{kind}.{name}")
            if "file" in _mapping(source):
                lines += _outside(f"{kind}.{name}.file", project, str(source["file"]))
    for name, service in _mapping(document.get("services")).items():
        build = _mapping(service).get("build") if isinstance(service, dict) else None
        build = {"context": build} if isinstance(build, str) else _mapping(build)
        if "context" in build:
            lines += _outside(f"services.{name}.build.context", project, str(build["context"]))
            context = project / str(build["context"])
            lines += _outside(
                f"services.{name}.build.dockerfile", context, str(build.get("dockerfile") or "Dockerfile")
            )
    return [f"{path.name}: {line}" for line in lines]


def _volume_entry_problems(entries: Any, where: str) -> list[str]:
    """What the loader would turn into something else: a node's directory (a bind mount), a mode
    beyond ro and rw (SELinux relabelling `z`, propagation); a long entry's `volume` options."""
    lines = []
    for number, entry in enumerate(entries if isinstance(entries, list) else []):
        if isinstance(entry, dict):
            lines += _unknown(_mapping(entry.get("volume")), VOLUME_OPTION_KEYS, f"{where}[{number}].volume")
            if entry.get("type") == "bind":
                lines.append(f"{where}[{number}]: type bind {NODE_DIRECTORY}")
            continue
        source, _, rest = str(entry).partition(":")
        mode = rest.partition(":")[2]
        if rest and source.startswith(("/", ".", "~")):
            lines.append(f"{where}[{number}]: {entry} {NODE_DIRECTORY}")
        elif mode and mode not in ("ro", "rw"):
            lines.append(f"{where}[{number}]: {entry}: the mode may be ro or rw only")
    return lines


NODE_DIRECTORY = (
    "is a directory of the node; a task gets none, mount a named volume declared under the top-level volumes"
)


def _build_secret_problems(secrets: Any, where: str) -> list[str]:
    """A list of names, or of {source, target}: the loader does not check them (it drops them)."""
    if secrets is None:
        return []
    if not isinstance(secrets, list):
        return [f"{where}: a list of secret names, or of {{source, target}}"]
    lines, ids = [], set()
    for number, entry in enumerate(secrets):
        entry = {"source": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
            lines.append(f"{where}[{number}]: a secret name, or {{source, target}} with source a name")
            continue
        lines += _unknown(entry, BUILD_SECRET_KEYS, f"{where}[{number}]")
        build_id = entry.get("target") or entry["source"]
        if not isinstance(build_id, str) or "$" in build_id + entry["source"]:
            lines.append(f"{where}[{number}]: names only, no ${{VAR}} (the loader does not read build secrets)")
        elif build_id in ids:
            lines.append(f"{where}[{number}]: the id {build_id} is given twice")
        ids.add(build_id)
    return lines


def _scale_problems(service: dict, where: str) -> list[str]:
    extension = service["x-restdemo"]
    if not isinstance(extension, dict) or "scale" not in extension:
        return []
    scale = extension["scale"]
    if not isinstance(scale, dict) or "max_replicas" not in scale:
        return [f"{where}: a mapping with max_replicas, and cpu_percent, out_cooldown and in_cooldown if you like"]
    lines = _unknown(scale, SCALE_KEYS, where)
    fewest = _mapping(service.get("deploy")).get("replicas", 1)
    most = scale["max_replicas"]
    if not _whole(most) or not (isinstance(fewest, int) and fewest < most <= MOST_REPLICAS):
        lines.append(
            f"{where}.max_replicas: {most} is not a whole number above deploy.replicas ({fewest}) and at most "
            f"{MOST_REPLICAS}"
        )
    if "cpu_percent" in scale and not (_whole(scale["cpu_percent"]) and scale["cpu_percent"] in CPU_PERCENTS):
        lines.append(f"{where}.cpu_percent: {scale['cpu_percent']} is not a whole percent from 10 to 90")
    for key in ("out_cooldown", "in_cooldown"):
        if key not in scale:
            continue
        try:
            ok = parse_duration(str(scale[key])) <= MAX_COOLDOWN
        except ValueError:
            ok = False
        if not ok:
            lines.append(f"{where}.{key}: {scale[key]} is not a duration of at most 24h, such as 1m or 5m")
    return lines


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _route_problems(route: Any, where: str) -> list[str]:
    if not isinstance(route, dict):
        return [f"{where}: a mapping of host, path, health_check_path and scale"]
    lines = _unknown(route, EXTENSION_KEYS, where)
    hosts = route.get("host", [])
    for host in [hosts] if isinstance(hosts, str) else hosts if isinstance(hosts, list) else [None]:
        if not isinstance(host, str) or not ROUTE_HOST.fullmatch(host):
            lines.append(f"{where}.host: {host} is not a host name in lower case (such as api.example.com)")
    for key in ("path", "health_check_path"):
        if key in route and not (isinstance(route[key], str) and ROUTE_PATH.fullmatch(route[key].rstrip("/") or "/x")):
            lines.append(f"{where}.{key}: {route[key]} is not a path such as /api (letters, digits, . _ ~ / -)")
    if "host" in route and "path" in route:
        lines.append(f"{where}: host or path, not both: a service is reached one way")
    return lines


def _outside(where: str, directory: Path, given: str) -> list[str]:
    """A path a file names must stay in `directory` (the Compose file's own, or a build's context) and
    out of dot-directories: the deployer's credentials, the project's state and passphrase and any
    host file are not the app's to read."""
    # Both readings of the path: the loader's (`..` taken away as text, as Go's filepath.Clean does) and
    # the file system's (symlinks followed); a symlink with `..` after it tells them apart.
    try:
        home = directory.resolve()
        readings = [Path(os.path.normpath(home / given)), (directory / given).resolve()]
        inside = all(path.is_relative_to(home) for path in readings)
        hidden = inside and any(part.startswith(".") for path in readings for part in path.relative_to(home).parts)
    except (OSError, ValueError):
        inside, hidden = False, False
    if not inside:
        return [f"{where}: {given} is outside {directory.resolve()}; keep what the app reads beside its Compose file"]
    if hidden:
        return [
            f"{where}: {given} is in a dot-directory (.git, .pulumi, .aws ...); keep what the app reads out of them"
        ]
    return []


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _unknown(section: dict, allowed: frozenset[str], where: str) -> list[str]:
    lines = []
    for name in section:
        if str(name).startswith("x-") or name in allowed:
            continue
        path = f"{where}.{name}" if where else str(name)
        # The hint for `deploy.mode` is keyed without the service: `services.web.deploy.mode` -> `deploy.mode`.
        short = path.split(".", 2)[2] if path.startswith("services.") and path.count(".") >= 2 else path
        generic = GENERIC.format(allowed=_words(allowed), here=_section(where))
        # A top-level section's entry's key (`volumes.data.driver`) is hinted as `volumes.driver`.
        section = f"{where.split('.', 1)[0]}.{name}" if where and not where.startswith("services.") else path
        lines.append(f"{path}: {INSTEAD.get(short) or INSTEAD.get(section) or INSTEAD.get(str(name)) or generic}")
    return lines


def _section(where: str) -> str:
    """Where a key is, in words: `services.web.deploy.placement` -> `in deploy.placement`."""
    if not where:
        return "at the top of a Compose file"
    if where.startswith("services."):
        return f"in {where.split('.', 2)[2]}" if where.count(".") >= 2 else "in a service"
    return f"in {where}"


def _words(names: frozenset[str]) -> str:
    ordered = sorted(names)
    return ", ".join(ordered[:-1]) + f" and {ordered[-1]}" if len(ordered) > 1 else ordered[0]


def run_loader(paths: list[Path]) -> tuple[dict | None, str | None]:
    """`docker stack config -c a -c b` from the first file's directory (Compose's project directory,
    which relative paths start from): the merged file, or the loader's problem in our words."""
    docker = shutil.which("docker")
    if not docker:
        return None, (
            "needs the docker CLI, whose loader reads the file as docker stack deploy does; install Docker "
            "(docs/your-app.md)"
        )
    command = [docker, "stack", "config"]
    for path in paths:
        command += ["-c", str(path.resolve())]
    try:
        result = subprocess.run(
            command,
            cwd=paths[0].resolve().parent,
            capture_output=True,
            text=True,
            timeout=LOADER_TIMEOUT_SECONDS,
            env=loader_environment(),
        )
    except subprocess.TimeoutExpired:
        return None, f"docker stack config did not answer in {LOADER_TIMEOUT_SECONDS}s"
    if result.returncode != 0:
        return None, loader_problem(result.stderr)
    return yaml.safe_load(result.stdout) or {}, None


LOADER_MESSAGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?P<path>\S+) must be a (?P<type>\w+)"), "{path}: must be {article} {type}"),
    (
        re.compile(r"^(?P<path>\S+) Does not match format '(?P<format>\w+)'"),
        "{path}: not {format_words}",
    ),
    (
        re.compile(r'^invalid interpolation format for (?P<path>[^\s:]+): "required variable (?P<var>\w+) is missing'),
        "{path}: needs {var} set in the environment (${{{var}:?...}} requires it)",
    ),
    (
        re.compile(r"^invalid interpolation format for (?P<path>[^\s:]+)"),
        "{path}: a $ that starts no ${{VAR}} reference; write $$ for a literal $",
    ),
    (re.compile(r"^open (?P<file>.+): no such file or directory"), "{file}: no such file"),
    (re.compile(r"^yaml: line (?P<line>\d+)"), "not valid YAML at line {line}"),
    (
        re.compile(r"error decoding '(?P<path>[\w.]+)': invalid suffix"),
        "{snake}: not a size (a number of bytes, or with b, k, m or g: 512m)",
    ),
    (
        re.compile(r"^(?P<path>services\.\S+|networks\.\S+|secrets\.\S+|configs\.\S+) "),
        "{path}: not accepted by Compose's schema (docker stack config -c <file> says why)",
    ),
]
FORMAT_WORDS = {
    "duration": "a duration (such as 30s, 1m30s)",
    "ports": "a port (published:target, such as 8080:80)",
    "expose": "a port",
}


def loader_problem(stderr: str) -> str:
    """The loader's first problem (it stops there), in this program's words."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = next((line for line in lines if "error decoding" in line), lines[0] if lines else "no reason given")
    for pattern, words in LOADER_MESSAGES:
        match = pattern.search(text)
        if match:
            found = match.groupdict()
            kind = found.get("type", "")
            return words.format(
                **found,
                article="an" if kind[:1] in "aeiou" else "a",
                format_words=FORMAT_WORDS.get(found.get("format", ""), "valid"),
                snake=_snake(found.get("path", "")),
            )
    # Not echoed: the loader quotes what it read (an env_file's line may be a password).
    return "docker stack config refused the files; run docker stack config -c <file> to see why"


def _snake(decoder_path: str) -> str:
    """`Deploy.Resources.Limits.memory` (the loader's Go field names) -> `deploy.resources.limits.memory`."""
    return re.sub(r"(?<!^)(?<![.])([A-Z])", r"_\1", decoder_path).lower()


def app_of(merged: dict, project_dir: Path) -> ComposeApp:
    """The merged file (validated by the loader and `file_problems`), typed, its build contexts from
    `project_dir` (the first file's directory, as Compose's); references checked."""
    declared = _mapping(merged.get("networks"))
    networks = {str(name): bool(_mapping(net).get("internal")) for name, net in declared.items()}
    sources = {kind: _sources(_mapping(merged.get(kind))) for kind in SOURCE_KEYS}
    volumes = {
        str(name): _strings(_mapping(volume).get("labels")) for name, volume in _mapping(merged.get("volumes")).items()
    }
    services = [
        _service(str(name), _mapping(spec), project_dir)
        for name, spec in sorted(_mapping(merged.get("services")).items())
    ]
    # `environment: [NAME]` with NAME unset where the loader ran: docker stack deploy leaves it out of
    # the task's environment, which the provider's map cannot say; so it must be given a value.
    problems = [
        f"services.{name}.environment: {variable} has no value (the environment the file was read in does not "
        "set it); give it one"
        for name, spec in sorted(_mapping(merged.get("services")).items())
        for variable, value in _mapping(_mapping(spec).get("environment")).items()
        if value is None
    ]
    published: dict[tuple[int, str], str] = {}
    for service in services:
        where = f"services.{service.name}"
        if not service.image and not service.build:
            problems.append(f"{where}: needs image (a prebuilt image) or build (a directory with a Dockerfile)")
        for kind, mounts in (("secrets", service.secrets), ("configs", service.configs)):
            for mount in mounts:
                if mount.source not in sources[kind]:
                    problems.append(f"{where}.{kind}: {mount.source} is not declared under the top-level {kind}")
        for source in (service.build.secrets if service.build else {}).values():
            if source not in sources["secrets"]:
                problems.append(f"{where}.build.secrets: {source} is not declared under the top-level secrets")
        entries = _mapping(_mapping(merged.get("services")).get(service.name)).get("volumes") or []
        if entries and service.user is None:
            problems.append(
                f"{where}.user: a service that mounts a volume states its user, a numeric uid or uid:gid (its "
                "volume's directory is made owned by it; the image's own user is not known here)"
            )
        elif entries and not _numeric_id_user(service.user):
            problems.append(
                f"{where}.user: {service.user}: a service that mounts a volume runs as a numeric uid or uid:gid (its "
                "volume's directory is made owned by it)"
            )
        problems += _volume_problems(where, entries, volumes)
        for network in service.networks:
            if network != "default" and network not in networks:
                problems.append(f"{where}.networks: {network} is not declared under the top-level networks")
        for port in service.ports:
            if not port.published:
                problems.append(f"{where}.ports: {port.target} needs a published port (published:target)")
            elif (port.published, port.protocol) in published:
                problems.append(
                    f"{where}.ports: {port.published}/{port.protocol} is published by "
                    f"services.{published[port.published, port.protocol]} already"
                )
            else:
                published[port.published, port.protocol] = service.name
    built = {source for service in services if service.build for source in service.build.secrets.values()}
    for kind, named in sources.items():
        for name, source in named.items():
            problems += _source_problems(f"{kind}.{name}", source, project_dir, kind == "secrets" and name in built)
    if not services:
        problems.append("services: the file describes no service")
    app = ComposeApp(services=services, networks=networks, volumes=volumes, **sources)
    problems += [
        f"volumes.{name}: a volume's name is 1-128 letters, digits, '.', '_' and '-', starting with a letter or digit"
        for name in sorted(volumes)
        if not VOLUME_NAME.fullmatch(name)
    ]
    problems += _owner_problems(app)
    if problems:
        raise ComposeError(problems)
    return app


def _volume_problems(where: str, entries: list, volumes: dict[str, dict[str, str]]) -> list[str]:
    """A service's mounts as the loader wrote them (long form): named volumes the file declares only."""
    problems = []
    for entry in entries:
        entry = _mapping(entry)
        kind, source, target = entry.get("type"), entry.get("source"), entry.get("target")
        if kind == "bind":
            # A bind written as such stopped the run before the loader (file_problems): this one a
            # ${VAR} made.
            problems.append(f"{where}.volumes: {source}:{target} {NODE_DIRECTORY}")
        elif kind == "tmpfs":
            problems.append(
                f"{where}.volumes: {target} is a tmpfs mount: not yet; write to a named volume or the container's "
                "own files"
            )
        elif kind != "volume":
            problems.append(f"{where}.volumes: {target}: type {kind} is not supported; mount a named volume")
        elif not source:
            problems.append(
                f"{where}.volumes: {target} is an anonymous volume, which stays on the node its task ran on; name it "
                "and declare it under the top-level volumes"
            )
        elif source not in volumes:
            problems.append(f"{where}.volumes: {source} is not declared under the top-level volumes")
    return problems


def _owner_problems(app: ComposeApp) -> list[str]:
    """A volume's directory has one owner: the services that mount it run as one user."""
    problems = []
    for volume in sorted(app.volumes):
        users = {
            service.name: service.user or "0:0"
            for service in app.services
            if any(mount.source == volume for mount in service.volumes)
        }
        owners = {_numeric_user(user) for user in users.values()}
        uids = {uid for uid, _ in owners}
        gids = {gid for _, gid in owners if gid is not None}
        if len(uids) > 1 or len(gids) > 1:
            listed = ", ".join(f"{name} as {user}" for name, user in sorted(users.items()))
            problems.append(
                f"volumes.{volume}: mounted by services that run as different users ({listed}); give them one uid:gid"
            )
    return problems


def _sources(section: dict) -> dict[str, Source]:
    named = {}
    for name, spec in section.items():
        spec = _mapping(spec)
        file = spec.get("file")
        named[str(name)] = Source(name=str(spec.get("name") or name), file=Path(file) if file else None)
    return named


def _source_problems(where: str, source: Source, project_dir: Path, for_build: bool = False) -> list[str]:
    if source.file is None:
        return []
    # The path as the loader gives it (absolute, `..` taken away as text): what the program reads.
    outside = _outside(f"{where}.file", project_dir, str(source.file))
    if outside:
        return outside
    try:
        size = source.file.stat().st_size
        if not source.file.is_file() or not os.access(source.file, os.R_OK):
            raise PermissionError
    except PermissionError:
        return [f"{where}.file: {source.file} is not a file the deployer can read"]
    except OSError:
        return [f"{where}.file: {source.file} does not exist"]
    if size > MAX_FILE_BYTES:
        return [f"{where}.file: {source.file} is over 500 KiB, Docker's limit for a secret or config"]
    if for_build:
        try:
            source.file.read_bytes().decode()
        except UnicodeDecodeError:
            return [f"{where}.file: {source.file} is not UTF-8 text, which BuildKit takes a build secret as"]
    return []


def _seconds(value: Any) -> float | None:
    return parse_duration(str(value)) if value is not None else None


def _strings(value: Any) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in _mapping(value).items()}


def _rollout(spec: dict) -> Rollout:
    ratio = spec.get("max_failure_ratio")
    return Rollout(
        parallelism=spec.get("parallelism"),
        delay=_seconds(spec.get("delay")),
        failure_action=spec.get("failure_action"),
        monitor=_seconds(spec.get("monitor")),
        max_failure_ratio=float(ratio) if ratio is not None else None,
        order=spec.get("order"),
    )


def _mounts(entries: list, prefix: str) -> list[Mount]:
    mounts = []
    for entry in entries or []:
        entry = entry if isinstance(entry, dict) else {"source": entry}
        source = str(entry["source"])
        target = str(entry.get("target") or source)
        mounts.append(
            Mount(
                source=source,
                target=target if target.startswith("/") else f"{prefix}/{target}",
                uid=str(entry.get("uid", "0")),
                gid=str(entry.get("gid", "0")),
                mode=int(entry.get("mode", 0o444)),
            )
        )
    return mounts


def _service(name: str, spec: dict, project_dir: Path) -> ComposeService:
    deploy = _mapping(spec.get("deploy"))
    resources = _mapping(deploy.get("resources"))
    limits, reservations = _mapping(resources.get("limits")), _mapping(resources.get("reservations"))
    build = spec.get("build")
    if isinstance(build, str):
        build = {"context": build}
    health = _mapping(spec.get("healthcheck"))
    networks = spec.get("networks") or {"default": None}
    if isinstance(networks, list):
        networks = dict.fromkeys(networks)
    return ComposeService(
        name=name,
        image=spec.get("image"),
        build=Build(
            context=project_dir / build["context"],
            dockerfile=str(build.get("dockerfile") or "Dockerfile"),
            target=str(build.get("target") or ""),
            args=_strings(build.get("args")),
            secrets={
                str(entry.get("target") or entry["source"]): str(entry["source"])
                for entry in (e if isinstance(e, dict) else {"source": e} for e in build.get("secrets") or [])
            },
        )
        if build
        else None,
        command=spec.get("command"),
        entrypoint=spec.get("entrypoint"),
        environment=_strings(spec.get("environment")),
        ports=[
            Port(target=int(p["target"]), published=int(p.get("published") or 0), protocol=p.get("protocol", "tcp"))
            for p in spec.get("ports") or []
        ],
        healthcheck=None
        if not health
        else Health(
            test=["NONE"] if health.get("disable") else list(health.get("test") or []),
            interval=_seconds(health.get("interval")),
            timeout=_seconds(health.get("timeout")),
            start_period=_seconds(health.get("start_period")),
            retries=health.get("retries"),
        ),
        replicas=int(deploy.get("replicas", 1)),
        update=_rollout(_mapping(deploy.get("update_config"))),
        rollback=_rollout(_mapping(deploy.get("rollback_config"))),
        cpu_limit=float(limits["cpus"]) if "cpus" in limits else None,
        memory_limit=int(limits["memory"]) if "memory" in limits else None,
        cpu_reservation=float(reservations["cpus"]) if "cpus" in reservations else None,
        memory_reservation=int(reservations["memory"]) if "memory" in reservations else None,
        constraints=list(_mapping(deploy.get("placement")).get("constraints") or []),
        preferences=[p["spread"] for p in _mapping(deploy.get("placement")).get("preferences") or []],
        restart_condition=str(_mapping(deploy.get("restart_policy")).get("condition", "any")),
        restart_delay=_seconds(_mapping(deploy.get("restart_policy")).get("delay")),
        restart_max_attempts=_mapping(deploy.get("restart_policy")).get("max_attempts"),
        restart_window=_seconds(_mapping(deploy.get("restart_policy")).get("window")),
        max_replicas_per_node=_mapping(deploy.get("placement")).get("max_replicas_per_node"),
        secrets=_mounts(spec.get("secrets"), "/run/secrets"),
        configs=_mounts(spec.get("configs"), ""),
        networks={str(net): list(_mapping(opts).get("aliases") or []) for net, opts in networks.items()},
        stop_grace_period=_seconds(spec.get("stop_grace_period")),
        labels=_strings(spec.get("labels")),
        service_labels=_strings(deploy.get("labels")),
        route=_route(_mapping(spec.get("x-restdemo"))),
        scale=_scale(_mapping(_mapping(spec.get("x-restdemo")).get("scale"))),
        volumes=[
            VolumeMount(
                source=str(entry["source"]),
                target=str(entry["target"]),
                read_only=bool(entry.get("read_only")),
                nocopy=bool(_mapping(entry.get("volume")).get("nocopy")),
            )
            for entry in map(_mapping, spec.get("volumes") or [])
            if entry.get("type") == "volume" and entry.get("source")
        ],
        user=str(spec["user"]) if spec.get("user") is not None else None,
    )


# Listener rule priorities (ELBv2: 1-50000, one per rule): a host route's in the first half, so it is
# matched before any path route; each from its service's name, so adding or removing a route never
# renumbers another (AWS refuses a priority another rule holds).
HOST_PRIORITIES = range(1, 25000)
PATH_PRIORITIES = range(25000, 50000)


def route_priority(service: str, route: Route) -> int:
    band = HOST_PRIORITIES if route.hosts else PATH_PRIORITIES
    return band.start + int(hashlib.sha256(service.encode()).hexdigest(), 16) % len(band)


def _scale(scale: dict) -> Scale | None:
    if "max_replicas" not in scale:
        return None
    return Scale(
        max_replicas=int(scale["max_replicas"]),
        cpu_percent=scale.get("cpu_percent"),
        out_cooldown=_seconds(scale.get("out_cooldown")),
        in_cooldown=_seconds(scale.get("in_cooldown")),
    )


def _route(route: dict) -> Route:
    hosts = route.get("host") or []
    return Route(
        hosts=tuple([hosts] if isinstance(hosts, str) else hosts),
        path=(route.get("path") or "").rstrip("/") or None,
        health_check_path=route.get("health_check_path"),
    )
