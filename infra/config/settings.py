"""A stack's settings: read once from its config, validated into one typed object.

Every key lives in the project's namespace (`restdemo:<key>`, camelCase, declared in
Pulumi.yaml). Any invalid value stops the program before a resource is registered,
with a message that names the key, the value given and what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import json
import re
from dataclasses import dataclass, fields
from ipaddress import IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from infra.config.capacity import MAX_INSTANCE_TYPES, ami_architecture, architecture, image_platforms, type_problems
from infra.config.compose import MAX_COOLDOWN, ComposeApp, ComposeError, ComposeService, load_app, route_priority
from infra.config.database import (
    DATABASE_SECRET,
    POSTGRES_VERSIONS,
    SNAPSHOT,
    instance_class_problem,
)
from infra.config.docker_endpoint import LOOPBACK, registry_of
from infra.config.durations import parse_duration
from infra.config.image_contract import (
    HEALTH_INTERVAL_SECONDS,
    HEALTH_RETRIES,
    HEALTH_START_PERIOD_SECONDS,
    HEALTH_TIMEOUT_SECONDS,
    PREDEFINED_ARGS,
    RESTDEMO_CONTEXT,
    RESTDEMO_HEALTH_PATH,
    RESTDEMO_HEALTHCHECK,
    RESTDEMO_PORT,
    DockerfileError,
    HealthCheck,
    exposed_ports,
    image_healthcheck,
    stages,
    target_stage,
    unset_args,
)
from infra.config.names import AGENT_REPOSITORY
from restdemo_agent.contract import AWS_SECRET_ARN, DOCKER_TLS_PORT, READINESS_PORT, SWARM_MANAGEMENT_PORT

NAMESPACE = "restdemo"
# Where Pulumi.yaml is: build contexts are relative to it.
PROJECT_DIR = Path(__file__).resolve().parents[2]
APP_DRAIN_SECONDS = 10  # the app finishes requests in flight within 10 s of SIGTERM
# restdemo's last stage (app/Dockerfile), which its build is told by name.
RESTDEMO_TARGET = "runtime"
# Read whole to check it: a Dockerfile is a few KiB; a device or a huge file is refused unread.
DOCKERFILE_MAX_BYTES = 1 << 20
CLOUDWATCH_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


# A lifecycle hook's heartbeat timeout, which bounds a drain: 30-7200 s in AWS
# (PutLifecycleHook HeartbeatTimeout); a drain needs at least a minute.
DRAIN_TIMEOUT_RANGE = (60.0, 7200.0)
# An AMI id, or an image name: 3-128 characters of the alphabet EC2's CreateImage allows in a Name.
AMI_ID = re.compile(r"ami-[0-9a-f]{8}([0-9a-f]{9})?")
AMI_NAME = re.compile(r"[A-Za-z0-9()\[\] ./'@_-]{3,128}")


class SettingsError(ValueError):
    """Bad stack settings; the message lists every problem, one per line."""


def _duration(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("write a duration with its unit, like 15s or 1m30s")
    return parse_duration(value)


def _cidr(value: Any) -> IPv4Network:
    try:
        return IPv4Network(str(value), strict=True)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 CIDR block like 10.0.0.0/16 ({exc})") from None


def _retention(days: int) -> int:
    if days not in CLOUDWATCH_RETENTION_DAYS:
        raise ValueError(f"CloudWatch keeps logs for one of {', '.join(map(str, CLOUDWATCH_RETENTION_DAYS))} days")
    return days


def _manager_count(count: int) -> int:
    if count not in (1, 3, 5):
        raise ValueError("must be 1, 3 or 5: an odd number of managers keeps a Raft quorum through one (or two) losses")
    return count


def _node_ami(value: str) -> str:
    if value.startswith("ami-") and not AMI_ID.fullmatch(value):
        raise ValueError("an AMI id is ami- and 8 or 17 hexadecimal digits")
    if not AMI_NAME.fullmatch(value):
        raise ValueError("an AMI name has 3-128 letters, digits, spaces or ()[]./'@_-")
    return value


def _drain_timeout(seconds: float) -> float:
    low, high = DRAIN_TIMEOUT_RANGE
    if not low <= seconds <= high:
        raise ValueError(
            f"must be from {low:g}s to {high:g}s (1m to 2h): the heartbeat timeout a lifecycle hook allows"
        )
    return seconds


# How often the leader's agent reads the secrets kept in AWS: often enough that a rotation reaches the
# services in minutes, seldom enough that each secret costs a few reads an hour (ADR 0029).
SECRET_REFRESH_RANGE = (10.0, 3600.0)


def _secret_refresh(seconds: float) -> float:
    low, high = SECRET_REFRESH_RANGE
    if not low <= seconds <= high:
        raise ValueError(f"must be from {low:g}s to {high:g}s (10s to 1h)")
    return seconds


# What the managers' role policy may spend on awsSecrets' ARNs (each named twice: the read and the
# decrypt) and the web target groups' (a reclaimed spot worker leaves them), beside the rest of it
# (about 5,700 characters for a long stack name): IAM allows a role 10,240 characters of inline
# policy, whitespace aside.
KEPT_SECRETS_POLICY_BUDGET = 4550
# A target group's ARN at its longest, quoted, with a comma: the longest region's name, a 32-character
# group name and its 16-digit id (`arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>`).
TARGET_GROUP_ARN_CHARS = len("arn:aws:elasticloadbalancing:ap-southeast-2:123456789012:targetgroup/") + 32 + 17 + 3


def kept_secrets_policy_size(arns: list[str]) -> int:
    """Characters the ARNs take in the managers' policy: each once (`#KEY`s of one secret are one ARN),
    quoted, with a comma, in two statements."""
    return 2 * sum(len(arn) + 3 for arn in {arn.split("#")[0] for arn in arns})


def _aws_secret_entries(entries: list[str]) -> list[str]:
    names = []
    for number, entry in enumerate(entries, 1):
        name, equals, arn = entry.partition("=")
        if ":parameter/restdemo/" in arn:
            raise ValueError(
                f"entry {number}: /restdemo/ is the stack's own parameters (join tokens, the Docker API's key), "
                "never a service's secret; keep the app's under another path"
            )
        if not equals or not SECRET_NAME.fullmatch(name) or not AWS_SECRET_ARN.fullmatch(arn):
            raise ValueError(
                f"entry {number} is not NAME=ARN: a NAME of letters, digits, '.', '_' and '-', and the full ARN of a "
                "Secrets Manager secret (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>) or "
                "of an SSM parameter (arn:aws:ssm:<region>:<account>:parameter/<name>), with #KEY for one key of a "
                "JSON value"
            )
        if name in names:
            raise ValueError(f"{name} is given twice")
        names.append(name)
    return entries


# The watchdog's bound on a silent dockerd: long enough for a restart (seconds) or a busy engine.
ENGINE_DEAD_AFTER_RANGE = (60.0, 3600.0)


def _engine_dead_after(seconds: float) -> float:
    low, high = ENGINE_DEAD_AFTER_RANGE
    if not low <= seconds <= high:
        raise ValueError(f"must be from {low:g}s to {high:g}s (1m to 1h)")
    return seconds


@functools.cache
def aws_regions() -> frozenset[str]:
    """The regions botocore's endpoint data lists for EC2 in the `aws` partition: the program writes
    `arn:aws:` ARNs (China's and GovCloud's partitions would need theirs)."""
    import botocore.session

    return frozenset(botocore.session.get_session().get_available_regions("ec2", partition_name="aws"))


def _aws_region(value: str) -> str:
    """A region AWS has: it goes into user data, unit files and the AWS CLI's arguments."""
    if value not in aws_regions():
        close = difflib.get_close_matches(value, sorted(aws_regions()), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ValueError(f"is not an AWS region{hint} (the aws partition's, as botocore's endpoint data lists them)")
    return value


@functools.cache
def ec2_instance_types() -> tuple[str, ...]:
    """The EC2 instance types botocore's service model knows (its `InstanceType` enum)."""
    import botocore.session

    return tuple(botocore.session.get_session().get_service_model("ec2").shape_for("InstanceType").enum)


def _instance_type(value: str) -> str:
    if value.startswith("mac"):
        raise ValueError("is a Mac instance: it runs macOS on a dedicated host, not Amazon Linux")
    known = ec2_instance_types()
    if value not in known:
        close = difflib.get_close_matches(value, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ValueError(f"is not an EC2 instance type{hint} (the types botocore's EC2 model lists)")
    return value


def _database_version(value: str) -> str:
    if value not in POSTGRES_VERSIONS:
        raise ValueError(
            f"must be one of {', '.join(POSTGRES_VERSIONS)}: RDS for PostgreSQL's major versions in standard support"
        )
    return value


def _database_instance_class(value: str) -> str:
    problem = instance_class_problem(value, ec2_instance_types())
    if problem:
        raise ValueError(problem)
    return value


def _ca_bundle(path: str) -> str:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"must be a readable PEM file of CA certificates ({exc.__class__.__name__})") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError("must be a PEM file of CA certificates (no BEGIN CERTIFICATE in it)")
    return path


# What only a shell gives meaning to: split into exec-form words, it would be passed as arguments.
SHELL_SYNTAX = re.compile(r"[|&;<>()$`'\"\\*?~]")


def _health_check(value: Any) -> list[str]:
    """Docker's HEALTHCHECK forms (moby daemon/health.go getProbe): CMD with a program and its
    arguments, CMD-SHELL with one shell command, or [] for the image's own; NONE would leave a
    rollout nothing to wait for."""
    if not isinstance(value, list) or not all(isinstance(word, str) for word in value):
        raise ValueError(
            'must be a list such as ["CMD", "/bin/check", "--quick"], or [] for the image\'s own HEALTHCHECK'
        )
    if not value:
        return value
    if not all(word.strip() for word in value):
        raise ValueError("has an empty word; each is a program, an argument, or the shell command")
    kind = value[0]
    if kind == "NONE":
        raise ValueError("a service needs a health check: a rolling update waits for each new task to turn healthy")
    if kind == "CMD" and len(value) == 2 and len(value[1].split()) > 1:
        shell = json.dumps(["CMD-SHELL", value[1]])
        if SHELL_SYNTAX.search(value[1]):  # quotes, pipes, ||: only a shell reads them
            raise ValueError(f'the exec form runs a program named "{value[1]}"; write it in the shell form, {shell}')
        words = json.dumps(["CMD", *value[1].split()])
        raise ValueError(
            f'the exec form runs a program named "{value[1]}"; give each word on its own, {words}, '
            f"or the shell form, {shell}"
        )
    if kind == "CMD" and len(value) >= 2 or kind == "CMD-SHELL" and len(value) == 2:
        return value
    raise ValueError(
        "must start with CMD and name a program and its arguments, be CMD-SHELL and one shell command "
        "(the image needs a shell), or be [] for the image's own HEALTHCHECK"
    )


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# Names the program or Docker already uses: the agent's image repository, Docker's own networks
# (the service's overlay takes the service's name).
RESERVED_SERVICE_NAMES = (AGENT_REPOSITORY, "ingress", "bridge", "host", "none", "docker-gwbridge")


def _service_name(name: str) -> str:
    if name in RESERVED_SERVICE_NAMES:
        raise ValueError(f"is taken: the program or Docker names {', '.join(RESERVED_SERVICE_NAMES)} already")
    return name


def _name_only(entry: Any) -> str:
    """An environment entry as an error may show it: its name, never its value (which may be a
    secret someone put there against the advice)."""
    name, equals, _ = str(entry).partition("=")
    return f"{name}=..." if equals and ENV_NAME.fullmatch(name) else "(not NAME=value)"


def _named_entries(entries: list[str], reserved: dict[str, str]) -> list[str]:
    """NAME=value entries, each NAME once and none the program sets (reserved: name -> where from)."""
    names = []
    for number, entry in enumerate(entries, 1):
        name, equals, _ = entry.partition("=")
        if not equals or not ENV_NAME.fullmatch(name):
            raise ValueError(
                f"entry {number} ({_name_only(entry)}) is not NAME=value with a NAME of letters, digits and "
                "underscores, not starting with a digit"
            )
        if name in reserved:
            raise ValueError(f"{name} {reserved[name]}; leave it out")
        if name in names:
            raise ValueError(f"{name} is given twice")
        names.append(name)
    return entries


# What the program sets itself: the tasks' VER, and the build arguments infra/image/image.py passes.
RESERVED_ENVIRONMENT = {"VER": f"is set from {NAMESPACE}:version"}
PROGRAM_BUILD_ARGS = {
    "VERSION": f"is set by the program from {NAMESPACE}:version",
    "REVISION": "is set by the program (the commit)",
    "BUILD_BASE": f"is set from {NAMESPACE}:buildBase",
    "RUNTIME_BASE": f"is set from {NAMESPACE}:runtimeBase",
}


def _environment(entries: list[str]) -> list[str]:
    return _named_entries(entries, RESERVED_ENVIRONMENT)


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


# A Docker secret's name (swarmkit validateConfigOrSecretAnnotations), which a stack secret is named by.
SECRET_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?")
# Docker Hub's names, whose logins the docker provider files under registry-1.docker.io.
DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
# A registry as an image reference names it: host[:port], no scheme.
REGISTRY_HOST = re.compile(r"(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+|\d+(?:\.\d+){3})(?::\d{1,5})?")


def _secret_entries(entries: list[str]) -> list[str]:
    names = []
    for number, entry in enumerate(entries, 1):
        name, equals, value = entry.partition("=")
        # A value of only `=` is the tail of base64 pasted without a name, not a secret.
        if not equals or not SECRET_NAME.fullmatch(name) or not value.strip("="):
            raise ValueError(
                f"entry {number} is not NAME=value with a NAME of letters, digits, '.', '_' and '-', and a value"
            )
        if name in names:
            raise ValueError(f"{name} is given twice")
        names.append(name)
    return entries


def _registry_logins(entries: list[str]) -> list[str]:
    servers = []
    for number, entry in enumerate(entries, 1):
        server, equals, login = entry.partition("=")
        username, colon, password = login.partition(":")
        if not equals or not REGISTRY_HOST.fullmatch(server) or not username or not colon or not password:
            raise ValueError(
                f"entry {number} is not SERVER=USERNAME:PASSWORD with a "
                "SERVER such as "
                "ghcr.io or registry.example.com:5000 (no https://)"
            )
        if server in DOCKER_HUB:
            raise ValueError(
                f"entry {number}: Docker Hub logins are not yet supported (the provider looks them up under another "
                "name); use a public image or another registry"
            )
        if server in servers:
            raise ValueError(f"{server} is given twice")
        servers.append(server)
    return entries


def _build_arguments(entries: list[str]) -> list[str]:
    _named_entries(entries, PROGRAM_BUILD_ARGS)
    for entry in entries:
        name = entry.partition("=")[0]
        # BUILDKIT_SYNTAX would swap the Dockerfile's frontend for any image; the others are BuildKit's.
        if name.startswith("BUILDKIT_") or name in PREDEFINED_ARGS:
            raise ValueError(f"{name} is BuildKit's own (it configures the build, or BuildKit sets it); leave it out")
    return entries


# The groups docs/settings.md lists the settings in.
EVERY_STACK, SERVICE, IMAGE, LOCAL, AWS = (
    "Every stack",
    "Your service",
    "The image",
    "The local stack",
    "AWS stacks",
)


def setting(default: Any, description: str, *, group: str, allowed: str | None = None, **rules: Any) -> Any:
    """A setting's one declaration: its default, what it does and where it applies. Pulumi.yaml's
    `config:` block and docs/settings.md are generated from these (`make docs`). `allowed` says in
    words what a value with a `pattern` must look like: the error shows that, never the pattern."""
    extra = {"group": group} | ({"allowed": allowed} if allowed else {})
    if isinstance(default, list):
        return Field(default_factory=lambda: list(default), description=description, json_schema_extra=extra, **rules)
    return Field(default, description=description, json_schema_extra=extra, **rules)


Duration = Annotated[float, BeforeValidator(_duration)]
Cidr = Annotated[IPv4Network, BeforeValidator(_cidr)]
Port = Annotated[int, Field(ge=1, le=65535)]
IMAGE_REF_PATTERN = r"^[a-z0-9][a-z0-9._/:@-]*$"
SUBNET_ID_PATTERN = r"^subnet-[0-9a-f]{8,17}$"
ImageRef = Annotated[str, Field(pattern=IMAGE_REF_PATTERN, max_length=255)]
SubnetId = Annotated[str, Field(pattern=SUBNET_ID_PATTERN)]
# In words, for the patterns of types several settings share (a setting's own say `allowed`).
PATTERN_WORDS = {
    IMAGE_REF_PATTERN: "an image reference in lower case: [registry/]name[:tag][@sha256:digest]",
    SUBNET_ID_PATTERN: "a subnet id: subnet- and 8 or 17 hexadecimal digits",
}


@dataclass(frozen=True)
class BuildLabels:
    """How a build's problems name its parts: the stack's settings, or a Compose service's `build`."""

    context: str
    dockerfile: str
    target: str
    args: str


def build_problems(
    labels: BuildLabels, shown_context: str, context_path: Path, dockerfile: str, target: str, args_given: set[str]
) -> tuple[str | None, list[str]]:
    """A build's context, Dockerfile, target and ARGs: the Dockerfile's text once it can be built
    from (None before), and the problems, each naming the setting or Compose key it is about."""
    try:
        context = context_path.resolve()
        is_directory = context.is_dir()
    except OSError:  # a name too long for the file system
        is_directory = False
    if not is_directory:
        return None, [
            f"{labels.context}: no such directory in {PROJECT_DIR} (the directory your service's image is built from)"
        ]
    if context == PROJECT_DIR or context in PROJECT_DIR.parents:
        return None, [
            f"{labels.context}: holds the whole project (its .pulumi/ state and passphrase, .git, .venv) and would "
            "send it to the build; give your service's own directory"
        ]
    if context.is_relative_to(PROJECT_DIR):
        hidden = next((part for part in context.relative_to(PROJECT_DIR).parts if part.startswith(".")), None)
        if hidden or (context / ".pulumi").exists():
            where = hidden or f"{shown_context}/.pulumi"
            return None, [
                f"{labels.context}: is or holds {where}, a dot-directory of the repository (the project's state "
                "and passphrase in .pulumi/, .git, .venv, .tools) and would send it to the build; give your "
                "service's own directory"
            ]
    where = f"{shown_context}/{dockerfile}"
    path = context_path / dockerfile
    try:
        if not path.is_file():
            raise FileNotFoundError
        if path.stat().st_size > DOCKERFILE_MAX_BYTES:
            return None, [f"{labels.dockerfile}: {where} is over 1 MiB, which no Dockerfile needs"]
        text = path.read_text()
    except FileNotFoundError:
        return None, [f"{labels.dockerfile}: no such file in {shown_context}"]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{labels.dockerfile}: {where} cannot be read ({exc.__class__.__name__})"]
    if target_stage(text, target) is None:
        named = ", ".join(s.name for s in stages(text) if s.name) or "none"
        return None, [
            f"{labels.target}: {where} has no stage of that name (its named stages: {named}; empty builds the last)"
        ]
    return text, [
        f"{labels.args}: {where} declares ARG {name} with no default and nothing sets it (the build would see it "
        f"empty); set it in {labels.args} ({name}=...) or give it a default"
        for name in unset_args(text, target, args_given)
    ]


# The settings of the single service, and where a Compose file says the same of each of its services.
COMPOSE_REPLACES = {
    "replicas": "deploy.replicas",
    "build_context": "build.context",
    "dockerfile": "build.dockerfile",
    "build_target": "build.target",
    "build_args": "build.args",
    "container_port": "ports",
    "published_port": "ports",
    "health_check": "healthcheck",
    "service_environment": "environment",
}


# A route's target group is named `web-<service>-` and 7 random characters: 32 at most (ELBv2).
ROUTE_NAME_MAX = 20
# The BuildKit secret the Dockerfiles give pip (RUN --mount=type=secret,id=ca_bundle): buildCaBundle.
CA_BUNDLE_SECRET = "ca_bundle"
# ACM's default quota of names on one certificate.
CERTIFICATE_NAMES = 10
# ELBv2 quotas: five condition values per rule.
MAX_ROUTE_HOSTS = 5
# Docker's own ports on a node: the API (2375, 2376), swarm's management, gossip and overlay traffic.
# Ports of a node that are not a service's to publish: Docker's (its API, swarm's management, gossip and
# overlay traffic), the node agent's readiness (the admin NLB's check), SSH.
NODE_PORTS = {
    **dict.fromkeys((2375, DOCKER_TLS_PORT, SWARM_MANAGEMENT_PORT, 7946, 4789), "Docker's"),
    READINESS_PORT: "the node agent's",
    22: "SSH's",
}


def _rollout_seconds(settings: Settings, service: ComposeService) -> float | None:
    """Until swarm marks a Compose service's update completed, as `Settings.swarm_update_seconds` works it
    for the single service; None when its health check cannot be read (reported already)."""
    interval = service.healthcheck.interval if service.healthcheck and service.healthcheck.test else None
    if service.healthcheck and service.healthcheck.test and interval is None:
        interval = 30.0  # Docker's default
    if interval is None and service.build:
        try:
            found = image_healthcheck(
                (service.build.context / service.build.dockerfile).read_text(), service.build.target
            )
        except (OSError, UnicodeDecodeError, DockerfileError):
            return None
        interval = found.interval if found else None
    if interval is None:
        return None
    update = service.update
    parallelism = update.parallelism or settings.update_parallelism
    delay = settings.update_delay if update.delay is None else update.delay
    monitor = settings.update_monitor if update.monitor is None else update.monitor
    most = service.scale.max_replicas if service.scale else service.replicas
    batches = -(-most // parallelism)
    return batches * interval + batches * delay + monitor


# The labels the program writes and the node agents act on (restdemo_agent.contract): a Compose file's
# own would have the leader read a secret for a service that never named it.
PROGRAM_LABELS = "restdemo."


def _service_problems(service: ComposeService) -> list[str]:
    """A Compose service's health check and build, checked as the single service's settings are."""
    where = f"services.{service.name}"
    problems = [
        f"{where}.{kind}: {label} is the program's and its node agents' (restdemo.*: which secrets the leader "
        "reads for a service, whose a volume's directory is); name yours otherwise"
        for kind, labels in (("deploy.labels", service.service_labels), ("labels", service.labels))
        for label in sorted(labels)
        if label.startswith(PROGRAM_LABELS)
    ]
    if service.healthcheck and not service.healthcheck.test and not service.build:
        problems.append(
            f"{where}.healthcheck: a prebuilt image needs a test here (the program cannot read the image's own; "
            "a rolling update waits for each new task to turn healthy)"
        )
    elif service.healthcheck:
        try:
            _health_check(service.healthcheck.test)
        except ValueError as exc:
            problems.append(f"{where}.healthcheck.test {exc}")
    elif not service.build:
        problems.append(
            f"{where}: a prebuilt image needs a healthcheck in the Compose file (the program cannot read the "
            "image's own; a rolling update waits for each new task to turn healthy)"
        )
    if not service.build:
        return problems
    build = service.build
    shown = (
        str(build.context.relative_to(PROJECT_DIR)) if build.context.is_relative_to(PROJECT_DIR) else str(build.context)
    )
    labels = BuildLabels(
        context=f"{where}.build.context = {shown}",
        dockerfile=f"{where}.build.dockerfile = {build.dockerfile}",
        target=f"{where}.build.target = {build.target}",
        args=f"{where}.build.args",
    )
    text, arg_problems = build_problems(labels, shown, build.context, build.dockerfile, build.target, set(build.args))
    if text is not None and not (service.healthcheck and service.healthcheck.test):
        try:
            if image_healthcheck(text, build.target) is None:
                problems.append(
                    f"{where}: needs a healthcheck: the image built from {shown}/{build.dockerfile} has no "
                    "HEALTHCHECK of its own (a rolling update waits for each new task to turn healthy)"
                )
        except DockerfileError as exc:
            problems.append(f"{where}: {shown}/{build.dockerfile}: {exc}")
    if text is not None:
        exposed = exposed_ports(text, build.target)
        for port in service.ports:
            if exposed and port.target not in exposed and service.environment.get("PORT") != str(port.target):
                problems.append(
                    f"{where}.ports: {port.target}: the image built from {shown}/{build.dockerfile} EXPOSEs "
                    f"{', '.join(map(str, sorted(exposed)))} only; publish the port the service listens on "
                    f"(or set PORT={port.target} in its environment, when that is how it is told)"
                )
    return problems + arg_problems


class Settings(BaseModel):
    """Everything a stack can set. Defaults are the `local` stack's."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)

    # Where the swarm is.
    platform: Literal["local", "aws"] = setting(
        "local", "Where the swarm is: local (this machine's Docker engine) or aws.", group=EVERY_STACK
    )

    # The service (docs/ARCHITECTURE.md "SwarmService").
    version: str = setting(
        "v1",
        "The release deployed: the service's VER and the image's version label; a new one rolls the service.",
        group=EVERY_STACK,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        allowed="1-64 letters, digits, dots, underscores or hyphens, starting with a letter or digit",
    )
    replicas: int = setting(3, "Replicas of the service (1-100).", group=EVERY_STACK, ge=1, le=100)
    # Replicas that follow the load (ADR 0034): the program writes the bounds, the leader's agent the count.
    max_replicas: int = setting(
        0,
        "Replicas follow the load between replicas and this: the leader's node agent sets the count from "
        "the replicas' CPU (on AWS; the local stack has no agent and runs replicas). 0 keeps replicas "
        "fixed (0, or above replicas up to 100).",
        group=EVERY_STACK,
        ge=0,
        le=100,
    )
    scale_cpu_percent: int = setting(
        60,
        "With maxReplicas: the share of each replica's CPU limit (serviceCpuLimit) the count holds the "
        "replicas' average at (10-90).",
        group=EVERY_STACK,
        ge=10,
        le=90,
    )
    scale_out_cooldown: Duration = setting(
        60.0, "With maxReplicas: after a change, how long before the count grows again.", group=EVERY_STACK
    )
    scale_in_cooldown: Duration = setting(
        300.0, "With maxReplicas: after a change, how long before the count shrinks.", group=EVERY_STACK
    )
    # What fits a t3.small (2 vCPUs, 2 GiB) with three replicas and a rollout's extra one beside the
    # engine and the agent; the app itself needs about 40 MiB.
    service_memory_limit_mb: int = setting(
        256,
        "Memory each replica may use, in MiB; above it the task is killed (6-65536).",
        group=EVERY_STACK,
        ge=6,
        le=65536,
    )
    service_memory_reservation_mb: int = setting(
        64,
        "Memory each replica is placed with, in MiB: a node without it free runs no new replica (0-65536).",
        group=EVERY_STACK,
        ge=0,
        le=65536,
    )
    service_cpu_limit: float = setting(0.5, "CPUs each replica may use (0.01-64).", group=EVERY_STACK, ge=0.01, le=64)
    service_cpu_reservation: float = setting(
        0.1, "CPUs each replica is placed with; 0 none (0-64).", group=EVERY_STACK, ge=0, le=64
    )
    published_port: Port = setting(
        8000,
        "Port the swarm publishes the service on (1-65535); on AWS the load balancer's targets, their "
        "health check and the nodes' security group use it too.",
        group=EVERY_STACK,
    )
    update_parallelism: int = setting(
        1, "Tasks replaced at once in a rolling update (at least 1).", group=EVERY_STACK, ge=1
    )
    update_delay: Duration = setting(
        15.0, "Pause between batches of a rolling update (a Go duration, e.g. 15s).", group=EVERY_STACK
    )
    update_monitor: Duration = setting(
        30.0, "How long each updated task is watched for failure before the next batch.", group=EVERY_STACK
    )
    stop_grace_period: Duration = setting(
        15.0,
        "Time a task gets after SIGTERM to drain before SIGKILL; must exceed the app's 10 s drain.",
        group=EVERY_STACK,
    )
    converge_timeout: Duration = setting(
        600.0,
        "How long `pulumi up` waits for the service to converge before failing; at least a whole rollout.",
        group=EVERY_STACK,
    )

    # Your service: the image contract (docs/your-app.md); restdemo's own by default.
    service_name: Annotated[str, AfterValidator(_service_name)] = setting(
        "restdemo",
        "The swarm service's name, and its overlay network's; on it tasks.NAME resolves to the replicas. "
        "Renaming a deployed service replaces it.",
        group=SERVICE,
        pattern=r"^[a-z]([a-z0-9-]{0,51}[a-z0-9])?$",
        allowed="1-53 lower-case letters, digits or hyphens, starting with a letter, not ending with a hyphen",
    )
    compose_file: Annotated[list[str], BeforeValidator(_one_or_many)] = setting(
        [],
        "Compose files that describe the stack's services, relative to the repository; later ones overlay "
        "earlier ones, merged and interpolated as `docker stack deploy -c a -c b` does (docs/your-app.md). "
        "Empty: one service, from the settings of this group.",
        group=SERVICE,
    )
    secrets: Annotated[list[str], AfterValidator(_secret_entries)] = setting(
        [],
        "The stack's secrets, NAME=value, set with `pulumi config set --secret`: what a Compose file's "
        "`external: true` secrets are, by name.",
        group=SERVICE,
    )
    database: Literal["postgres"] | None = setting(
        None,
        "A database for the Compose file's services: postgres, which the services that mount the external "
        "secret `database` reach through files under /run/secrets (docs/your-app.md, The database): on "
        "AWS an RDS instance, locally a Postgres service with its password in secrets as database=...",
        group=SERVICE,
    )
    registry_logins: Annotated[list[str], AfterValidator(_registry_logins)] = setting(
        [],
        "Logins for the private registries a Compose file's prebuilt images come from, "
        "SERVER=USERNAME:PASSWORD, set with `pulumi config set --secret`.",
        group=SERVICE,
    )
    build_context: str = setting(
        RESTDEMO_CONTEXT,
        "The directory the service's image is built from, relative to the repository (or absolute); not "
        "the repository itself.",
        group=SERVICE,
        min_length=1,
    )
    dockerfile: str = setting("Dockerfile", "The Dockerfile, relative to buildContext.", group=SERVICE, min_length=1)
    build_target: str = setting(
        "",
        "The Dockerfile's stage the image is built to (FROM ... AS name); empty for its last stage.",
        group=SERVICE,
    )
    build_args: Annotated[list[str], AfterValidator(_build_arguments)] = setting(
        [],
        "Build arguments (--build-arg) for the Dockerfile's ARGs, as NAME=value entries. They stay in the "
        "image's history: no secrets. VERSION and REVISION are set by the program.",
        group=SERVICE,
    )
    container_port: Port = setting(RESTDEMO_PORT, "Port the service listens on inside its container.", group=SERVICE)
    health_check: Annotated[list[str], BeforeValidator(_health_check)] = setting(
        RESTDEMO_HEALTHCHECK,
        "The check Docker runs in each task, as a HEALTHCHECK's exec form: [CMD, program, args...] or "
        "[CMD-SHELL, command]; [] for the image's own HEALTHCHECK. A rollout waits for it.",
        group=SERVICE,
    )
    health_check_path: str = setting(
        RESTDEMO_HEALTH_PATH,
        "The path the load balancer checks on every node, answered 200 by a ready service; also what "
        "make up and make status ask.",
        group=SERVICE,
        pattern=r"^/\S{0,1023}$",
        allowed="a path starting with /, up to 1024 characters, without spaces",
    )
    service_environment: Annotated[list[str], AfterValidator(_environment)] = setting(
        [],
        "Environment of the service's tasks, as NAME=value entries; VER is set from version. Plain text "
        "in the stack file and the service spec: no secrets.",
        group=SERVICE,
    )

    # The image.
    build_base: ImageRef | None = setting(
        None, "Base image of the build stage (default python:3.11-bookworm, pinned by digest).", group=IMAGE
    )
    runtime_base: ImageRef | None = setting(
        None,
        "Base image of the collect stage, whose files the runtime image keeps "
        "(default python:3.11-slim-bookworm, pinned by digest).",
        group=IMAGE,
    )
    image_platform: str | None = setting(
        None,
        "The local stack: the platform to build the images for, linux/amd64 or linux/arm64 (default: the "
        "engine's own). AWS stacks build for every platform their nodes run; set, it must be theirs.",
        group=IMAGE,
        pattern=r"^linux/(amd64|arm64)$",
        allowed="linux/amd64 or linux/arm64",
    )
    # Only the deploy job writes the cache (the workflow passes read-write): whoever writes it
    # shapes the next build's layers.
    build_cache: Literal["off", "read", "read-write"] = setting(
        "read",
        "AWS stacks: the BuildKit cache in the repository's buildcache tag: off, read, or read-write "
        "(the deploy job's; whoever writes the cache shapes the next build, so laptops only read it).",
        group=IMAGE,
    )
    build_ca_bundle: Annotated[str, AfterValidator(_ca_bundle)] | None = setting(
        None,
        "Path of a PEM CA bundle on the deploying machine, for builds behind a TLS-intercepting proxy: "
        "given to pip as the BuildKit secret ca_bundle, never in a layer, argument or output.",
        group=IMAGE,
    )

    # The local stack: engine and registry.
    docker_host: str = setting(
        "unix:///var/run/docker.sock",
        "Docker API of the local engine.",
        group=LOCAL,
        pattern=r"^(unix|tcp|ssh|npipe)://",
        allowed="a Docker host URL: unix://, tcp://, ssh:// or npipe://",
    )
    registry_address: str | None = setting(
        None,
        "An existing registry (host:port) to push to instead of the one the local stack runs.",
        group=LOCAL,
        pattern=r"^[A-Za-z0-9.-]+(:\d{1,5})?$",
        allowed="host or host:port, such as 127.0.0.1:5000",
    )
    local_registry_port: Port = setting(5000, "Port on 127.0.0.1 of the registry the local stack runs.", group=LOCAL)
    local_registry_image: ImageRef = setting(
        "registry:2.8.3", "Image of the registry the local stack runs.", group=LOCAL
    )
    database_image: ImageRef = setting(
        "postgres:16.6-bookworm",
        "Image of the local stack's database (with database: postgres): the official Postgres image, or one "
        "that reads the same POSTGRES_* environment.",
        group=LOCAL,
    )

    # AWS stacks.
    aws_region: Annotated[str, AfterValidator(_aws_region)] | None = None  # from aws:region, not this namespace
    owner: str | None = setting(
        None, "Who owns the stack's AWS resources (the owner tag); required.", group=AWS, min_length=1, max_length=128
    )
    ecr_keep_images: int = setting(20, "Images the ECR lifecycle policy keeps.", group=AWS, ge=1, le=1000)
    manager_count: Annotated[int, AfterValidator(_manager_count)] = setting(1, "Swarm managers: 1, 3 or 5.", group=AWS)
    worker_count: int = setting(1, "Swarm workers, 0 to 100.", group=AWS, ge=0, le=100)
    vpc_cidr: Cidr = setting(IPv4Network("10.0.0.0/16"), "CIDR block of the VPC.", group=AWS)
    public_subnet_cidrs: list[Cidr] = setting(
        [], "One public subnet CIDR per availability zone, inside vpcCidr, up to 3; required.", group=AWS, max_length=3
    )
    private_subnet_cidrs: list[Cidr] = setting(
        [],
        "Private subnets for the nodes, one per public subnet; empty puts the nodes in the public subnets.",
        group=AWS,
        max_length=3,
    )
    admin_access: Literal["session-manager", "load-balancer"] = setting(
        "session-manager",
        "How the deployer reaches the swarm's Docker API: session-manager (a port forward to a manager, "
        "python -m ops.tunnel; nothing open) or load-balancer (the admin NLB, from adminCidrs).",
        group=AWS,
    )
    admin_cidrs: list[Cidr] = setting(
        [],
        "CIDR blocks allowed to reach the swarm's Docker API through the admin NLB over mutual TLS; "
        "required with adminAccess load-balancer.",
        group=AWS,
    )
    log_retention_days: Annotated[int, AfterValidator(_retention)] = setting(
        30, "Days CloudWatch keeps the stack's logs (one of CloudWatch's allowed values).", group=AWS
    )
    manager_instance_type: Annotated[str, AfterValidator(_instance_type)] = setting(
        "t3.small", "EC2 instance type of the managers.", group=AWS
    )
    worker_instance_type: Annotated[str, AfterValidator(_instance_type)] = setting(
        "t3.small", "EC2 instance type of the workers.", group=AWS
    )
    worker_instance_types: list[Annotated[str, AfterValidator(_instance_type)]] = setting(
        [],
        "More EC2 instance types the workers may run, beside workerInstanceType: the same size and "
        "architecture, more capacity pools for spot (up to 39; docs/operations.md, Spot workers).",
        group=AWS,
        max_length=MAX_INSTANCE_TYPES - 1,
    )
    worker_max_count: int = setting(
        0,
        "Workers the group may scale up to on what the services reserve (workerReservedTarget), from "
        "workerCount; 0 keeps workerCount workers (docs/operations.md, Workers that scale).",
        group=AWS,
        ge=0,
        le=100,
    )
    worker_reserved_target: int = setting(
        70,
        "With workerMaxCount: the percent of the workers' CPU or memory the services' reservations may take "
        "before a worker is added (10-90).",
        group=AWS,
        ge=10,
        le=90,
    )
    worker_on_demand_base: int = setting(
        0, "Workers that are always on-demand, the group's first (0 to workerCount).", group=AWS, ge=0, le=100
    )
    worker_on_demand_percent: int = setting(
        100,
        "Percent of the workers above workerOnDemandBase that are on-demand, the rest spot (0-100); 100 runs "
        "no spot. Managers are always on-demand.",
        group=AWS,
        ge=0,
        le=100,
    )
    node_volume_gb: int = setting(
        20, "Size of each node's encrypted gp3 root volume in GB (8-1000).", group=AWS, ge=8, le=1000
    )
    node_ami: Annotated[str, AfterValidator(_node_ami)] | None = setting(
        None,
        "The nodes' AMI, pinned per stack: an AMI id (ami-...) or an Amazon image name such as "
        "al2023-ami-2023.9.20251208.0-kernel-6.1-x86_64; required; changing it rolls every node.",
        group=AWS,
    )
    drain_timeout: Annotated[float, BeforeValidator(_duration), AfterValidator(_drain_timeout)] = setting(
        600.0, "How long a leaving node may take to drain before its lifecycle hook times out (1m-2h).", group=AWS
    )
    prune_interval: Duration = setting(
        0.0, "How often each node's agent prunes stopped containers and unused images; 0s never.", group=AWS
    )
    engine_dead_after: Annotated[float, BeforeValidator(_duration), AfterValidator(_engine_dead_after)] = setting(
        180.0,
        "How long a node's Docker engine may not answer before the node's watchdog has it replaced (1m-1h).",
        group=AWS,
    )
    aws_secrets: Annotated[list[str], AfterValidator(_aws_secret_entries)] = setting(
        [],
        "Secrets kept in AWS, NAME=ARN (a Secrets Manager secret's or an SSM parameter's; #KEY for one key of "
        "a JSON value): what a Compose file's `external: true` secrets are, by name, read by the leader's agent "
        "and rolled out to the services when they change (docs/your-app.md).",
        group=AWS,
    )
    secret_refresh: Annotated[float, BeforeValidator(_duration), AfterValidator(_secret_refresh)] = setting(
        180.0,
        "How often the leader's agent reads awsSecrets (10s-1h): a new value reaches the services within this "
        "and one rollout.",
        group=AWS,
    )
    database_version: Annotated[str, AfterValidator(_database_version)] = setting(
        "16",
        "The RDS for PostgreSQL major version (15-17: each forces TLS); RDS moves the minor version forward in the "
        "maintenance window. Raising it upgrades the database in place.",
        group=AWS,
    )
    database_instance_class: Annotated[str, AfterValidator(_database_instance_class)] = setting(
        "db.t4g.micro", "The database's DB instance class, such as db.t4g.micro or db.m7g.large.", group=AWS
    )
    database_storage_gb: int = setting(
        20, "The database's encrypted gp3 storage in GB (20-65536); it may only grow.", group=AWS, ge=20, le=65536
    )
    database_backup_days: int = setting(
        7,
        "Days RDS keeps the database's automated backups, to restore to any second in them (7-35).",
        group=AWS,
        ge=7,
        le=35,
    )
    database_multi_az: bool = setting(
        False, "A standby of the database in a second zone, which RDS fails over to (prod sets it).", group=AWS
    )
    database_snapshot: str | None = setting(
        None,
        "A DB snapshot (its identifier or a shared one's ARN) to make the database from: restores it as a new "
        "instance (docs/operations.md, Restoring the database).",
        group=AWS,
        pattern=f"^{SNAPSHOT.pattern}$",
        allowed="a DB snapshot identifier (letters, digits, hyphens, starting with a letter) or a snapshot ARN",
    )
    certificate_arn: str | None = setting(
        None,
        "Your own ACM certificate for an HTTPS listener on 443 (port 80 then redirects), instead of one made "
        "for domainName, which it must cover and which it needs.",
        group=AWS,
        pattern=r"^arn:aws:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$",
        allowed="an ACM certificate ARN: arn:aws:acm:<region>:<12-digit account>:certificate/<id>",
    )
    domain_name: str | None = setting(
        None,
        "Your service's name, such as app.example.com: HTTPS on 443 (80 redirects) and the url output on it; "
        "with hostedZoneId an ACM certificate for it validated there and an alias record for the ALB.",
        group=AWS,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        max_length=253,
        allowed="a DNS name in lower case, such as app.example.com (labels of 1-63 letters, digits or hyphens)",
    )
    hosted_zone_id: str | None = setting(
        None,
        "The Route 53 public hosted zone of domainName: its certificate's validation record and its alias "
        "record go there (needed unless certificateArn is given: then your DNS points at the load balancer).",
        group=AWS,
        pattern=r"^Z[A-Z0-9]{1,31}$",
        allowed="a Route 53 hosted zone id: Z and up to 31 capital letters or digits",
    )
    docker_api_ca_rotation: int = setting(
        0,
        "The step of the Docker API's CA rotation: raise it by one per up, after the managers' roll "
        "(docs/operations.md, Certificates); each odd step makes a new CA, each even one signs with it.",
        group=AWS,
        ge=0,
        le=1000,
    )
    deletion_protection: bool = setting(
        False,
        "Deletion protection on the load balancers and the database.",
        group=AWS,
    )
    alarm_email: str | None = setting(
        None,
        "An e-mail address subscribed to the stack's alarm topic (AWS mails it a link to confirm first).",
        group=AWS,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        allowed="an e-mail address, such as oncall@example.com",
    )
    alarm_topic_arn: str | None = setting(
        None,
        "An existing SNS topic for the alarms instead of the stack's own; its policy must let CloudWatch "
        "and EventBridge publish.",
        group=AWS,
        pattern=r"^arn:aws:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$",
        allowed="an SNS topic ARN: arn:aws:sns:<region>:<12-digit account>:<topic name>",
    )
    runbook_url: str | None = setting(
        None,
        "The address of docs/operations.md as your team reads it (this repository's file on your Git host); "
        "each page links its section there. Unset, a page names the section instead of a link.",
        group=AWS,
        # No quote, backslash or angle bracket: the address goes into the EventBridge rule's input
        # template, a JSON string in which <name> is a placeholder.
        pattern=r"^https://[^\s#\"\\<>]+$",
        max_length=512,
        allowed="an https:// address without a #fragment, quotes, backslashes or angle brackets, such as "
        "https://github.com/your-org/your-repo/blob/main/docs/operations.md",
    )
    existing_vpc_id: str | None = setting(
        None,
        "Use this VPC instead of creating one; then give existingPublicSubnetIds and existingNodeSubnetIds.",
        group=AWS,
        pattern=r"^vpc-[0-9a-f]{8,17}$",
        allowed="a VPC id: vpc- and 8 or 17 hexadecimal digits",
    )
    existing_public_subnet_ids: list[SubnetId] = setting(
        [], "Public subnets of existingVpcId for the load balancers, in 2 or 3 zones.", group=AWS, max_length=3
    )
    existing_node_subnet_ids: list[SubnetId] = setting(
        [], "Subnets of existingVpcId for the nodes, in 2 or 3 zones.", group=AWS, max_length=3
    )

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.compose_file:
            problems = self._compose_problems()
            image_known = False  # each service's rollout is its own (docs/your-app.md)
        else:
            # The image's first: a rollout's time depends on its health check.
            problems = self._image_problems()
            image_known = not problems
        if self.database and not self.compose_file:
            problems.append(
                f"{key('database')} is for a Compose file's services, which mount it as the secret "
                f"{DATABASE_SECRET}; the single service mounts none (set {key('compose_file')})"
            )
        if self.database_snapshot and not self.database:
            problems.append(f"{key('database_snapshot')} restores the database; set {key('database')} too")
        if self.aws_secrets and not self.compose_file:
            problems.append(
                f"{key('aws_secrets')} names a Compose file's external secrets; the single service mounts none "
                f"(set {key('compose_file')})"
            )
        if self.published_port in NODE_PORTS:
            problems.append(
                f"{key('published_port')} = {self.published_port}: is {NODE_PORTS[self.published_port]} on every "
                "node; publish another"
            )
        if self.stop_grace_period <= APP_DRAIN_SECONDS:
            problems.append(
                f"{key('stop_grace_period')} = {self.stop_grace_period:g}s: must be above {APP_DRAIN_SECONDS}s, "
                "the time the app may take to drain on SIGTERM"
            )
        if self.max_replicas and self.max_replicas <= self.replicas:
            problems.append(
                f"{key('max_replicas')} = {self.max_replicas}: must be above {key('replicas')} = {self.replicas} "
                "(the fewest), or 0 to keep the count fixed"
            )
        for cooldown in ("scale_out_cooldown", "scale_in_cooldown"):
            if getattr(self, cooldown) > MAX_COOLDOWN:
                problems.append(f"{key(cooldown)} = {getattr(self, cooldown):g}s: at most 24h")
        if image_known and self.converge_timeout < self.swarm_update_seconds():
            problems.append(
                f"{key('converge_timeout')} = {self.converge_timeout:g}s: a rollout of {self.most_replicas} replicas "
                f"takes at least {self.swarm_update_seconds():g}s with these settings; allow at least that"
            )
        for reservation, limit in (
            ("service_memory_reservation_mb", "service_memory_limit_mb"),
            ("service_cpu_reservation", "service_cpu_limit"),
        ):
            if getattr(self, reservation) > getattr(self, limit):
                problems.append(
                    f"{key(reservation)} = {getattr(self, reservation):g}: must not be above "
                    f"{key(limit)} = {getattr(self, limit):g}"
                )
        if self.platform == "aws":
            problems += self._aws_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _compose_problems(self) -> list[str]:
        """The Compose files, read as `docker stack deploy` would, and what the stack gives them."""
        problems = [
            f"{key(name)} describes the single service; with {key('compose_file')} set {instead} in the Compose "
            "file's services instead"
            for name, instead in COMPOSE_REPLACES.items()
            if getattr(self, name) != Settings.model_fields[name].get_default(call_default_factory=True)
        ]
        try:
            app = load_app([PROJECT_DIR / path for path in self.compose_file])
        except ComposeError as exc:
            return problems + [f"{key('compose_file')}: {line}" for line in exc.problems]
        stack_secrets = {entry.partition("=")[0] for entry in self.secrets}
        provided = stack_secrets | set(self.aws_secret_arns())
        if self.database and self.platform == "aws":
            provided.add(DATABASE_SECRET)  # RDS keeps its credentials
        for name, source in app.secrets.items():
            if source.file is None and source.name not in provided:
                value = "$(openssl rand -hex 24)" if self.database and source.name == DATABASE_SECRET else "..."
                problems.append(
                    f"{key('compose_file')}: secrets.{name} is external, but {key('secrets')} has no {source.name}; "
                    f"add it: pulumi config set --secret --path '{key('secrets')}[{len(self.secrets)}]' "
                    f'"{source.name}={value}"'
                    + (f" (or keep it in AWS: {key('aws_secrets')})" if self.platform == "aws" else "")
                )
        problems += self._aws_secret_problems(app)
        problems += self._database_problems(app)
        for service in app.services:
            problems += [f"{key('compose_file')}: {line}" for line in _service_problems(service)]
        problems += [f"{key('compose_file')}: {line}" for line in self._fit_problems(app)]
        if self.platform == "aws":
            problems += [f"{key('compose_file')}: {line}" for line in self._route_problems(app)]
        object.__setattr__(self, "_app", app)
        return problems

    def aws_secret_arns(self) -> dict[str, str]:
        """awsSecrets by name: each one's ARN, `#KEY` included when given."""
        return dict(entry.split("=", 1) for entry in self.aws_secrets)

    def aws_kept(self, app: ComposeApp) -> set[str]:
        """The Compose file's secrets (by their key in it) whose value is kept in AWS: awsSecrets', and on
        AWS the database's (RDS keeps its credentials)."""
        kept = set(self.aws_secret_arns())
        if self.platform == "aws" and self.database:
            kept.add(DATABASE_SECRET)
        return {name for name, source in app.secrets.items() if source.file is None and source.name in kept}

    def database_key(self, app: ComposeApp) -> str | None:
        """The Compose file's key of the database's secret (None: no database, or the file names none)."""
        if not self.database:
            return None
        return next(
            (k for k, source in app.secrets.items() if source.file is None and source.name == DATABASE_SECRET), None
        )

    def _database_problems(self, app: ComposeApp) -> list[str]:
        """The database against the Compose file and the other secrets' settings: some service mounts it;
        on AWS its credentials are RDS's, in no other setting; locally its service and volume take the
        name `database`, which the file's own may not."""
        if not self.database:
            return []
        database_key = self.database_key(app)
        if database_key is None or not any(m.source == database_key for s in app.services for m in s.secrets):
            return [
                f"{key('database')}: no service of the Compose file mounts the external secret {DATABASE_SECRET}; "
                f"declare it (secrets: {{{DATABASE_SECRET}: {{external: true}}}}) and name it in the services' "
                "secrets that use the database"
            ]
        problems = []
        if self.platform == "aws":
            for setting_name, names in (
                ("secrets", {entry.partition("=")[0] for entry in self.secrets}),
                ("aws_secrets", set(self.aws_secret_arns())),
            ):
                if DATABASE_SECRET in names:
                    problems.append(
                        f"{key(setting_name)}: {DATABASE_SECRET} is the database's, whose credentials RDS keeps on "
                        "AWS; remove it"
                    )
        else:
            taken = [f"services.{DATABASE_SECRET}"] if any(s.name == DATABASE_SECRET for s in app.services) else []
            taken += [f"volumes.{DATABASE_SECRET}"] if DATABASE_SECRET in app.volumes else []
            problems += [
                f"{key('compose_file')}: {where}: the local stack's database service and volume are named "
                f"{DATABASE_SECRET}; rename yours"
                for where in taken
            ]
        for service in app.services:
            if database_key in (service.build.secrets if service.build else {}).values():
                problems.append(
                    f"{key('compose_file')}: services.{service.name}.build.secrets: {database_key} is the database, "
                    "which a build cannot reach"
                )
        return problems

    def _aws_secret_problems(self, app: ComposeApp) -> list[str]:
        """awsSecrets against the Compose file: each one an external secret of it, in the stack's region,
        not also a stack secret; a service takes its secrets all from AWS or none (the agent writes the
        whole list of such a service's references, ADR 0029); a build reads none (the program never does)."""
        problems = []
        external = {source.name for source in app.secrets.values() if source.file is None}
        stack_secrets = {entry.partition("=")[0] for entry in self.secrets}
        for name, arn in self.aws_secret_arns().items():
            region = AWS_SECRET_ARN.fullmatch(arn)["region"]
            if name not in external:
                problems.append(f"{key('aws_secrets')}: {name} is no external secret of the Compose file; remove it")
            if name in stack_secrets:
                problems.append(f"{key('aws_secrets')}: {name} is in {key('secrets')} too; keep it in one of them")
            if self.aws_region and region != self.aws_region:
                problems.append(
                    f"{key('aws_secrets')}: {name} is in {region}, not the stack's aws:region {self.aws_region}, where "
                    "the managers read it"
                )
        routes = len([service for service in app.services if service.ports])
        size = kept_secrets_policy_size(list(self.aws_secret_arns().values())) + routes * TARGET_GROUP_ARN_CHARS
        if size > KEPT_SECRETS_POLICY_BUDGET:
            problems.append(
                f"{key('aws_secrets')} and the {routes} web routes: their ARNs take {size} characters of the "
                f"managers' role policy, over the {KEPT_SECRETS_POLICY_BUDGET} it leaves them (IAM's limit is "
                "10240); keep several values in one JSON secret and name each with #KEY, or route fewer services"
            )
        kept = self.aws_kept(app)
        for service in app.services:
            mounted = [m.source for m in service.secrets]
            from_aws = [name for name in mounted if name in kept]
            others = [name for name in mounted if name not in kept]
            if from_aws and others:
                problems.append(
                    f"{key('compose_file')}: services.{service.name}.secrets: {', '.join(from_aws)} kept in AWS "
                    f"({key('aws_secrets')}), {', '.join(others)} not; a service takes all its secrets from AWS or "
                    "none (its node agent writes all of its references: docs/adr/0029)"
                )
            for source in sorted(set((service.build.secrets if service.build else {}).values()) & kept):
                problems.append(
                    f"{key('compose_file')}: services.{service.name}.build.secrets: {source} is kept in AWS, which "
                    "the program never reads; a build takes secrets from files or restdemo:secrets"
                )
        return problems

    def _route_problems(self, app: ComposeApp) -> list[str]:
        """On AWS every published port is reached through the load balancer (docs/your-app.md, Routes):
        one HTTP port per service, by host name or path prefix, and one service at most as the default."""
        problems = []
        web = [s for s in app.services if s.ports]
        if not web:
            problems.append(
                "no service publishes a port: on AWS a Compose stack is reached through its load balancer, which "
                "needs one"
            )
        for service in app.services:
            if service.image and not service.build and registry_of(service.image).split(":")[0] in LOOPBACK:
                problems.append(
                    f"services.{service.name}.image: {service.image} is in a registry on this machine's loopback, "
                    "which the nodes cannot reach; push it to a registry they can"
                )
        for service in web:
            where = f"services.{service.name}"
            if len(service.name) > ROUTE_NAME_MAX:
                problems.append(
                    f"services.{service.name}: on AWS a service that publishes a port has a name of "
                    f"{ROUTE_NAME_MAX} characters at most (its target group's name is made from it)"
                )
            if len(service.ports) > 1 or service.ports[0].protocol != "tcp":
                problems.append(
                    f"{where}.ports: on AWS a service publishes one tcp port, which the load balancer sends HTTP to"
                )
            if len(service.route.hosts) > MAX_ROUTE_HOSTS:
                problems.append(
                    f"{where}.x-restdemo.host: {len(service.route.hosts)} names; a load balancer rule matches "
                    f"{MAX_ROUTE_HOSTS} at most"
                )
        for service in app.services:
            if not service.ports and (service.route.hosts or service.route.path):
                problems.append(f"services.{service.name}.x-restdemo: a route for a service that publishes no port")
        names = {self.domain_name, *(host for s in web for host in s.route.hosts)} - {None}
        if self.domain_name and not self.certificate_arn and len(names) > CERTIFICATE_NAMES:
            problems.append(
                f"{len(names)} names for the stack's certificate ({key('domain_name')} and the routes' hosts); ACM "
                f"takes {CERTIFICATE_NAMES} on one certificate by default"
            )
        defaults = [s.name for s in web if not (s.route.hosts or s.route.path)]
        if len(defaults) > 1:
            problems.append(
                f"services {', '.join(defaults)} publish ports with no route: on AWS one at most is the load "
                "balancer's default; give the others x-restdemo.host or x-restdemo.path"
            )
        claimed: dict[str, str] = {}
        for service in web:
            for claim in [*service.route.hosts, *([service.route.path] if service.route.path else [])]:
                if claim in claimed:
                    problems.append(f"services.{service.name}.x-restdemo: {claim} is services.{claimed[claim]}'s")
                claimed[claim] = service.name
        paths = sorted((s.route.path, s.name) for s in web if s.route.path)
        for (outer, owner), (inner, name) in itertools.combinations(paths, 2):
            if inner.startswith(outer + "/"):
                problems.append(
                    f"services.{name}.x-restdemo.path: {inner} is below services.{owner}'s {outer}, which would "
                    "answer it; give paths that do not nest"
                )
        priorities: dict[int, str] = {}
        for service in web:
            if service.route.hosts or service.route.path:
                priority = route_priority(service.name, service.route)
                if priority in priorities:
                    problems.append(
                        f"services.{service.name}: its route's priority ({priority}, from its name) is "
                        f"services.{priorities[priority]}'s too; rename one of them"
                    )
                priorities[priority] = service.name
        return problems

    def _fit_problems(self, app: ComposeApp) -> list[str]:
        """What the stack's settings make of each Compose service: names within swarm's limits, ports
        no one else on the engine holds, resources and build arguments as the single service's are
        held to, and a rollout `pulumi up` waits for to the end."""
        problems = []
        names = [
            *((f"services.{s.name}", s.name, 63) for s in app.services),
            *((f"networks.{n}", n, 63) for n in app.networks),
            # secrets and configs carry `_` and 12 hexadecimal digits of their content's hash
            *((f"{kind}.{k}", f"{k}_{'0' * 12}", 64) for kind in ("secrets", "configs") for k in getattr(app, kind)),
        ]
        for where, name, limit in names:
            full = f"{self.service_name}_{name}"
            if len(full) > limit:
                problems.append(
                    f"{where}: its name in the swarm, {self.service_name}_{name.removesuffix('_' + '0' * 12)}..., "
                    f"would be {len(full)} characters, over swarm's {limit}; shorten it or {key('service_name')}"
                )
        taken = {self.local_registry_port: f"the local registry's ({key('local_registry_port')})", **NODE_PORTS}
        for service in app.services:
            where = f"services.{service.name}"
            for port in service.ports:
                if port.published in taken:
                    problems.append(f"{where}.ports: {port.published} is {taken[port.published]}; publish another")
            if service.build and CA_BUNDLE_SECRET in service.build.secrets:
                problems.append(
                    f"{where}.build.secrets: {CA_BUNDLE_SECRET} is the program's own (restdemo:buildCaBundle); "
                    "give the secret another id"
                )
            for name in service.build.args if service.build else {}:
                if name in PROGRAM_BUILD_ARGS or name.startswith("BUILDKIT_") or name in PREDEFINED_ARGS:
                    problems.append(
                        f"{where}.build.args: {name} is set by the program or BuildKit itself; leave it out"
                    )
            for what, reservation, limit, default in (
                ("memory", service.memory_reservation, service.memory_limit, self.service_memory_limit_mb << 20),
                ("cpus", service.cpu_reservation, service.cpu_limit, self.service_cpu_limit),
            ):
                if reservation is not None and reservation > (limit if limit is not None else default):
                    whose = "its limit" if limit is not None else f"the stack's limit ({default:g}) where it gives none"
                    problems.append(f"{where}.deploy.resources.reservations.{what}: above {whose}")
            for section, rollout in (("update_config", service.update), ("rollback_config", service.rollback)):
                ratio = rollout.max_failure_ratio
                if ratio is not None and round(ratio, 1) != ratio:
                    problems.append(
                        f"{where}.deploy.{section}.max_failure_ratio = {ratio:g}: in tenths (0.1, 0.2, ...); the "
                        "provider reads it back in tenths, and would update the service on every up"
                    )
            rollout = _rollout_seconds(self, service)
            if rollout is not None and rollout > self.converge_timeout:
                problems.append(
                    f"{key('converge_timeout')} = {self.converge_timeout:g}s: services.{service.name}'s rollout takes "
                    f"at least {rollout:g}s with its update_config and health check; allow at least that"
                )
        return problems

    @property
    def app(self) -> ComposeApp | None:
        """The stack's Compose services, read and checked with the settings; None for the single service."""
        return getattr(self, "_app", None)

    def _aws_problems(self) -> list[str]:
        problems = []
        for field, what in (
            ("aws_region", "aws:region, the AWS region to deploy to"),
            ("owner", f"{key('owner')}, who owns the stack's resources (a tag on each)"),
            (
                "node_ami",
                f"{key('node_ami')}, the nodes' AMI pinned per stack: an AMI id (ami-...) or an Amazon image "
                "name such as al2023-ami-2023.9.20251208.0-kernel-6.1-x86_64",
            ),
        ):
            if not getattr(self, field):
                problems.append(f"platform aws needs {what}")
        if self.certificate_arn and not self.domain_name:
            problems.append(
                f"{key('certificate_arn')} needs {key('domain_name')}, the name your certificate covers: the url "
                "output and make up/status use it (the load balancer's own name is not on your certificate); add "
                f"{key('hosted_zone_id')} for an alias record, or point your DNS at the loadBalancerDnsName output"
            )
        if self.domain_name and not self.certificate_arn and not self.hosted_zone_id:
            problems.append(
                f"{key('domain_name')} needs {key('hosted_zone_id')}, the Route 53 zone its certificate is validated "
                f"in and its alias record made in (or your own {key('certificate_arn')} for it)"
            )
        if self.hosted_zone_id and not self.domain_name:
            problems.append(f"{key('hosted_zone_id')} goes with {key('domain_name')}: the name to make the records for")
        if self.admin_access == "load-balancer" and not self.admin_cidrs:
            problems.append(
                f"{key('admin_access')} = load-balancer needs {key('admin_cidrs')}: the CIDR blocks allowed to reach "
                "the swarm's Docker API (or session-manager: through a port-forwarding session, no CIDR open)"
            )
        subnets = [("public", c) for c in self.public_subnet_cidrs] + [
            ("private", c) for c in self.private_subnet_cidrs
        ]
        if not self.public_subnet_cidrs:
            problems.append(f"platform aws needs {key('public_subnet_cidrs')}: one CIDR block per availability zone")
        for kind, cidr in subnets:
            if not cidr.subnet_of(self.vpc_cidr):
                problems.append(f"{kind} subnet {cidr} is not inside {key('vpc_cidr')} = {self.vpc_cidr}")
        for i, (kind_a, a) in enumerate(subnets):
            for kind_b, b in subnets[i + 1 :]:
                if a.overlaps(b):
                    problems.append(f"{kind_a} subnet {a} overlaps {kind_b} subnet {b}; subnets must not overlap")
        problems += self._capacity_problems()
        if self.private_subnet_cidrs and len(self.private_subnet_cidrs) != len(self.public_subnet_cidrs):
            problems.append(
                f"{key('private_subnet_cidrs')} needs one block per public subnet "
                f"({len(self.public_subnet_cidrs)}), got {len(self.private_subnet_cidrs)}"
            )
        return problems

    def _capacity_problems(self) -> list[str]:
        problems = type_problems(
            self.worker_instance_type,
            self.worker_instance_types,
            primary_setting=key("worker_instance_type"),
            more_setting=key("worker_instance_types"),
        )
        if self.worker_max_count and self.worker_max_count <= self.worker_count:
            problems.append(
                f"{key('worker_max_count')} ({self.worker_max_count}) must be more than {key('worker_count')} "
                f"({self.worker_count}), the fewest workers the group keeps; 0 for a fixed count"
            )
        if self.worker_on_demand_base > self.worker_count:
            problems.append(
                f"{key('worker_on_demand_base')} ({self.worker_on_demand_base}) is more than {key('worker_count')} "
                f"({self.worker_count}): at most every worker is on-demand"
            )
        return problems + self._architecture_problems()

    def _architecture_problems(self) -> list[str]:
        """One AMI id serves one architecture; the images are built for the nodes' (ADR 0033)."""
        problems = []
        groups = {
            key(name): (instance_type, architecture(instance_type))
            for name, instance_type in (
                ("manager_instance_type", self.manager_instance_type),
                ("worker_instance_type", self.worker_instance_type),
            )
        }
        described = " and ".join(f"{name} {kind} is {arch}" for name, (kind, arch) in groups.items())
        if self.node_ami and ami_architecture(self.node_ami) is None and len({a for _, a in groups.values()}) > 1:
            problems.append(
                f"{key('node_ami')} {self.node_ami} is one image of one architecture, but {described}: name an "
                "Amazon Linux release (al2023-ami-...-x86_64), whose image of each architecture each group "
                "takes, or give both groups one architecture"
            )
        platforms = image_platforms(self)
        if self.image_platform and platforms != [self.image_platform]:
            problems.append(
                f"{key('image_platform')} {self.image_platform}: the nodes run {' and '.join(platforms)} ({described});"
                " leave it unset on AWS stacks, where the images are built for every platform the nodes run"
            )
        return problems

    @property
    def context_path(self) -> Path:
        return PROJECT_DIR / self.build_context

    @property
    def dockerfile_path(self) -> Path:
        return self.context_path / self.dockerfile

    def _image_problems(self) -> list[str]:
        """The build context, Dockerfile, target, and the health check that goes with them."""
        labels = BuildLabels(
            context=f"{key('build_context')} = {self.build_context}",
            dockerfile=f"{key('dockerfile')} = {self.dockerfile}",
            target=f"{key('build_target')} = {self.build_target}",
            args=key("build_args"),
        )
        text, arg_problems = build_problems(
            labels,
            self.build_context,
            self.context_path,
            self.dockerfile,
            self.build_target,
            self._build_arguments_given(),
        )
        if text is None:
            return arg_problems
        where = f"{self.build_context}/{self.dockerfile}"
        problems = []
        if self.health_check == RESTDEMO_HEALTHCHECK and self.build_context != RESTDEMO_CONTEXT:
            problems.append(
                f"{key('health_check')} is restdemo's own (restdemo-cli), but {key('build_context')} = "
                f"{self.build_context}: give your service's check, or [] for its image's HEALTHCHECK"
            )
        elif not self.health_check:
            try:
                image_check = image_healthcheck(text, self.build_target)
            except DockerfileError as exc:
                problems.append(f"{key('health_check')} = []: {where}: {exc}")
            else:
                if image_check is None:
                    problems.append(
                        f"{key('health_check')} = []: the image built from {where} has no HEALTHCHECK of its own "
                        'to use; add one to the Dockerfile, or give a command such as ["CMD", "/bin/check"]'
                    )
        exposed = exposed_ports(text, self.build_target)
        # PORT in the environment (restdemo's, and many frameworks') says where the service listens.
        port_set = f"PORT={self.container_port}" in self.service_environment
        if exposed and self.container_port not in exposed and not port_set:
            problems.append(
                f"{key('container_port')} = {self.container_port}: the image built from {where} EXPOSEs "
                f"{', '.join(map(str, sorted(exposed)))} only; set containerPort to the port your service listens on "
                f"(or PORT={self.container_port} in {key('service_environment')}, when that is how it is told)"
            )
        return problems + arg_problems

    def _build_arguments_given(self) -> set[str]:
        """The build arguments a build gets: the stack's and the program's own (infra/image/image.py)."""
        bases = {"BUILD_BASE": self.build_base, "RUNTIME_BASE": self.runtime_base}
        stacks = (entry.partition("=")[0] for entry in self.build_args)
        return {*PROGRAM_BUILD_ARGS, *stacks} - {name for name, base in bases.items() if not base}

    @property
    def image_target(self) -> str:
        """The stage the build is told: buildTarget; empty leaves it to BuildKit (the last stage), but
        for restdemo's own context, whose build was always told `runtime` (a deployed stack's image
        and tag stay as they were)."""
        if not self.build_target and self.build_context == RESTDEMO_CONTEXT:
            return RESTDEMO_TARGET
        return self.build_target

    def container_healthcheck(self) -> HealthCheck:
        """The check the service spec states: `healthCheck` at the contract's timings, or for [] the
        image's own HEALTHCHECK as its Dockerfile writes it."""
        if self.health_check:
            return HealthCheck(
                test=self.health_check,
                interval=HEALTH_INTERVAL_SECONDS,
                timeout=HEALTH_TIMEOUT_SECONDS,
                start_period=HEALTH_START_PERIOD_SECONDS,
                retries=HEALTH_RETRIES,
            )
        image_check = image_healthcheck(self.dockerfile_path.read_text(), self.build_target)
        assert image_check is not None, "validated: the image has a HEALTHCHECK"
        return image_check

    def time_to_healthy(self) -> float:
        """Until a new task answers its first probe: one interval of its check."""
        return self.container_healthcheck().interval

    @property
    def private_nodes(self) -> bool:
        return bool(self.private_subnet_cidrs)

    @property
    def most_replicas(self) -> int:
        """The most replicas the service runs: its maximum when the count follows the load."""
        return max(self.replicas, self.max_replicas)

    def _batches(self) -> int:
        return -(-self.most_replicas // self.update_parallelism)

    def rollout_lower_bound(self) -> float:
        """Until every replica runs the new version: batches x time-to-healthy + (batches - 1) x update delay."""
        return self._batches() * self.time_to_healthy() + (self._batches() - 1) * self.update_delay

    def swarm_update_seconds(self) -> float:
        """Until swarm marks the update completed (what convergence waits for): swarm also waits the
        delay after the last batch, then watches that batch for the monitor window."""
        return self.rollout_lower_bound() + self.update_delay + self.update_monitor


@dataclass(frozen=True)
class SettingsView:
    """A component's slice of the settings: some of `Settings`' attributes, under their names and
    types (tests/infra/config/test_views.py checks both), copied from the one validated object. A
    component takes its view, so what it reads is in its signature."""

    @classmethod
    def of(cls, settings: Settings | SettingsView) -> Self:
        return cls(**{view_field.name: getattr(settings, view_field.name) for view_field in fields(cls)})


def key(field: str) -> str:
    return f"{NAMESPACE}:{to_camel(field)}"


def _decode(raw: Any) -> Any:
    """Pulumi hands config values over as strings; lists arrive as JSON text."""
    if isinstance(raw, str) and raw[:1] in "[{":
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _describe(error: dict) -> str:
    location = error["loc"]
    if not location:
        return error["msg"].removeprefix("Value error, ")
    name = f"{NAMESPACE}:{location[0]}"
    if error["type"] == "extra_forbidden":
        known = [to_camel(f) for f in Settings.model_fields if f != "aws_region"]
        close = difflib.get_close_matches(str(location[0]), known, n=1)
        where = "the settings are in docs/settings.md"
        hint = f"did you mean {NAMESPACE}:{close[0]}? ({where})" if close else where
        return f"{name} is not a setting of this project; {hint}"
    if error["type"] == "missing":
        return f"{name} is required"
    name = _shown_as(str(location[0]))
    where = name + "".join(f"[{part}]" for part in location[1:])
    message = _in_words(error, str(location[0]))
    given = error["input"]
    if location[0] in map(to_camel, ALWAYS_SECRET):  # not a word of a secret setting, nor where its entries fail
        return f"{name}: {message}"
    if location[0] in NAMED_ENTRIES:  # names, never values
        if not isinstance(given, (list, str)):
            return f"{where}: {message}"
        given = [_name_only(e) for e in given] if isinstance(given, list) else _name_only(given)
    return f"{where} = {json.dumps(given, default=str)}: {message}"


def _shown_as(alias: str) -> str:
    """A setting's key as the stack file writes it: the region is read from the aws provider's namespace."""
    return "aws:region" if alias == "awsRegion" else f"{NAMESPACE}:{alias}"


def _in_words(error: dict, alias: str) -> str:
    """What a value must be, in this project's words: pydantic's own are for programmers."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        return f"must be {_allowed(alias, context['pattern'])}"
    if kind == "literal_error":
        return f"must be {context['expected'].replace(chr(39), '')}"
    words = {
        "greater_than_equal": "must be at least {ge}",
        "less_than_equal": "must be at most {le}",
        "greater_than": "must be above {gt}",
        "less_than": "must be below {lt}",
        "string_too_short": "must have at least {min_length} characters",
        "string_too_long": "must have at most {max_length} characters",
        "too_short": "must have at least {min_length} entries",
        "too_long": "must have at most {max_length} entries",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "int_type": "must be a whole number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "list_type": 'must be a list, such as ["a", "b"]',
        "dict_type": "must be a map of name: value",
        "string_type": "must be text",
    }
    if kind == "string_too_short" and context.get("min_length") == 1:
        return "must not be empty"
    return words.get(kind, "is not a value this setting takes (docs/settings.md)").format(**context)


def _allowed(alias: str, pattern: str) -> str:
    """What a value must look like, in words: the setting's own, else its type's."""
    field = next((f for name, f in Settings.model_fields.items() if to_camel(name) == alias), None)
    extra = (field.json_schema_extra or {}) if field else {}
    return extra.get("allowed") or PATTERN_WORDS[pattern]


# Settings that may be left unset. Pulumi.yaml gives them an empty default, since the CLI refuses
# a stack that does not set a declared key without one; empty means unset.
OPTIONAL = {to_camel(name) for name, field in Settings.model_fields.items() if field.default is None}


# The config namespaces a stack file may use besides the project's: the providers the program uses.
PROVIDER_NAMESPACES = ("aws", "docker", "docker-build", "pulumi", "random", "tls")


# Settings whose values go where a secret would be plain text, and where.
NEVER_SECRET = {
    "service_environment": "its values reach the service spec, Pulumi's state and docker service inspect in plain "
    "text; keep secrets out of it (docs/your-app.md)",
    "build_args": "build arguments stay in the image's history and Pulumi's state in plain text; keep secrets "
    "out of them (docs/your-app.md)",
}


# The settings only `pulumi config set --secret` may set, and the form of their entries.
ALWAYS_SECRET = {"secrets": "NAME=value", "registry_logins": "SERVER=USERNAME:PASSWORD"}


# The settings of NAME=value entries: an error shows their names only.
NAMED_ENTRIES = (to_camel("service_environment"), to_camel("build_args"))


def parse_settings(config: dict[str, Any], secret_keys: frozenset[str] = frozenset()) -> Settings:
    """Settings from a stack's whole config (`namespace:key` -> value), or SettingsError;
    `secret_keys`: the keys the stack keeps encrypted (`pulumi config set --secret`)."""
    values, problems = {}, []
    for field, why in NEVER_SECRET.items():
        if key(field) in secret_keys:
            problems.append(f"{key(field)} is a secret in the stack file, but {why}")
    for field, form in ALWAYS_SECRET.items():
        if config.get(key(field)) not in (None, "", "[]") and key(field) not in secret_keys:
            problems.append(
                f"{key(field)} is in the stack file in plain text; set each with pulumi config set --secret "
                f"--path '{key(field)}[N]' '{form}' (and rotate any value that was in plain text)"
            )
    for full_key, raw in config.items():
        namespace, _, name = full_key.partition(":")
        if namespace == NAMESPACE and not (raw == "" and name in OPTIONAL):
            values[name] = _decode(raw)
        elif namespace != NAMESPACE and namespace not in PROVIDER_NAMESPACES:
            problems.append(_unknown_namespace(namespace, name))
    if "awsRegion" in values:
        raise SettingsError(f"{NAMESPACE}:awsRegion is not a setting of this project; set aws:region instead")
    if config.get("aws:region"):
        values["awsRegion"] = config["aws:region"]
    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        problems += _problems(exc, values)
    else:
        problems += _not_for_this_platform(settings, values)
    if problems:
        raise SettingsError("invalid stack settings:\n  " + "\n  ".join(problems))
    return settings


# The checks across settings that work a figure out of others: the setting each names, and the
# settings its figure comes from.
DERIVED = {
    "converge_timeout": (
        "replicas",
        "max_replicas",
        "update_delay",
        "update_parallelism",
        "update_monitor",
        "health_check",
        "build_context",
        "dockerfile",
        "build_target",
    ),
}


def _problems(exc: ValidationError, values: dict[str, Any]) -> list[str]:
    """Each problem a line (the model's own check reports several in one error), every one in one run:
    pydantic checks across settings only once each setting is valid, so they are checked again with
    the invalid ones left out, keeping what does not name those."""
    lines = [line for error in exc.errors() for line in _describe(error).splitlines()]
    invalid = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
    # A check worked out from a setting left at its default would speak of values nobody wrote.
    derived_from_invalid = {
        _shown_as(to_camel(derived)) for derived, inputs in DERIVED.items() if invalid & {to_camel(i) for i in inputs}
    }
    if invalid:
        try:
            Settings.model_validate({k: v for k, v in values.items() if k not in invalid})
        except ValidationError as rest:
            lines += [
                line
                for error in rest.errors()
                if not error["loc"]
                for line in _describe(error).splitlines()
                if not any(_shown_as(name) in line for name in invalid)
                and not any(derived in line for derived in derived_from_invalid)
            ]
    return lines


def _unknown_namespace(namespace: str, name: str) -> str:
    close = difflib.get_close_matches(namespace, [NAMESPACE, *PROVIDER_NAMESPACES], n=1)
    hint = f"did you mean {close[0]}:{name}? " if close else ""
    return (
        f"{namespace}:{name}: {namespace} is not a namespace this program reads; {hint}"
        f"settings are {NAMESPACE}:<setting>, besides the providers' ({', '.join(PROVIDER_NAMESPACES)})"
    )


def _not_for_this_platform(settings: Settings, values: dict[str, Any]) -> list[str]:
    """AWS stacks' settings given to a local stack, which would ignore them silently. Only those
    that differ from their default: the CLI hands the program Pulumi.yaml's defaults as if set."""
    if settings.platform != "local":
        return []
    return [
        f"{NAMESPACE}:{to_camel(name)} applies to AWS stacks only (platform aws): the local stack ignores it; remove it"
        for name, field in Settings.model_fields.items()
        if (field.json_schema_extra or {}).get("group") == AWS
        and to_camel(name) in values
        and getattr(settings, name) != field.get_default(call_default_factory=True)
    ]
