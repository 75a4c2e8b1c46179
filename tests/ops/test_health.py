"""ops/health.py: the swarm's health at a glance in `make status`.

The summary is tested on fixed JSON in the shapes the docker CLI prints (`docker node ls
--format '{{json .}}'`, `docker service inspect`, `docker service ps --format '{{json .}}'`), one
case per thing an operator must see at once. main() runs against a fake `docker` on PATH (a script
this module writes), as the real CLI would answer and as it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ops.health import same_image, summary, swarm_line, tag_version

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
IMAGE = "127.0.0.1:5000/restdemo"
V1 = f"{IMAGE}:v1-0123456789ab@sha256:{'1' * 64}"
V2 = f"{IMAGE}:v2-abcdef012345@sha256:{'2' * 64}"
FAILED_TASKS = "  the failed tasks' errors: docker service ps restdemo --no-trunc --filter desired-state=shutdown"


def node(hostname: str, manager: str = "", status: str = "Ready", availability: str = "Active") -> dict:
    """One line of `docker node ls --format '{{json .}}'`."""
    return {
        "Availability": availability,
        "EngineVersion": "27.5.1",
        "Hostname": hostname,
        "ID": f"{hostname}-id",
        "ManagerStatus": manager,
        "Self": hostname == "vm-1",
        "Status": status,
        "TLSStatus": "Ready",
    }


def spec(image: str, version: str, replicas: int = 3) -> dict:
    """The part of a service spec the summary reads (the rest of moby's spec left out)."""
    return {
        "Name": "restdemo",
        "TaskTemplate": {"ContainerSpec": {"Image": image, "Env": [f"VER={version}"]}},
        "Mode": {"Replicated": {"Replicas": replicas}},
    }


def service(current: dict, previous: dict | None = None, state: str | None = None, message: str = "") -> dict:
    """`docker service inspect restdemo`'s one service; UpdateStatus only after an update, as moby."""
    inspected = {"ID": "svc", "Spec": current}
    if previous:
        inspected["PreviousSpec"] = previous
    if state:
        inspected["UpdateStatus"] = {"State": state, "Message": message, "StartedAt": "2025-01-01T00:00:00Z"}
    return inspected


def task(slot: str, image: str, on: str, current: str = "Running 2 hours ago", error: str = "") -> dict:
    """One line of `docker service ps restdemo --filter desired-state=running --no-trunc --format '{{json .}}'`."""
    return {
        "CurrentState": current,
        "DesiredState": "Running",
        "Error": error,
        "ID": f"{slot}-{on}",
        "Image": image,
        "Name": slot,
        "Node": on,
        "Ports": "",
    }


MANAGERS = [node("vm-1", "Leader"), node("vm-2", "Reachable"), node("vm-3", "Reachable")]
NODES = [*MANAGERS, node("vm-4"), node("vm-5")]
UPDATED = service(spec(V2, "v2"), spec(V1, "v1"), "completed", "update completed")
TASKS = [task("restdemo.1", V2, "vm-4"), task("restdemo.2", V2, "vm-5"), task("restdemo.3", V2, "vm-1")]
HEALTHY = (
    "swarm: leader vm-1; managers 3 of 3 reachable; nodes 5 ready, 0 down\n"
    "restdemo: 3 of 3 replicas running; by version: v2 x3; last update: v1 to v2, completed"
)


def test_a_healthy_three_manager_swarm_is_two_lines():
    assert summary(NODES, ("restdemo", UPDATED, TASKS)) == HEALTHY


def test_a_lost_quorum_says_so_plainly_and_where_to_read_what_to_do():
    nodes = [
        node("vm-1", "Unreachable", "Down"),
        node("vm-2", "Unreachable", "Down"),
        node("vm-3", "Reachable"),
        node("vm-4"),
    ]
    assert swarm_line(nodes) == (
        "swarm: no leader: the swarm has lost its quorum, see docs/operations.md (A manager has no quorum); "
        "managers 1 of 3 reachable (vm-1, vm-2 unreachable; the quorum needs 2); nodes 2 ready, 2 down (vm-1, vm-2)"
    )


def test_a_node_down_is_named_and_an_unreachable_manager_shows_the_margin_left():
    nodes = [
        node("vm-1", "Leader"),
        node("vm-2", "Reachable"),
        node("vm-3", "Unreachable", "Down"),
        node("vm-4", availability="Drain"),
        node("vm-5", status="Unknown"),
    ]
    assert swarm_line(nodes) == (
        "swarm: leader vm-1; managers 2 of 3 reachable (vm-3 unreachable; the quorum needs 2); "
        "nodes 3 ready, 2 down (vm-3, vm-5 (unknown)); not taking tasks: vm-4 (drain)"
    )


def test_replicas_not_running_are_counted_as_missing_with_what_swarm_says_of_them():
    tasks = [
        task("restdemo.1", V2, "vm-4"),
        task("restdemo.2", V2, "vm-5"),
        task(
            "restdemo.3",
            V2,
            "",
            "Pending 2 minutes ago",
            "no suitable node (max replicas per node limit exceed; scheduling constraints not satisfied on 5 nodes)",
        ),
    ]
    assert summary(NODES, ("restdemo", UPDATED, tasks)).splitlines()[1:] == [
        "restdemo: 2 of 3 replicas running, 1 missing; by version: v2 x2; last update: v1 to v2, completed",
        "  restdemo.3: Pending 2 minutes ago: no suitable node "
        "(max replicas per node limit exceed; scheduling constraints not satisfied on 5 nodes)",
    ]


def test_a_replica_without_any_task_is_still_missing():
    """Swarm may not have made the task yet: the count comes from the spec, not the task list."""
    lines = summary(NODES, ("restdemo", UPDATED, TASKS[:1])).splitlines()
    assert lines[1:] == [
        "restdemo: 1 of 3 replicas running, 2 missing; by version: v2 x1; last update: v1 to v2, completed"
    ]


def test_a_rollout_in_progress_counts_replicas_by_slot_and_tasks_by_version():
    """Start-first: slot 2's new task starts while its old one still runs; the slot is running, and
    only running tasks are counted by version (the spec's version first)."""
    tasks = [
        task("restdemo.1", V2, "vm-4"),
        task("restdemo.2", V1, "vm-5", "Running 3 hours ago"),
        task(" \\_ restdemo.2", V2, "vm-1", "Starting 4 seconds ago"),
        task("restdemo.3", V1, "vm-1", "Running 3 hours ago"),
    ]
    updating = service(spec(V2, "v2"), spec(V1, "v1"), "updating", "update in progress")
    assert summary(NODES, ("restdemo", updating, tasks)) == (
        "swarm: leader vm-1; managers 3 of 3 reachable; nodes 5 ready, 0 down\n"
        "restdemo: 3 of 3 replicas running; by version: v2 x1, v1 x2; update in progress from v1 to v2"
    )


def test_a_rolled_back_update_says_which_version_runs_again_and_where_the_errors_are():
    """Swarm makes the previous spec the spec again and drops the previous one; its last message
    ("rollback completed") no longer says why."""
    rolled_back = service(spec(V1, "v1"), None, "rollback_completed", "rollback completed")
    tasks = [task("restdemo.1", V1, "vm-4"), task("restdemo.2", V1, "vm-5"), task("restdemo.3", V1, "vm-1")]
    assert summary(NODES, ("restdemo", rolled_back, tasks)).splitlines()[1:] == [
        "restdemo: 3 of 3 replicas running; by version: v1 x3; last update: rolled back to v1",
        FAILED_TASKS,
    ]


def test_a_rollback_under_way_keeps_swarms_reason_and_reads_the_new_version_from_the_tag():
    """The failed spec is gone from the service (no PreviousSpec): the v2 task's version comes from
    its content tag."""
    message = "update rolled back due to failure or early termination of task q1w2e3r4t5y6"
    rolling_back = service(spec(V1, "v1"), None, "rollback_started", message)
    tasks = [task("restdemo.1", V2, "vm-4"), task("restdemo.2", V1, "vm-5"), task("restdemo.3", V1, "vm-1")]
    assert summary(NODES, ("restdemo", rolling_back, tasks)).splitlines()[1:] == [
        f"restdemo: 3 of 3 replicas running; by version: v1 x2, v2 x1; rolling back to v1 ({message})",
        FAILED_TASKS,
    ]


@pytest.mark.parametrize(
    "state,message,headline",
    [
        (
            "paused",
            "update paused due to failure or early termination of task abc",
            "update from v1 to v2 paused (update paused due to failure or early termination of task abc)",
        ),
        (
            "rollback_paused",
            "rollback paused due to failure or early termination of task abc",
            "rollback to v2 paused (rollback paused due to failure or early termination of task abc)",
        ),
    ],
)
def test_a_paused_update_or_rollback_says_so_with_swarms_reason(state, message, headline):
    paused = service(spec(V2, "v2"), spec(V1, "v1"), state, message)
    assert summary(NODES, ("restdemo", paused, TASKS)).splitlines()[1:] == [
        f"restdemo: 3 of 3 replicas running; by version: v2 x3; {headline}",
        FAILED_TASKS,
    ]


def test_a_service_never_updated_has_no_update_status():
    created = service(spec(V2, "v2"))
    assert summary(NODES, ("restdemo", created, TASKS)).splitlines()[1] == (
        "restdemo: 3 of 3 replicas running; by version: v2 x3; last update: none since the service was created"
    )


def test_versions_come_from_the_content_tag_when_no_spec_pins_the_image():
    assert tag_version(V2) == "v2"
    assert tag_version("restdemo:1.4.0-rc1-abcdef012345") == "1.4.0-rc1"  # only the last -<12 hex> is the hash
    assert tag_version("registry:5000/restdemo:latest") == "latest"  # a port is not a tag
    assert tag_version(f"registry:5000/restdemo@sha256:{'3' * 64}") == "untagged"
    # `docker service ps` without --no-trunc drops the digest: the name and tag still match.
    assert same_image(f"{IMAGE}:v2-abcdef012345", V2)
    assert not same_image(V1, V2)


# main(): the docker CLI on PATH is a script that answers each subcommand as written here.


def fake_docker(tmp_path: Path, answers: dict[str, dict]) -> Path:
    """A `docker` that answers `<word> <word>` (`node ls`, `service inspect`, `service ps`) from
    `answers` ({stdout, stderr, rc}), and logs its arguments and DOCKER_HOST to calls.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "answers.json").write_text(json.dumps(answers))
    script = bin_dir / "docker"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            """\
            import json, os, sys
            here = os.path.dirname(os.path.abspath(__file__))
            with open(os.path.join(here, "calls.log"), "a") as log:
                log.write(json.dumps({"args": sys.argv[1:], "DOCKER_HOST": os.environ.get("DOCKER_HOST")}) + "\\n")
            answers = json.load(open(os.path.join(here, "answers.json")))
            answer = answers.get(" ".join(sys.argv[1:3]), {"stderr": "unknown command", "rc": 1})
            sys.stdout.write(answer.get("stdout", ""))
            sys.stderr.write(answer.get("stderr", ""))
            sys.exit(answer.get("rc", 0))
            """
        )
    )
    script.chmod(0o755)
    return bin_dir


def healthy_answers() -> dict[str, dict]:
    return {
        "node ls": {"stdout": "".join(json.dumps(n) + "\n" for n in NODES)},
        "service inspect": {"stdout": json.dumps([UPDATED], indent=4) + "\n"},
        "service ps": {"stdout": "".join(json.dumps(t) + "\n" for t in TASKS)},
    }


def run_main(bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ops.health", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PATH": str(bin_dir), "DOCKER_HOST": "tcp://127.0.0.1:23760"},
        timeout=60,
    )


def test_main_prints_the_summary_from_the_docker_cli_it_finds_on_path(tmp_path):
    bin_dir = fake_docker(tmp_path, healthy_answers())
    result = run_main(bin_dir, "restdemo")
    assert (result.returncode, result.stdout, result.stderr) == (0, HEALTHY + "\n", "")
    calls = [json.loads(line) for line in (bin_dir / "calls.log").read_text().splitlines()]
    assert [call["args"] for call in calls] == [
        ["node", "ls", "--format", "{{json .}}"],
        ["service", "inspect", "restdemo"],
        # --no-trunc: images with the digests the spec pins, errors in full.
        ["service", "ps", "restdemo", "--filter", "desired-state=running", "--no-trunc", "--format", "{{json .}}"],
    ]
    # The environment it was given (client.py's --docker-env) reaches the docker CLI.
    assert {call["DOCKER_HOST"] for call in calls} == {"tcp://127.0.0.1:23760"}


@pytest.mark.parametrize(
    "failing,answer,line",
    [
        (
            "node ls",
            {"stderr": "Error response from daemon: This node is not a swarm manager. Use ...\n", "rc": 1},
            "restdemo: `docker node ls --format {{json .}}` failed: "
            "Error response from daemon: This node is not a swarm manager. Use ...",
        ),
        (
            "node ls",
            {
                "stderr": "Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a "
                "leader. It's possible that too few managers are online. Make sure more than half of the "
                "managers are online.\n",
                "rc": 1,
            },
            "restdemo: `docker node ls --format {{json .}}` failed: Error response from daemon: rpc error: "
            "code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are "
            "online. Make sure more than half of the managers are online. "
            "(no leader: the swarm has lost its quorum, see docs/operations.md)",
        ),
        (
            "service inspect",
            {"stdout": "[]\n", "stderr": "Error: no such service: restdemo\n", "rc": 1},
            "restdemo: `docker service inspect restdemo` failed: Error: no such service: restdemo",
        ),
        (
            "service ps",
            {"stdout": "not json\n"},
            "restdemo: `docker service ps` gave what is not JSON lines: Expecting value: line 1 column 1 (char 0)",
        ),
    ],
)
def test_a_failing_docker_command_is_one_line_naming_it_and_exit_1(tmp_path, failing, answer, line):
    bin_dir = fake_docker(tmp_path, {**healthy_answers(), failing: answer})
    result = run_main(bin_dir, "restdemo")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", line + "\n")


def test_without_a_docker_cli_it_says_so_in_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_main(empty, "restdemo")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "restdemo: `docker node ls --format {{json .}}` failed: the docker CLI is not on PATH\n"


def test_output_of_an_unknown_shape_is_one_line_not_a_traceback(tmp_path):
    bin_dir = fake_docker(tmp_path, {**healthy_answers(), "node ls": {"stdout": '["a list, not a node"]\n'}})
    result = run_main(bin_dir, "restdemo")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("restdemo: docker's output")


def test_main_takes_one_service_or_more():
    result = subprocess.run([sys.executable, "-m", "ops.health"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert (result.returncode, result.stderr) == (2, "usage: python -m ops.health SERVICE [SERVICE ...]\n")


def test_each_service_of_a_compose_stack_has_its_lines_under_one_swarm_line(tmp_path):
    bin_dir = fake_docker(tmp_path, healthy_answers())
    result = run_main(bin_dir, "restdemo_web", "restdemo_api")
    lines = HEALTHY.splitlines()
    assert result.stdout.splitlines() == [
        lines[0],
        *(line.replace("restdemo", "restdemo_web", 1) for line in lines[1:]),
        *(line.replace("restdemo", "restdemo_api", 1) for line in lines[1:]),
    ]
    calls = [json.loads(line)["args"][:3] for line in (bin_dir / "calls.log").read_text().splitlines()]
    assert calls == [
        ["node", "ls", "--format"],
        ["service", "inspect", "restdemo_web"],
        ["service", "ps", "restdemo_web"],
        ["service", "inspect", "restdemo_api"],
        ["service", "ps", "restdemo_api"],
    ]
