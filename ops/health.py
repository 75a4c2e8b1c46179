"""The swarm's health at a glance: `python -m ops.health <service>` (`make status` runs it).

Two lines an operator reads without scrolling through `docker service ps`, e.g.

    swarm: leader vm-1; managers 3 of 3 reachable; nodes 5 ready, 0 down
    restdemo: 3 of 3 replicas running; by version: v2 x3; last update: completed

and indented lines under them only when something needs a look (replicas missing, an update that
paused or rolled back). The summary is computed by pure functions from the JSON the docker CLI
prints, so every case is tested on fixed output; main() only runs the three commands, with the
docker CLI from PATH and whatever DOCKER_* environment it was given (ops/client.py's
`--docker-env` points it at a stack's swarm).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

# Where the operator reads what to do about a lost quorum ("A manager has no quorum").
OPERATIONS_DOC = "docs/operations.md"
# A docker command that does not answer in this time (a tunnel that hangs) is reported as failed.
DOCKER_SECONDS = 60.0
# The detail lines for missing replicas: enough to see the pattern, not a second `service ps`.
MISSING_DETAILS = 5
# infra/image/image.py's content tag: `<version>-<12 hex>`.
CONTENT_TAG = re.compile(r"^(?P<version>.+)-[0-9a-f]{12}$")
# `docker service ps` indents an older task of the same slot: ` \_ restdemo.1`.
SLOT_INDENT = re.compile(r"^\s*\\_\s*")
# What the daemon answers on a manager when the raft has no leader (moby's errNoLeader).
NO_LEADER_ERROR = "does not have a leader"


class HealthError(Exception):
    """A docker command failed or gave what is not its JSON; main() prints it on one line, exits 1."""


# The swarm: `docker node ls --format '{{json .}}'`.


def swarm_line(nodes: list[dict]) -> str:
    """Leader, managers reachable against the quorum, nodes ready or down: whether the swarm can
    take changes (a leader), how many more managers it can lose, and where the capacity is."""
    managers = [node for node in nodes if node.get("ManagerStatus")]
    leader = next((node["Hostname"] for node in managers if node["ManagerStatus"] == "Leader"), None)
    reachable = [node for node in managers if node["ManagerStatus"] in ("Leader", "Reachable")]
    unreachable = [node["Hostname"] for node in managers if node not in reachable]
    quorum = len(managers) // 2 + 1

    if leader:
        parts = [f"leader {leader}"]
    else:
        parts = [f"no leader: the swarm has lost its quorum, see {OPERATIONS_DOC} (A manager has no quorum)"]
    managers_part = f"managers {len(reachable)} of {len(managers)} reachable"
    if unreachable:
        managers_part += f" ({', '.join(unreachable)} unreachable; the quorum needs {quorum})"
    parts.append(managers_part)

    ready = [node for node in nodes if node.get("Status") == "Ready"]
    not_ready = [node for node in nodes if node.get("Status") != "Ready"]
    nodes_part = f"nodes {len(ready)} ready, {len(not_ready)} down"
    if not_ready:
        nodes_part += f" ({', '.join(node_state(node, 'Status', 'Down') for node in not_ready)})"
    parts.append(nodes_part)

    # Ready but given no tasks: capacity the replicas cannot use (a drain under way, a pause).
    idle = [node for node in ready if node.get("Availability", "Active") != "Active"]
    if idle:
        parts.append(f"not taking tasks: {', '.join(node_state(node, 'Availability', '') for node in idle)}")
    return "swarm: " + "; ".join(parts)


def node_state(node: dict, field: str, usual: str) -> str:
    """`vm-3`, or `vm-3 (drain)` when the field says more than the usual value."""
    value = node.get(field) or "unknown"
    return node["Hostname"] if value == usual else f"{node['Hostname']} ({value.lower()})"


# The service: `docker service inspect <service>` and its tasks desired running.


@dataclass(frozen=True)
class Spec:
    """What the summary needs of a service spec: the image it pins and the VER it gives the app."""

    image: str | None
    version: str | None


def spec_of(spec: dict | None) -> Spec | None:
    """None for a spec the service does not have (no PreviousSpec before a first update, nor after a
    rollback, which makes the previous spec the spec)."""
    if not spec:
        return None
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    env = dict(item.split("=", 1) for item in container.get("Env") or [] if "=" in item)
    return Spec(image=container.get("Image"), version=env.get("VER"))


def same_image(a: str, b: str) -> bool:
    """By digest when both are pinned (the spec's `repo:tag@sha256:…`); else by name and tag, as
    `docker service ps` shows them without `--no-trunc`."""
    name_a, _, digest_a = a.partition("@")
    name_b, _, digest_b = b.partition("@")
    if digest_a and digest_b:
        return digest_a == digest_b
    return familiar(name_a) == familiar(name_b)


def familiar(name: str) -> str:
    """The name as the CLI shows it: Docker Hub's prefixes dropped, so both spellings compare equal."""
    for prefix in ("docker.io/", "library/"):
        name = name.removeprefix(prefix)
    return name


def tag_version(image: str) -> str:
    """The version in a content tag (`<repo>:<version>-<12 hex>@sha256:…` -> `<version>`); another
    tag as it is; `untagged` for an image pinned by digest alone."""
    last = image.partition("@")[0].rsplit("/", 1)[-1]
    if ":" not in last:
        return "untagged"
    tag = last.rsplit(":", 1)[1]
    match = CONTENT_TAG.match(tag)
    return match["version"] if match else tag


def task_version(image: str, specs: Iterable[Spec | None]) -> str:
    """The VER of the spec (current, then previous) whose image the task runs: the version the
    app reports; else the version in the image's tag (a task of an older spec mid-rollout)."""
    for spec in specs:
        if spec and spec.image and spec.version and same_image(image, spec.image):
            return spec.version
    return tag_version(image)


def slot_of(task: dict) -> str:
    """`restdemo.2` for both tasks of a slot mid-rollout: replicas are counted by slot."""
    return SLOT_INDENT.sub("", task.get("Name", ""))


def is_running(task: dict) -> bool:
    return task.get("CurrentState", "").startswith("Running")


def service_lines(name: str, service: dict, tasks: list[dict]) -> list[str]:
    """`<name>: R of N replicas running; by version: …; <the last update>`, then one indented line
    per replica that is not running (what swarm says of it) and a hint after a pause or rollback.

    A replica counts as running when a task of its slot runs: the updates are start-first, so for
    a moment a slot has its old and its new task running, both counted by version."""
    spec, previous = spec_of(service.get("Spec")), spec_of(service.get("PreviousSpec"))
    mode = (service.get("Spec") or {}).get("Mode") or {}
    running = [task for task in tasks if is_running(task)]
    running_slots = {slot_of(task) for task in running}

    if "Replicated" in mode:
        desired = int(mode["Replicated"].get("Replicas", 0))
        replicas = f"{len(running_slots)} of {desired} replicas running"
        missing = max(desired - len(running_slots), 0)
        if missing:
            replicas += f", {missing} missing"
    else:  # global: one per eligible node, a count `service ps` does not give
        replicas, missing = f"{len(running)} tasks running (global)", 0

    versions = Counter(task_version(task.get("Image", ""), (spec, previous)) for task in running)
    first = spec.version if spec else None
    ordered = sorted(versions.items(), key=lambda item: (item[0] != first, -item[1], item[0]))
    by_version = ", ".join(f"{version} x{count}" for version, count in ordered) or "none running"

    headline, hint = update_state(name, service.get("UpdateStatus"), spec, previous)
    lines = [f"{name}: {replicas}; by version: {by_version}; {headline}"]
    if missing:
        lines += missing_lines(tasks, running_slots)
    if hint:
        lines.append(f"  {hint}")
    return lines


def update_state(name: str, status: dict | None, spec: Spec | None, previous: Spec | None) -> tuple[str, str | None]:
    """What the last update did (moby's UpdateStatus.State), and a hint line when it did not end
    well. Swarm's own message says why it paused or rolled back: it is kept."""
    target = spec.version if spec else None
    before = previous.version if previous else None
    moved = f" from {before} to {target}" if before and target and before != target else ""
    back_to = target or "the previous spec"
    failed_tasks = f"the failed tasks' errors: docker service ps {name} --no-trunc --filter desired-state=shutdown"
    if not status:
        return "last update: none since the service was created", None
    state, message = status.get("State", ""), status.get("Message", "")
    because = f" ({message})" if message else ""
    if state == "completed":
        return f"last update: {before} to {target}, completed" if moved else "last update: completed", None
    if state == "updating":
        return f"update in progress{moved or (f' to {target}' if target else '')}", None
    if state == "paused":
        return f"update{moved} paused{because}", failed_tasks
    # A rollback makes the previous spec the spec again: `target` is the version rolled back to.
    if state == "rollback_started":
        return f"rolling back to {back_to}{because}", failed_tasks
    if state == "rollback_paused":
        return f"rollback to {back_to} paused{because}", failed_tasks
    if state == "rollback_completed":
        return f"last update: rolled back to {back_to}", failed_tasks
    return f"last update: {state or 'unknown'}{because}", None


def missing_lines(tasks: list[dict], running_slots: set[str]) -> list[str]:
    """`  restdemo.3 on vm-2: Starting 5 seconds ago: <error>` for each slot with no task running."""
    waiting = [task for task in tasks if slot_of(task) not in running_slots]
    lines = []
    for task in waiting[:MISSING_DETAILS]:
        where = f" on {task['Node']}" if task.get("Node") else ""
        error = f": {task['Error']}" if task.get("Error") else ""
        lines.append(f"  {slot_of(task)}{where}: {task.get('CurrentState') or 'no state'}{error}")
    if len(waiting) > MISSING_DETAILS:
        lines.append(f"  and {len(waiting) - MISSING_DETAILS} more")
    return lines


def summary(nodes: list[dict], *services: tuple[str, dict, list[dict]]) -> str:
    """The whole summary from the commands' parsed output: the swarm's line once, then each service's
    (name, `service inspect`, `service ps`): a Compose stack's, every one of them."""
    return "\n".join([swarm_line(nodes), *(line for found in services for line in service_lines(*found))])


# The commands.


def docker(*args: str) -> str:
    """The docker CLI's stdout; a failure becomes one line naming the command and the daemon's
    last word (a lost quorum also says where to read what to do)."""
    command = f"docker {' '.join(args)}"
    try:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=DOCKER_SECONDS)
    except FileNotFoundError:
        raise HealthError(f"`{command}` failed: the docker CLI is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise HealthError(f"`{command}` failed: no answer within {DOCKER_SECONDS:g}s") from None
    if result.returncode != 0:
        said = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = said[-1] if said else f"exit {result.returncode}"
        if NO_LEADER_ERROR in result.stderr:
            reason += f" (no leader: the swarm has lost its quorum, see {OPERATIONS_DOC})"
        raise HealthError(f"`{command}` failed: {reason}")
    return result.stdout


def json_lines(command: str, text: str) -> list[dict]:
    """`--format '{{json .}}'` prints one object a line; anything else is the CLI's, not ours, to explain."""
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise HealthError(f"`{command}` gave what is not JSON lines: {error}") from None


def collect_nodes() -> list[dict]:
    return json_lines("docker node ls", docker("node", "ls", "--format", "{{json .}}"))


def collect(service_name: str) -> tuple[dict, list[dict]]:
    """A service's two commands, in the order an operator would run them."""
    inspect = ("service", "inspect", service_name)
    try:
        services = json.loads(docker(*inspect))
    except json.JSONDecodeError as error:
        raise HealthError(f"`docker {' '.join(inspect)}` gave what is not JSON: {error}") from None
    if not isinstance(services, list) or not services or not isinstance(services[0], dict):
        raise HealthError(f"`docker {' '.join(inspect)}` gave no service")
    # --no-trunc: the tasks' images with their digests, as the spec pins them; errors in full.
    service_ps = ("service", "ps", service_name, "--filter", "desired-state=running", "--no-trunc")
    tasks = json_lines("docker service ps", docker(*service_ps, "--format", "{{json .}}"))
    return services[0], tasks


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or any(arg.startswith("-") for arg in args):
        print("usage: python -m ops.health SERVICE [SERVICE ...]", file=sys.stderr)
        return 2
    try:
        nodes = collect_nodes()
        text = summary(nodes, *((name, *collect(name)) for name in args))
    except HealthError as error:
        print(f"restdemo: {error}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        # Output of a shape this module does not know (another docker version): one line, no traceback.
        print(f"restdemo: docker's output is not as expected ({type(error).__name__}: {error})", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
