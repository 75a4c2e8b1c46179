"""The engine watchdog (infra/swarm/cloud_init.py watchdog_script) on a lab node: the script the
nodes' timer runs, with the AWS CLI, against the node's own dockerd and the lab's moto. A dead
engine gets its instance marked unhealthy, which Auto Scaling replaces (moto keeps the mark and
replaces nothing: that step is AWS's, documented in "Health checks for instances in an Auto
Scaling group"); a node that is leaving is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from infra.swarm.cloud_init import watchdog_script
from tests.agent.conftest import aws, create_stack
from tests.agent.lab import RUN, LabNode
from tests.support.agent_env import WORKER_NODE
from tests.support.docker_engine import require_tool
from tests.support.lifecycle_model import TERMINATING

pytestmark = pytest.mark.agent

STACK = "watch"
DEAD_AFTER = 6  # seconds: the lab's engineDeadAfter


def health(url: str, instance_id: str) -> str:
    groups = aws(url, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"restdemo-{STACK}-workers"])
    return next(
        i["HealthStatus"] for i in groups["AutoScalingGroups"][0]["Instances"] if i["InstanceId"] == instance_id
    )


@pytest.fixture(scope="module")
def watchdog(tmp_path_factory):
    """The rendered script, with the lab's bound."""
    require_tool("curl", "apt-get install curl")
    path = tmp_path_factory.mktemp("watchdog") / "restdemo-engine-watchdog"
    path.write_text(watchdog_script(replace(WORKER_NODE, engine_dead_after_seconds=DEAD_AFTER)))
    path.chmod(0o755)
    return path


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
    }
    return subprocess.run([*node.enter, str(watchdog)], env=environment, capture_output=True, text=True, timeout=60)


def test_dead_engine_replaced(lab_aws, nodes, watchdog):
    url = lab_aws["url"]
    create_stack(url, STACK)
    node = nodes.add("wd1", "worker", STACK)
    assert look(watchdog, node, url).returncode == 0
    assert health(url, node.instance_id) == "Healthy"
    node.stop_engine(kill=True)
    silent = look(watchdog, node, url)
    assert (silent.returncode, silent.stdout.startswith("engine-silent seconds=")) == (0, True), silent
    assert health(url, node.instance_id) == "Healthy"  # within the bound: a restart, a busy engine
    time.sleep(DEAD_AFTER + 1)
    restart = look(watchdog, node, url)  # half the bound passed: one restart first
    assert restart.stdout.startswith("engine-restart seconds="), restart
    assert health(url, node.instance_id) == "Healthy"
    dead = look(watchdog, node, url)
    assert dead.returncode == 0, dead.stderr
    assert dead.stdout.endswith(f"marked {node.instance_id} unhealthy; its group replaces it\n")
    assert health(url, node.instance_id) == "Unhealthy"


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
    assert health(url, node.instance_id) == "Healthy"
