"""The service on nodes set up as cloud-init sets them up: the staging stack's docker.Service (its
placement, reservations and limits) on one manager and two workers whose engines log through
awslogs as the nodes' daemon.json says, to a CloudWatch Logs endpoint that accepts connections
and never answers. One lab, in order: placement, logging, a task over its memory limit, and last
a worker lost without warning (its engine killed) under load."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace

import docker
import pytest

from infra.swarm.cloud_init import daemon_config
from tests.agent.conftest import REGION, create_stack, form
from tests.agent.test_healing import LeaderProbe
from tests.e2e.conftest import report
from tests.e2e.engine_spec import create_service_spec, without_ingress
from tests.e2e.harness import LOCAL_HAPROXY, deployed, push, steady_load
from tests.support.agent_env import worker_node_with
from tests.support.docker_engine import require_engine
from tests.support.net import free_port, wait_until
from tests.support.pulumi_program import run_program, stack_config

pytestmark = pytest.mark.agent

STACK = "svc"
REPLICAS = 4


class StalledEndpoint:
    """A TCP server that accepts every connection and never answers (CloudWatch Logs or the NAT
    gone slow): awslogs' calls wait on it until their own timeouts."""

    def __init__(self, host: str):
        self.server = socket.create_server((host, free_port()))
        self.url = "http://{}:{}".format(*self.server.getsockname())
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            self.accepted.append(connection)  # held open, never read, never answered

    def close(self) -> None:
        for connection in [self.server, *self.accepted]:
            connection.close()


@pytest.fixture(scope="module")
def stalled_logs():
    from tests.agent.lab import GATEWAY

    endpoint = StalledEndpoint(GATEWAY)
    yield endpoint
    endpoint.close()


def node_daemon_config(endpoint: str) -> dict:
    """The logging part of the nodes' daemon.json (the rest is TLS and ports the lab sets itself),
    pointed at the stalled endpoint."""
    config = daemon_config(replace(worker_node_with(region=REGION), log_group=f"/restdemo/{STACK}"))
    logging = {key: value for key, value in config.items() if key.startswith("log")}
    logging["log-opts"] = {**logging["log-opts"], "awslogs-endpoint": endpoint}
    return logging


@pytest.fixture(scope="module")
def service_lab(lab_aws, nodes, lab_registry, lab_app_image, stalled_logs):
    url = lab_aws["url"]
    queue = create_stack(url, STACK)
    engine = {
        "daemon_config": node_daemon_config(stalled_logs.url),
        # awslogs signs its calls with the engine's credentials, as the instance role gives them.
        "engine_environment": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    }
    manager = nodes.add("sv1", "manager", STACK, **engine)
    workers = [nodes.add(f"sv{i}", "worker", STACK, **engine) for i in (2, 3)]
    form([manager], url, queue)
    form(workers, url, queue)
    host = require_engine()
    host.images.get(LOCAL_HAPROXY).tag(f"{lab_registry['push']}/haproxy", "svc")
    balancer = push(host, f"{lab_registry['push']}/haproxy:svc").replace(lab_registry["push"], lab_registry["pull"])
    run = run_program("staging", {**stack_config("staging"), "restdemo:replicas": str(REPLICAS)})
    inputs = run.one("docker:index/service:Service").inputs
    container = {**inputs["taskSpec"]["containerSpec"], "image": lab_app_image["pull"]}
    inputs = {**inputs, "taskSpec": {**inputs["taskSpec"], "containerSpec": container}}
    with deployed(
        manager.client, lab_registry["pull"], image=balancer, host=manager.address, constraints=["node.role==manager"]
    ) as deployment:
        spec = without_ingress(create_service_spec(inputs, deployment.network_ids))
        deployment.service_id = manager.client.api.create_service(**spec)["ID"]
        wait_until(lambda: len(deployment.running_tasks()) == REPLICAS, 180, interval=1, what="the replicas running")
        wait_until(lambda: deployment.servers_up() == REPLICAS, 90, interval=1, what="the balancer sees them")
        yield {"manager": manager, "workers": workers, "deployment": deployment, "inputs": inputs}


def role_of(service_lab: dict) -> dict[str, str]:
    return {n.id: n.attrs["Spec"]["Role"] for n in service_lab["manager"].client.nodes.list()}


def test_with_two_workers_the_service_runs_on_workers_only(service_lab):
    """Placement in the staging stack's spec (two workers): no replica on the manager, whose CPU
    and memory stay raft's and the API's; each replica placed with its reservation."""
    roles = role_of(service_lab)
    tasks = service_lab["deployment"].running_tasks()
    assert [roles[t["NodeID"]] for t in tasks] == ["worker"] * REPLICAS
    assert len({t["NodeID"] for t in tasks}) == 2  # both workers
    resources = tasks[0]["Spec"]["Resources"]
    assert resources == {
        "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 256 * 1024 * 1024},
        "Reservations": {"NanoCPUs": 100_000_000, "MemoryBytes": 64 * 1024 * 1024},
    }


def test_logs_to_a_stalled_cloudwatch_do_not_stall_the_service(service_lab, stalled_logs):
    """The engines' awslogs driver reached for the endpoint, which never answers; in non-blocking
    mode the containers' writes (the app's access log) go to a buffer and the service answers."""
    assert stalled_logs.accepted, "the engines never tried the log endpoint"
    with steady_load(service_lab["deployment"].lb_url, rate=20) as load:
        time.sleep(15)
    assert load.failures == [] and load.total >= 250


def test_a_task_over_its_memory_limit_is_killed_while_the_manager_keeps_leading(service_lab, lab_app_image):
    """A replica that leaks past the service's memory limit (the program's, 256 MiB) is killed by
    the kernel, not the node: the manager's raft keeps its leader throughout."""
    manager = service_lab["manager"]
    limit = int(service_lab["inputs"]["taskSpec"]["resources"]["limits"]["memoryBytes"])  # mocks give floats
    leak = "b = []\nwhile True: b.append(bytearray(16 << 20))"
    with LeaderProbe([manager]) as probe:
        hog = manager.client.services.create(
            lab_app_image["pull"],
            name="leak",
            command=["python3", "-c", leak],
            constraints=["node.role==manager"],
            resources=docker.types.Resources(mem_limit=limit),
            restart_policy=docker.types.RestartPolicy(condition="none"),
        )
        try:
            task = wait_until(
                lambda: next((t for t in hog.tasks() if t["Status"]["State"] == "failed"), None),
                120,
                interval=1,
                what="the leaking task killed",
            )
            time.sleep(3)
        finally:
            hog.remove()
    assert task["Status"]["ContainerStatus"]["ExitCode"] == 137  # SIGKILL from the OOM killer
    assert probe.leaderless == [] and probe.samples > 5


def test_a_worker_lost_without_warning_under_load(service_lab):
    """A worker's engine killed (no drain, no notice) under 20 req/s: the failed requests and the
    seconds until swarm runs every replica again, on the worker left. Measured, not promised."""
    deployment = service_lab["deployment"]
    lost = service_lab["workers"][1]
    lost_id = lost.client.info()["Swarm"]["NodeID"]
    on_lost = sum(t["NodeID"] == lost_id for t in deployment.running_tasks())
    assert on_lost > 0
    with steady_load(deployment.lb_url, rate=20) as load:
        time.sleep(3)
        started = time.monotonic()
        lost.stop_engine(kill=True)
        try:
            # Every slot running again elsewhere (a slot may briefly have two tasks running).
            wait_until(
                lambda: len({t["Slot"] for t in deployment.running_tasks() if t["NodeID"] != lost_id}) == REPLICAS,
                180,
                interval=0.5,
                what="every replica running again without the lost worker",
            )
        except TimeoutError as exc:  # what swarm made of it, to read in the failure
            nodes = [(n.id, n.attrs["Status"]["State"]) for n in service_lab["manager"].client.nodes.list()]
            tasks = [(t["NodeID"], t["DesiredState"], t["Status"]["State"]) for t in deployment.service.tasks()]
            raise AssertionError(f"{exc}; nodes {nodes}; tasks {tasks}") from None
        seconds = time.monotonic() - started
        time.sleep(3)
    report(
        f"worker lost without warning (engine killed) under 20 req/s, {on_lost} of {REPLICAS} replicas on it: "
        f"replicas back at desired in {seconds:.1f} s; {load.total} requests, {len(load.failures)} failed "
        "(lab balancer: HAProxy checks every 1 s)"
    )
    assert load.total > 0
