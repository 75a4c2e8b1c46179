"""The contract between the Pulumi program and the node agent, in one place.

Ports, engine/node label names, SSM parameter paths, the lifecycle hook's name and the
environment that cloud-init writes for the agent. The program (`infra/`) imports these
names; the agent reads them. This module imports nothing beyond the standard library,
so the program can use it without the agent's dependencies being imported.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, get_type_hints
from urllib.parse import quote

# Ports. The agent answers readiness on READINESS_PORT (the admin NLB's health check);
# managers serve the Docker API with mutual TLS on DOCKER_TLS_PORT.
READINESS_PORT = 44554
DOCKER_TLS_PORT = 2376
SWARM_MANAGEMENT_PORT = 2377
# Between every pair of nodes: gossip (tcp and udp) and the overlay's VXLAN.
SWARM_NODE_PORTS = (("tcp", 7946), ("udp", 7946), ("udp", 4789))
# An encrypted overlay's IPsec traffic (IP protocol 50), between nodes too.
ESP_PROTOCOL = "50"

# Node labels the leader sets once on each new node, from what AWS says of the instance at the node's
# address (never from engine labels, which root on the node writes); placement preferences and
# constraints use them as `node.labels.<name>`.
LABEL_INSTANCE_ID = "instance_id"
LABEL_ZONE = "availability_zone"
LABEL_ROLE = "role"
# The constraints that keep a stack's services on its workers (from two workers on): swarm's role,
# and the role label a manager sets from AWS. A new worker meets both.
WORKER_CONSTRAINTS = ("node.role==worker", f"node.labels.{LABEL_ROLE}==worker")
# On a worker the leader could not identify, with its availability set to drain: swarm places no
# replica on an engine that is no instance of the stack (one more engine joined with the worker
# token, say). Both go when it is identified.
LABEL_UNIDENTIFIED = "restdemo.unidentified"

# The state table's record of the swarm's primary manager: the one key a worker reads.
PRIMARY_KEY = "primary_manager"
# The state table's key prefix of a worker's spot interruption notice, `notice#<its aws:userid>`: the
# one key a worker's role may write (infra/swarm/iam.py, restdemo_agent.interruption).
NOTICE_PREFIX = "notice#"
# The fields of a notice, the key's among them: all a worker's role lets it write.
NOTICE_FIELDS = ("pk", "kind", "at", "recorded")
# Each node's CPU use by its tasks, `load#<its aws:userid>`: the one other key a worker's role may
# write, with these fields (restdemo_agent.scaling).
LOAD_PREFIX = "load#"
LOAD_FIELDS = ("pk", "services", "recorded")

# On a service whose replicas follow the load (ADR 0034): its bounds and target, which the program
# writes and the leader's agent reads (restdemo_agent.scaling); the count is the agent's.
SCALE_MIN_LABEL = "restdemo.scale.min"
SCALE_MAX_LABEL = "restdemo.scale.max"
SCALE_CPU_LABEL = "restdemo.scale.cpu-percent"
SCALE_OUT_COOLDOWN_LABEL = "restdemo.scale.out-cooldown"
SCALE_IN_COOLDOWN_LABEL = "restdemo.scale.in-cooldown"

# On a Compose volume's mount: the uid:gid its directory is made owned by (restdemo_agent.volumes).
VOLUME_OWNER_LABEL = "restdemo.volume.owner"
# The largest uid or gid that owner may name: chown's 2^32 - 1 means "leave it as it is".
MAX_OWNER_ID = 2**32 - 2

# Secrets kept in AWS (restdemo:awsSecrets): on a service, what the leader's agent mounts from where
# (JSON, `aws_secrets_label`); on the Docker secrets the agent makes of their values, where each came
# from. The agent writes those services' secret references, the program none of them (ADR 0029).
AWS_SECRETS_LABEL = "restdemo.secrets.aws"
SECRET_SOURCE_LABEL = "restdemo.secret.source"
# A Secrets Manager secret's full ARN (with the 6 characters AWS appends to its name: IAM scopes to
# exactly it) or an SSM parameter's; `#KEY` takes one key of a JSON value (an RDS master secret's
# `password`). Secrets Manager's names: 1-512 of A-Z a-z 0-9 /_+=.@- (CreateSecret), and `!` in those a
# managing service makes (RDS's master secrets: `rds!db-<uuid>`; Secrets Manager User Guide, "Secrets
# managed by other AWS services"); SSM's: a-z A-Z 0-9 _.- and / for a hierarchy (PutParameter).
AWS_SECRET_ARN = re.compile(
    r"arn:aws:(?P<service>secretsmanager|ssm):(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):(?P<account>\d{12}):"
    r"(?:secret:(?P<secret>[A-Za-z0-9/_+=.@!-]{1,512}-[A-Za-z0-9]{6})|parameter(?P<parameter>/[A-Za-z0-9_./-]{1,2048}))"
    r"(?:#(?P<key>[A-Za-z0-9_.-]{1,128}))?"
)


def parameter_name(arn: str) -> str:
    """An SSM parameter's name from its ARN: `parameter/app/db` is `/app/db`, `parameter/db` is `db`
    (a name in a hierarchy starts with `/`; the ARN writes one slash either way)."""
    tail = arn.split(":parameter/", 1)[1].split("#", 1)[0]
    return "/" + tail if "/" in tail else tail


def aws_secrets_label(refresh_seconds: int, mounts: list[dict]) -> str:
    """The label's value: how often the values are read, and each mount (`name`: the Docker secrets'
    name before the value's hash; `source`: the ARN, `#KEY` if any; `target`, `uid`, `gid`, `mode`)."""
    return json.dumps({"refresh": refresh_seconds, "mounts": mounts}, sort_keys=True, separators=(",", ":"))


# A kept secret's `template` (the database's files, ADR 0030): text with `{KEY}` for a key of the
# source's JSON value as it is and `{KEY|url}` percent-encoded for a URL's user or password part
# (RFC 3986: everything but unreserved characters). No other braces: a host, port or name has none.
TEMPLATE_FIELD = re.compile(r"\{(?P<key>[A-Za-z0-9_]{1,64})(?P<url>\|url)?\}")
TEMPLATE_LIMIT = 1024


def template_problem(template: str) -> str | None:
    """Why `template` is not one (None: it is)."""
    if not isinstance(template, str) or not template or len(template) > TEMPLATE_LIMIT:
        return f"a template is 1 to {TEMPLATE_LIMIT} characters"
    if "{" in TEMPLATE_FIELD.sub("", template) or "}" in TEMPLATE_FIELD.sub("", template):
        return "a template's braces are {KEY} or {KEY|url} only"
    return None


def render_template(template: str, values: dict[str, str]) -> str:
    """`template` with each field replaced by its key's value. Raises KeyError naming a missing key."""

    def field_value(match: re.Match) -> str:
        value = values[match["key"]]
        return quote(value, safe="") if match["url"] else value

    return TEMPLATE_FIELD.sub(field_value, template)


ROLES = ("manager", "worker")
# The termination lifecycle hook on both groups; its notifications carry this name.
TERMINATION_HOOK = "drain"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
# The launch hook: completed once the new node is a ready member (by the leader, or a new manager
# by itself), so an instance refresh moves on only after a real member joined.
LAUNCH_HOOK = "joined"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TLS_FILES = ("ca", "cert", "key")
# The state table's item the managers' engine watchdogs take before one has its instance replaced
# (infra/swarm/cloud_init.py): one manager at a time.
REPLACEMENT_LEASE_KEY = "manager_replacement"

# The swarm's health as CloudWatch metrics: the agent writes them in the Embedded Metric Format
# inside its own JSON log lines (metrics.py), the program's alarms and dashboard read them
# (infra/monitoring). One namespace, one dimension: the stack.
METRICS_NAMESPACE = "restdemo"
METRICS_DIMENSION = "Stack"
# The workers' own metrics (heartbeat, disk, memory, setup and bootstrap failures): sent with
# PutMetricData, which their role may call for this namespace only; their logs go to a group that
# extracts no metrics, so no worker can write the swarm's.
WORKER_METRICS_NAMESPACE = "restdemo/workers"
# Every node, once a metrics period: its agent is alive (summed over the stack, the live agents).
AGENT_HEARTBEAT = "AgentHeartbeat"
DISK_USED_PERCENT = "DockerDiskUsedPercent"
MEMORY_USED_PERCENT = "MemoryUsedPercent"
BOOTSTRAP_FAILURES = "BootstrapFailures"  # attempts that did not make the node a member
BOOTSTRAP_GAVE_UP = "BootstrapGaveUp"  # 1 when the node asked to be replaced
# Every manager: whether it sees a leader, and how many managers are reachable.
LEADER_SEEN = "SwarmLeaderSeen"
MANAGERS_REACHABLE = "ManagersReachable"
# The leader: the nodes, the replicas of the replicated services, their updates, the credentials.
NODES_READY = "NodesReady"
NODES_DOWN = "NodesDown"
REPLICAS_RUNNING = "ReplicasRunning"
REPLICAS_DESIRED = "ReplicasDesired"
# Each replicated service's replicas short of desired, under the stack's and the service's dimensions.
SERVICE_REPLICAS_MISSING = "ServiceReplicasMissing"
# 1 while a scaling service runs its maximum and its load asks for at least that many.
SERVICE_AT_MAX_REPLICAS = "ServiceAtMaxReplicas"
# The leader's, with workerMaxCount: the share of the active workers' CPU or memory the services
# reserve (restdemo_agent.capacity), which the workers' target-tracking policy holds at its target.
WORKERS_RESERVED_PERCENT = "WorkersReservedPercent"
# That policy's name (one per group): the leader takes the workers' group to scale when it has it.
RESERVED_POLICY = "reserved-share"
# The leader's, for a workers' group that may run spot: 1 while it runs all on-demand because spot
# launches failed (restdemo_agent.spot_fallback); the group's tag holding the program's on-demand base.
WORKERS_SPOT_FALLBACK = "WorkersSpotFallback"
ON_DEMAND_BASE_TAG = "restdemo:on-demand-base"
SERVICE_DIMENSION = "Service"
UPDATE_ROLLED_BACK = "ServiceRolledBack"  # 1 while a service's last update was rolled back
UPDATE_PAUSED = "ServiceUpdatePaused"
CREDENTIALS_AGE = "RegistryCredentialsAgeSeconds"
# The oldest value among the secrets kept in AWS that services mount: since its last good read.
KEPT_SECRETS_AGE = "KeptSecretsAgeSeconds"
# The volumes' directories the leader could not make at its last try (a task that mounts one cannot start).
VOLUME_DIRECTORIES_FAILING = "VolumeDirectoriesFailing"
METRICS_PERIOD_SECONDS = 60
DOCKER_ROOT = "/var/lib/docker"
# The node setup counts its runs and its successes here (cloud-init's script); the agent reports
# the difference, the failed setups, once (NODE_SETUP_FAILURES), and notes what it reported.
NODE_STATE_DIR = "/var/lib/restdemo"
# The instance metadata service (IMDSv2), from the instance itself.
METADATA_URL = "http://169.254.169.254/latest"
SETUP_RUNS, SETUP_SUCCESSES, SETUP_FAILURES_REPORTED = "setup-runs", "setup-successes", "setup-failures-reported"
# The agent asks the host to replace the node by writing this file there (with its reason): a
# systemd path unit powers the node off, and its group replaces an instance that is not running.
REPLACE_REQUEST = "replace-me"
NODE_SETUP_FAILURES = "NodeSetupFailures"


def group_name(stack: str, role: str) -> str:
    """A role's auto scaling group."""
    return f"restdemo-{stack}-{role}s"


def ssm_prefix(stack: str) -> str:
    """Where a stack's join tokens and TLS material live in SSM Parameter Store."""
    return f"/restdemo/{stack}"


def secrets_key_alias(stack: str) -> str:
    """The alias of the stack's own KMS key for its SecureStrings (join tokens, TLS material). The
    agent is given the key's ARN (RESTDEMO_SECRETS_KEY): an alias can be re-pointed."""
    return f"alias/restdemo-{stack}"


def token_parameter(prefix: str, role: str) -> str:
    """The SSM parameter holding the join token for `role`."""
    if role not in ROLES:
        raise ValueError(f"no join token for role {role!r}")
    return f"{prefix}/join-token/{role}"


def tls_parameter(prefix: str, name: str) -> str:
    """The SSM parameter holding one file of the Docker API's server TLS material."""
    if name not in TLS_FILES:
        raise ValueError(f"no TLS parameter {name!r}; one of {', '.join(TLS_FILES)}")
    return f"{prefix}/tls/{name}"


def _variable(name: str, *, written: str = "changed", default: Any = MISSING) -> Any:
    """A field of the agent's environment: its variable, and when cloud-init writes it: "required"
    (always, the agent stops without it), "manager" (required on managers), "always" or "changed"
    (only when it differs from its default, so an unused override leaves the user data as it was)."""
    return field(default=default, metadata={"variable": name, "written": written})


@dataclass(frozen=True, kw_only=True)
class AgentEnvironment:
    """The agent's settings, declared once: cloud-init writes them (`to_environ`, from the program's
    NodeConfig) as the environment file the agent reads back (`from_environ`). Fields in the order
    the file lists them (a new order would be a new launch template, and a refresh of every node)."""

    stack: str = _variable("RESTDEMO_STACK", written="required")
    region: str = _variable("AWS_REGION", written="required")
    role: str = _variable("RESTDEMO_ROLE", written="required")
    state_table: str = _variable("RESTDEMO_STATE_TABLE", written="required")
    ssm_prefix: str = _variable("RESTDEMO_SSM_PREFIX", written="required")
    lifecycle_queue_url: str = _variable("RESTDEMO_LIFECYCLE_QUEUE_URL", written="required")
    log_group: str = _variable("RESTDEMO_LOG_GROUP", written="required")
    registry: str = _variable("RESTDEMO_REGISTRY", written="required")
    readiness_port: int = _variable("RESTDEMO_READINESS_PORT", written="always", default=READINESS_PORT)
    group_name: str = _variable("RESTDEMO_GROUP_NAME", written="required")  # the node's own auto scaling group
    prune_interval_seconds: int = _variable("RESTDEMO_PRUNE_INTERVAL", written="always", default=0)
    # A node that is not a member this long after boot asks its group to replace it.
    bootstrap_timeout_seconds: int = _variable("RESTDEMO_BOOTSTRAP_TIMEOUT", written="always", default=900)
    # A primary record no manager confirmed for this long belongs to a swarm that is gone.
    primary_stale_seconds: int = _variable("RESTDEMO_PRIMARY_STALE_AFTER", written="always", default=300)
    # Managers: the KMS key ARN they write the join tokens under.
    secrets_key: str = _variable("RESTDEMO_SECRETS_KEY", written="manager", default="")
    # How often the agent writes its metrics (the alarms' period); shorter only in the test lab.
    metrics_period_seconds: int = _variable("RESTDEMO_METRICS_PERIOD", default=METRICS_PERIOD_SECONDS)
    # The Docker data root whose disk use is reported (mounted read-only into the agent's container).
    docker_root: str = _variable("RESTDEMO_DOCKER_ROOT", default=DOCKER_ROOT)
    node_state_dir: str = _variable("RESTDEMO_NODE_STATE_DIR", default=NODE_STATE_DIR)
    # The agent's own image (it runs in a container of it): the leader runs it once more to make a
    # volume's directory (restdemo_agent.volumes).
    image: str = _variable("RESTDEMO_AGENT_IMAGE", default="")
    # The lab only: a volume may be a bind of a directory below this one (its stand-in for NFS).
    volume_bind_root: str = _variable("RESTDEMO_VOLUME_BIND_ROOT", default="")
    # Managers: the SSM parameters of the Docker API's TLS files (the node's setup fetches them).
    tls_ca_parameter: str = _variable("RESTDEMO_TLS_CA_PARAMETER", written="manager", default="")
    tls_cert_parameter: str = _variable("RESTDEMO_TLS_CERT_PARAMETER", written="manager", default="")
    tls_key_parameter: str = _variable("RESTDEMO_TLS_KEY_PARAMETER", written="manager", default="")

    # The instance metadata service (IMDSv2) a worker reads its spot interruption notices from; the
    # lab points it at a stand-in.
    metadata_url: str = _variable("RESTDEMO_METADATA_URL", default=METADATA_URL)

    def tls_parameters(self) -> dict[str, str]:
        """Each TLS file's SSM parameter ("ca", "cert", "key"), on a manager; empty on a worker."""
        named = {name: getattr(self, f"tls_{name}_parameter") for name in TLS_FILES}
        return named if all(named.values()) else {}

    def to_environ(self) -> dict[str, str]:
        """The environment file's variables: what `from_environ` reads back."""
        return {
            variable.metadata["variable"]: str(getattr(self, variable.name))
            for variable in fields(self)
            if variable.metadata["written"] in ("required", "always")
            or getattr(self, variable.name) != variable.default
        }

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> AgentEnvironment:
        environ = dict(os.environ if environ is None else environ)
        role = environ.get("RESTDEMO_ROLE", "")
        needed = ("required", "manager") if role == "manager" else ("required",)
        missing = [
            variable.metadata["variable"]
            for variable in fields(cls)
            if variable.metadata["written"] in needed and not environ.get(variable.metadata["variable"])
        ]
        if role not in ROLES:
            missing.append("RESTDEMO_ROLE (manager or worker)")
        if missing:
            raise ValueError(f"the agent's environment lacks {', '.join(dict.fromkeys(missing))}")
        types = get_type_hints(cls)
        given = {
            variable.name: _parsed(types[variable.name], environ[variable.metadata["variable"]])
            for variable in fields(cls)
            if environ.get(variable.metadata["variable"])
        }
        return cls(**given)


def _parsed(kind: type, value: str) -> int | str:
    # Whole seconds; a duration written as 60.0 is read as 60.
    return int(float(value)) if kind is int else value
