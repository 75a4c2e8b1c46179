"""Every physical name the program gives what it makes, in one place.

A stack's AWS resources are `restdemo-<stack>-<what>`; IAM names, which are account-wide, carry the
region too (a stack name may be used in two regions); ECR repositories are `<repository>-<stack>`;
log groups live under `/restdemo/<stack>`; in the swarm, a Compose app's services, networks, volumes,
secrets and configs are `<serviceName>_<name>` (secrets and configs with their content's hash). The
names the node agent must find are its contract's (restdemo_agent.contract: the groups, the SSM
prefix, the secrets key's alias) and used from there.
"""

from __future__ import annotations

import hashlib

PROJECT = "restdemo"
# The local stack's own registry: one per machine (the local stacks share it, and its port).
LOCAL_REGISTRY = f"{PROJECT}-registry"
AGENT_REPOSITORY = f"{PROJECT}-agent"


def stack_prefix(stack: str) -> str:
    """`restdemo-<stack>`: the dashboard's name, and the start of every other."""
    return f"{PROJECT}-{stack}"


def resource_name(stack: str, what: str) -> str:
    """`restdemo-<stack>-<what>`: tables, queues, topics, rules, alarms, documents, the Name tag."""
    return f"{stack_prefix(stack)}-{what}"


def regional_name(stack: str, region: str, what: str) -> str:
    """`restdemo-<stack>-<region>-<what>`: IAM roles, whose names are account-wide."""
    return f"{stack_prefix(stack)}-{region}-{what}"


def repository_name(repository: str, stack: str) -> str:
    """An ECR repository: `<repository>-<stack>`."""
    return f"{repository}-{stack}"


def log_group_name(stack: str, below: str | None = None) -> str:
    """`/restdemo/<stack>` (the swarm's), or a group below it."""
    return f"/{PROJECT}/{stack}" + (f"/{below}" if below else "")


def swarm_object_name(app: str, name: str) -> str:
    """`<serviceName>_<name>`: a Compose service's, network's, secret's or config's name in the swarm
    (what `docker stack deploy` calls `<stack>_<name>`)."""
    return f"{app}_{name}"


def content_name(app: str, key: str, content: bytes) -> str:
    """`<serviceName>_<key>_<12 hex of the content's SHA-256>`: a secret's or config's name in the
    swarm. A new value is a new object, which the services that mount it roll to (start-first); the
    old one goes once no service names it."""
    return f"{swarm_object_name(app, key)}_{hashlib.sha256(content).hexdigest()[:12]}"


def database_prefix(stack: str) -> str:
    """The RDS instance's identifier before the 26 characters its provider adds at creation:
    `restdemo-<stack>-database-`; each instance its own (a restore's beside the one it replaces)."""
    return f"{resource_name(stack, 'database')}-"


def database_subnet_group(stack: str) -> str:
    """The database's DB subnet group: `restdemo-<stack>-database`."""
    return resource_name(stack, "database")
