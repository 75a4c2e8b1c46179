"""A swarm lab on one machine: each node its own dockerd in its own network namespace, joined by
a Linux bridge, every node's agent running inside its namespace against one moto server.

The bridge `rdlab0` is the lab's VPC, 10.77.0.0/24, with one subnet per zone in moto (conftest); a
node takes the address moto gave its instance, as an EC2 instance takes its private address, so
the leader finds the node's instance by address as it does on AWS. 10.77.0.1, in the root
namespace, is where moto and the registry listen (the subnet's router address, which AWS reserves).
Engines carry no labels: the leader labels nodes from what moto says.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import docker

from tests.support.net import wait_until

BRIDGE = "rdlab0"
GATEWAY = "10.77.0.1"
STATE = Path("/var/lib/restdemo-lab")
RUN = Path("/run/restdemo-lab")
PYTHON = sys.executable


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check)


def setup_bridge() -> None:
    teardown_bridge()
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    # Docker's FORWARD policy is DROP, and bridged frames pass through it (br_netfilter).
    sh("iptables", "-I", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT")


def teardown_bridge() -> None:
    sh("iptables", "-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT", check=False)
    sh("ip", "link", "del", BRIDGE, check=False)


# The agents' metrics period in the lab: the alarms are evaluated over periods this long instead of
# 60 s, everything else (thresholds, periods to alarm, missing data) as the program sets it.
LAB_METRICS_PERIOD = 10


@dataclass
class LabNode:
    name: str
    address: str  # its instance's private address (moto's)
    role: str
    zone: str
    instance_id: str
    registry: str
    bootstrap_timeout: int = 120
    stack: str = "lab"
    extra_environment: dict[str, str] = field(default_factory=dict)
    # daemon.json for the node's dockerd (what cloud-init writes), and its environment's additions.
    daemon_config: dict | None = None
    engine_environment: dict[str, str] = field(default_factory=dict)
    dockerd: subprocess.Popen | None = None
    agent: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def netns(self) -> str:
        return f"rdlab-{self.name}"

    @property
    def enter(self) -> list[str]:
        """Into this node's network namespace only (`ip netns exec` would also remount /sys and
        hide the cgroup file systems dockerd needs)."""
        return ["nsenter", f"--net=/run/netns/{self.netns}"]

    @property
    def socket(self) -> str:
        return f"unix://{RUN}/{self.name}.sock"

    @property
    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.socket, timeout=60)

    def create_namespace(self) -> None:
        for log in ("dockerd", "agent"):  # a lab's logs start empty
            (STATE / f"{self.name}-{log}.log").unlink(missing_ok=True)
        # So does its engine: a data root left by an interrupted lab holds another swarm's state.
        shutil.rmtree(STATE / self.name, ignore_errors=True)
        shutil.rmtree(RUN / self.name, ignore_errors=True)
        # A pid file left by an earlier lab (killed dockerd) makes dockerd refuse to start when
        # its pid has been reused since.
        (RUN / f"{self.name}.pid").unlink(missing_ok=True)
        sh("ip", "netns", "del", self.netns, check=False)
        sh("ip", "link", "del", f"rdv-{self.name}", check=False)
        sh("ip", "netns", "add", self.netns)
        sh("ip", "link", "add", f"rdv-{self.name}", "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        sh("ip", "link", "set", f"rdv-{self.name}", "master", BRIDGE, "up")
        for command in (
            ("ip", "addr", "add", f"{self.address}/24", "dev", "eth0"),
            ("ip", "link", "set", "eth0", "up"),
            ("ip", "link", "set", "lo", "up"),
            ("ip", "route", "add", "default", "via", GATEWAY),
        ):
            sh("ip", "netns", "exec", self.netns, *command)

    def start_engine(self) -> None:
        RUN.mkdir(parents=True, exist_ok=True)
        log = STATE / f"{self.name}-dockerd.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        flags = {
            "--data-root": STATE / self.name,
            "--exec-root": RUN / self.name,
            "--pidfile": RUN / f"{self.name}.pid",
            "-H": self.socket,
            "--insecure-registry": self.registry,
        }
        if self.daemon_config is not None:
            config = STATE / f"{self.name}-daemon.json"
            config.write_text(json.dumps(self.daemon_config))
            flags["--config-file"] = config
        self.dockerd = subprocess.Popen(
            [
                *self.enter,
                "dockerd",
                *(str(x) for pair in flags.items() for x in pair),
            ],
            stdout=open(log, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self.engine_environment},
        )
        wait_until(lambda: self.client.ping(), 30, what=f"dockerd of {self.name}")

    def stop_engine(self, kill: bool = False) -> None:
        if self.dockerd and self.dockerd.poll() is None:
            os.killpg(self.dockerd.pid, signal.SIGKILL if kill else signal.SIGTERM)
            self.dockerd.wait(60)

    def environment(self, moto_url: str, queue_url: str) -> dict[str, str]:
        return {
            **os.environ,
            "DOCKER_HOST": self.socket,
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "RESTDEMO_STACK": self.stack,
            "AWS_REGION": "eu-west-1",
            "RESTDEMO_ROLE": self.role,
            "RESTDEMO_STATE_TABLE": f"restdemo-{self.stack}-state",
            "RESTDEMO_SSM_PREFIX": f"/restdemo/{self.stack}",
            "RESTDEMO_LIFECYCLE_QUEUE_URL": queue_url,
            "RESTDEMO_LOG_GROUP": f"/restdemo/{self.stack}",
            "RESTDEMO_REGISTRY": self.registry,
            "RESTDEMO_GROUP_NAME": f"restdemo-{self.stack}-{self.role}s",
            # Short bounds, so failure paths end within a test's patience.
            "RESTDEMO_BOOTSTRAP_TIMEOUT": str(self.bootstrap_timeout),
            "RESTDEMO_PRIMARY_STALE_AFTER": "20",
            **{f"RESTDEMO_TLS_{n.upper()}_PARAMETER": f"/restdemo/{self.stack}/tls/{n}" for n in ("ca", "cert", "key")},
            "RESTDEMO_SECRETS_KEY": f"arn:aws:kms:eu-west-1:123456789012:key/{self.stack}-secrets",
            "RESTDEMO_INSTANCE_ID": self.instance_id,
            "RESTDEMO_AVAILABILITY_ZONE": self.zone,
            "RESTDEMO_ADVERTISE_ADDR": self.address,
            # Time-scaled metrics: a period of 10 s stands for CloudWatch's minute (tests/agent/alarms.py).
            "RESTDEMO_METRICS_PERIOD": str(LAB_METRICS_PERIOD),
            **self.extra_environment,
        }

    def agent_command(self, command: str, moto_url: str, queue_url: str, **popen) -> subprocess.Popen:
        log = STATE / f"{self.name}-agent.log"
        return subprocess.Popen(
            [*self.enter, PYTHON, "-m", "restdemo_agent.cli", command],
            env=self.environment(moto_url, queue_url),
            stdout=open(log, "ab"),
            stderr=subprocess.STDOUT,
            **popen,
        )

    def start_agent(self, moto_url: str, queue_url: str) -> None:
        self.agent = self.agent_command("run", moto_url, queue_url, start_new_session=True)

    def stop_agent(self) -> None:
        if self.agent and self.agent.poll() is None:
            os.killpg(self.agent.pid, signal.SIGTERM)
            self.agent.wait(30)

    def destroy(self) -> None:
        self.stop_agent()
        if self.dockerd and self.dockerd.poll() is None:
            try:
                self.client.swarm.leave(force=True)
            except docker.errors.APIError:
                pass
        self.stop_engine(kill=True)
        sh("ip", "netns", "del", self.netns, check=False)
        sh("ip", "link", "del", f"rdv-{self.name}", check=False)
        shutil.rmtree(STATE / self.name, ignore_errors=True)
        shutil.rmtree(RUN / self.name, ignore_errors=True)
        (RUN / f"{self.name}.pid").unlink(missing_ok=True)

    def agent_log(self) -> str:
        path = STATE / f"{self.name}-agent.log"
        return path.read_text() if path.exists() else ""
