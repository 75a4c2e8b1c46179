"""Your own service by settings alone: a second, different app (tests/e2e/second_app: its own
Dockerfile on the project's base image, port 9090, /ready, its own HEALTHCHECK, no restdemo-cli)
deployed by the same program on the real swarm: healthy, answering through the load balancer,
rolled forward and rolled back without a failed request."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
import yaml

from infra.config.settings import parse_settings
from tests.e2e.conftest import report
from tests.e2e.harness import Backend, build_and_push, capture, deployed, push, steady_load
from tests.support.docker_engine import build_image
from tests.support.net import wait_until
from tests.support.pulumi_program import REPO, stack_config, wire_config

pytestmark = pytest.mark.e2e

APP = REPO / "tests" / "e2e" / "second_app"
# Everything that makes it this app rather than restdemo: settings only.
SETTINGS = {
    "serviceName": "second-app",
    "buildContext": "tests/e2e/second_app",
    "buildTarget": "serve",
    "containerPort": "9090",
    "healthCheck": "[]",
    "healthCheckPath": "/ready",
    "serviceEnvironment": '["GREETING=hello from the second app"]',
    # A shorter rollout than restdemo's defaults: the same mechanism, less waiting.
    "updateDelay": "5s",
    "updateMonitor": "10s",
}
BACKEND = Backend("second-app", 9090, "/ready")


def test_the_documents_example_is_these_settings():
    """docs/your-app.md shows the second app's settings as a stack file: they are the ones deployed here."""
    text = (REPO / "docs" / "your-app.md").read_text()
    example = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])["config"]
    documented = parse_settings(wire_config(example))
    deployed = settings_of("v1")
    for name in ("service_name", "build_context", "build_target", "container_port", "health_check"):
        assert getattr(documented, name) == getattr(deployed, name), name
    assert (documented.health_check_path, documented.service_environment) == ("/ready", deployed.service_environment)


def settings_of(version: str):
    config = {**stack_config("local"), **{f"restdemo:{k}": v for k, v in SETTINGS.items()}, "restdemo:version": version}
    return parse_settings(wire_config(config))


@pytest.fixture(scope="module")
def deployment(swarm, registry):
    with deployed(swarm, registry, backend=BACKEND) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def v1(deployment):
    run = capture(deployment.registry, deployment.client, version="v1", **SETTINGS)
    assert Backend.of(run) == BACKEND  # what the load balancer is told is what the program deploys
    ref = build_and_push(deployment.client, run.one("docker-build:index:Image").inputs)
    deployment.apply(run, ref)
    deployment.wait_converged(ref)
    wait_until(lambda: deployment.servers_up() == 3, 60, what="load balancer sees the 3 replicas up")
    return run, ref


def test_its_image_is_its_own_built_by_the_program(deployment, v1):
    run, ref = v1
    build = run.one("docker-build:index:Image").inputs
    assert (build["context"]["location"], build["dockerfile"]["location"], build["target"]) == (
        "tests/e2e/second_app",
        "tests/e2e/second_app/Dockerfile",
        "serve",
    )
    image = deployment.client.images.get(ref)
    assert image.attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "python3", "/srv/check.py"]
    assert "restdemo-cli" not in " ".join(image.attrs["Config"]["Cmd"] + image.attrs["Config"]["Healthcheck"]["Test"])
    service = run.one("docker:index/service:Service").inputs
    # The image's own check, restated in the spec from its Dockerfile.
    assert service["taskSpec"]["containerSpec"]["healthcheck"]["tests"] == ["CMD", "python3", "/srv/check.py"]
    assert service["endpointSpec"]["ports"][0]["targetPort"] == 9090


def test_all_replicas_turn_healthy_by_its_own_check(deployment, v1):
    _, ref = v1
    tasks = deployment.running_tasks()
    assert len(tasks) == 3 and {t["Spec"]["ContainerSpec"]["Image"] for t in tasks} == {ref}
    for task in tasks:
        container = deployment.client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
        assert container.attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "python3", "/srv/check.py"]
        assert "GREETING=hello from the second app" in container.attrs["Config"]["Env"]


def test_it_answers_through_the_load_balancer_from_every_replica(deployment, v1):
    answers = [requests.get(f"{deployment.lb_url}/ready", timeout=5).json() for _ in range(30)]
    container_ids = {t["Status"]["ContainerStatus"]["ContainerID"][:12] for t in deployment.running_tasks()}
    assert {a["hostname"] for a in answers} == container_ids and len(container_ids) == 3
    assert {(a["service"], a["version"], a["greeting"]) for a in answers} == {
        ("second-app", "v1", "hello from the second app")
    }


@pytest.fixture(scope="module")
def v2(deployment, v1):
    run = capture(deployment.registry, deployment.client, version="v2", **SETTINGS)
    return run, build_and_push(deployment.client, run.one("docker-build:index:Image").inputs)


def test_it_rolls_forward_under_load_failing_no_request(deployment, v2):
    run, ref = v2
    with steady_load(deployment.lb_url, rate=20, path="/ready") as load:
        time.sleep(2)
        deployment.apply(run, ref)
        seconds = deployment.wait_converged(ref)
        time.sleep(2)
    model = settings_of("v2").swarm_update_seconds()
    report(
        f"second app: rollout of 3 replicas v1 -> v2 in {seconds:.1f} s (swarm's model {model:g} s); "
        f"{load.total} requests, {len(load.failures)} failed"
    )
    assert load.failures == []
    assert set(load.versions) == {"v1", "v2"}
    assert {requests.get(f"{deployment.lb_url}/ready", timeout=5).json()["version"] for _ in range(10)} == {"v2"}


def test_a_broken_release_is_rolled_back_failing_no_request(deployment, v2):
    run, good_ref = v2
    broken_name = f"{deployment.registry}/second-app:broken-{uuid.uuid4().hex[:8]}"
    build_image(APP, broken_name, dockerfile=APP / "broken.Dockerfile", build_args={"IMAGE": good_ref})
    broken_ref = push(deployment.client, broken_name)
    with steady_load(deployment.lb_url, rate=20, path="/ready") as load:
        started = time.monotonic()
        deployment.apply(run, broken_ref)
        deployment.wait_rolled_back()
        seconds = time.monotonic() - started
        deployment.wait_converged(good_ref)
    report(
        f"second app: broken release rolled back in {seconds:.1f} s; {load.total} requests, {len(load.failures)} failed"
    )
    assert load.failures == []
    assert set(load.versions) == {"v2"}
    assert deployment.service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == good_ref
