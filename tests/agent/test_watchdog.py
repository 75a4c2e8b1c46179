"""The engine watchdog (infra/swarm/cloud_init.py watchdog_script) on a lab node: the script the
nodes' timer runs, with the AWS CLI, against the node's own dockerd and the lab's moto. A dead
engine has its node power itself off (the node's replace-me script; its power-off stands for what
EC2 then reports, an instance stopped), which Auto Scaling replaces (moto does not; the lifecycle
model does for the groups a test names, as "Health checks for instances in an Auto Scaling group"
documents); a node that is leaving is left alone; managers go one at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from infra.swarm.cloud_init import REPLACE_ME_SCRIPT, watchdog_script
from tests.agent.conftest import aws, create_stack, form
from tests.agent.lab import RUN, LabNode
from tests.agent.test_healing import LeaderProbe
from tests.support.agent_env import WORKER_NODE, worker_node_with
from tests.support.docker_engine import require_tool
from tests.support.lifecycle_model import TERMINATING
from tests.support.net import wait_until

pytestmark = pytest.mark.agent

STACK = "watch"
DEAD_AFTER = 6  # seconds: the lab's engineDeadAfter


def members(url: str, group: str) -> dict[str, tuple[str, str]]:
    """The group's instances: id -> (lifecycle state, health)."""
    (found,) = aws(url, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return {i["InstanceId"]: (i["LifecycleState"], i["HealthStatus"]) for i in found["Instances"]}


def replace_me_script(watchdog: Path) -> Path:
    """cloud-init's restdemo-replace-me, beside the rendered watchdog."""
    path = watchdog.parent / "restdemo-replace-me"
    if not path.exists():
        path.write_text(REPLACE_ME_SCRIPT.format(request=f"{watchdog.parent}/replace-me"))
        path.chmod(0o755)
    return path


def ec2_state(url: str, instance_id: str) -> str:
    (reservation,) = aws(url, "ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]["State"]["Name"]


def rendered(directory: Path, node) -> Path:
    require_tool("curl", "apt-get install curl")
    path = directory / "restdemo-engine-watchdog"
    path.write_text(watchdog_script(replace(node, engine_dead_after_seconds=DEAD_AFTER)))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def watchdog(tmp_path_factory):
    """A worker's rendered script, with the lab's bound."""
    return rendered(tmp_path_factory.mktemp("watchdog"), WORKER_NODE)


def look(watchdog: Path, node: LabNode, url: str) -> subprocess.CompletedProcess:
    """One run of the timer's service on `node`."""
    environment = {
        **os.environ,
        # The AWS CLI of the project's environment, as the nodes have theirs.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "RESTDEMO_DOCKER_SOCKET": f"{RUN}/{node.name}.sock",
        "RESTDEMO_WATCHDOG_STATE": f"{RUN}/{node.name}-engine-answered",
        "RESTDEMO_WATCHDOG_PAUSE": f"{RUN}/{node.name}-watchdog.pause",
        "RESTDEMO_INSTANCE_ID": node.instance_id,
        # The lab's engines are not systemd's: the restart is only logged.
        "RESTDEMO_ENGINE_RESTART": "true",
        # The node's own replace-me script, its power-off standing for what EC2 then reports: stopped.
        "RESTDEMO_REPLACE_ME": str(replace_me_script(watchdog)),
        "RESTDEMO_POWEROFF": f"aws ec2 stop-instances --region eu-west-1 --instance-ids {node.instance_id}",
    }
    return subprocess.run([*node.enter, str(watchdog)], env=environment, capture_output=True, text=True, timeout=60)


def test_dead_engine_replaced(lab_aws, nodes, watchdog):
    url = lab_aws["url"]
    create_stack(url, STACK)
    node = nodes.add("wd1", "worker", STACK)
    assert look(watchdog, node, url).returncode == 0
    node.stop_engine(kill=True)
    silent = look(watchdog, node, url)
    assert (silent.returncode, silent.stdout.startswith("engine-silent seconds=")) == (0, True), silent
    assert ec2_state(url, node.instance_id) == "running"  # within the bound: a restart, a busy engine
    time.sleep(DEAD_AFTER + 1)
    restart = look(watchdog, node, url)  # half the bound passed: one restart first
    assert restart.stdout.startswith("engine-restart seconds="), restart
    assert ec2_state(url, node.instance_id) == "running"
    dead = look(watchdog, node, url)
    assert dead.returncode == 0, dead.stderr
    assert dead.stdout.startswith("engine-dead seconds=") and f"replacing {node.instance_id}\n" in dead.stdout
    assert "replacing this node: the engine watchdog: dockerd silent" in dead.stdout
    # It powered itself off: its group sees an instance that is not running (no AWS call of its own).
    assert ec2_state(url, node.instance_id) in ("stopping", "stopped")


def test_a_leaving_or_paused_node_whose_engine_stopped_is_left_alone(lab_aws, nodes, watchdog):
    """An operator who stops docker on purpose pauses the watchdog first; a node being drained and
    terminated (Terminating:Wait) stops its engine on the way out, and the group is already
    replacing it: neither is marked."""
    url = lab_aws["url"]
    node = nodes.add("wd2", "worker", STACK)
    assert look(watchdog, node, url).returncode == 0
    node.stop_engine(kill=True)
    pause = RUN / f"{node.name}-watchdog.pause"
    pause.touch()
    time.sleep(DEAD_AFTER + 1)
    assert look(watchdog, node, url).stdout == f"engine-silent: paused by {pause}\n"
    pause.unlink()
    lab_aws["lifecycle"].begin(f"restdemo-{STACK}-workers", node.instance_id, TERMINATING)
    assert look(watchdog, node, url).stdout.startswith("engine-restart seconds=")
    left = look(watchdog, node, url)
    assert left.returncode == 0, left.stderr
    assert left.stdout.strip().endswith("lifecycle=Terminating:Wait: not in service, left alone")
    assert ec2_state(url, node.instance_id) == "running"


MANAGERS_STACK = "watchq"
MANAGERS_GROUP = f"restdemo-{MANAGERS_STACK}-managers"


def hang(node: LabNode) -> None:
    """The node's engine (and the agent, a container of it on AWS) stops answering, still running."""
    os.killpg(node.dockerd.pid, signal.SIGSTOP)
    os.killpg(node.agent.pid, signal.SIGSTOP)


def kill(node: LabNode) -> None:
    """The instance is gone: its agent and engine with it (SIGKILL ends a stopped process too)."""
    if node.agent.poll() is None:
        os.killpg(node.agent.pid, signal.SIGKILL)
        node.agent.wait(10)
    node.stop_engine(kill=True)


def test_watchdog_replaces_one_manager_at_a_time(lab_aws, nodes, tmp_path):
    """Two of five managers' engines hang together (a dockerd bug, an EBS stall): both watchdogs
    look at the same moment, exactly one has its instance replaced; the other waits until that
    replacement has joined, then goes; the swarm keeps a leader throughout. Auto Scaling's health
    replacement is the lifecycle model's (through the drain hook, which nobody can complete for a
    hung manager, so it times out)."""
    url = lab_aws["url"]
    queue = create_stack(url, MANAGERS_STACK, drain_timeout=30)
    lab_aws["lifecycle"].replace_unhealthy_in(MANAGERS_GROUP)
    script = rendered(
        tmp_path,
        worker_node_with(role="manager", group_name=MANAGERS_GROUP, state_table=f"restdemo-{MANAGERS_STACK}-state"),
    )
    managers = [nodes.add(f"wq{i}", "manager", MANAGERS_STACK) for i in range(1, 6)]
    form(managers[:1], url, queue)
    form(managers[1:], url, queue)
    first_leader = managers[0]  # it formed the swarm
    hung = managers[3:]
    live = managers[:3]
    for node in managers:
        assert look(script, node, url).returncode == 0  # answering: the count starts afresh
    try:
        with LeaderProbe(live) as probe:
            for node in hung:
                hang(node)
            time.sleep(DEAD_AFTER + 1)
            with ThreadPoolExecutor(2) as looks:  # both restart their engine first (half the bound)
                assert all("engine-restart" in r.stdout for r in looks.map(lambda n: look(script, n, url), hung))
            with ThreadPoolExecutor(2) as looks:  # then both decide at the same moment
                outputs = list(looks.map(lambda n: look(script, n, url).stdout, hung))
            said = {n.name: out for n, out in zip(hung, outputs, strict=True)}
            marked = [n for n in hung if ec2_state(url, n.instance_id) != "running"]
            assert len(marked) == 1, said
            (first,) = marked
            (second,) = [n for n in hung if n is not first]
            assert "waiting, another manager" in said[second.name], said

            # The group replaces the first (drain hook timed out, then a launch through the launch hook).
            wait_until(lambda: first.instance_id not in members(url, MANAGERS_GROUP), 90, what="the first terminated")
            kill(first)
            (new,) = set(members(url, MANAGERS_GROUP)) - {m.instance_id for m in managers}
            assert members(url, MANAGERS_GROUP)[new][0] == "Pending:Wait"
            waiting = look(script, second, url)
            assert "waiting, another manager is being replaced" in waiting.stdout, waiting
            replacement = nodes.add("wqr", "manager", MANAGERS_STACK, instance=new)
            form([replacement], url, queue)
            wait_until(
                lambda: members(url, MANAGERS_GROUP)[new][0] == "InService", 60, what="the replacement in service"
            )
            probe.managers.append(replacement)

            # Now the second goes: the lease's holder has left and the group is whole again.
            gone = look(script, second, url)
            assert f"replacing {second.instance_id}\n" in gone.stdout, gone
            assert ec2_state(url, second.instance_id) != "running"
        assert probe.leaderless == []
        reachable = [
            n
            for n in first_leader.client.nodes.list()
            if (n.attrs.get("ManagerStatus") or {}).get("Reachability") == "reachable"
        ]
        assert len(reachable) == 4  # three that never hung and the replacement
    finally:
        for node in hung:
            kill(node)
