"""The local stack's service on a real swarm: converges healthy, spreads answers over its
replicas, rolls to a new version and back from a broken one without failing a request, and
its page shows a rollout live in a real browser."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from infra.config.settings import parse_settings
from tests.e2e.conftest import report
from tests.e2e.harness import HERE, build_and_push, capture, push, steady_load
from tests.support.browser import chromium, read_page, read_timeline
from tests.support.docker_engine import build_image
from tests.support.net import wait_until
from tests.support.pulumi_program import stack_config, wire_config

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def v1(deployment):
    run = capture(deployment.registry, deployment.client, version="v1")
    ref = build_and_push(deployment.client, run.one("docker-build:index:Image").inputs)
    deployment.apply(run, ref)
    deployment.wait_converged(ref)
    wait_until(lambda: deployment.servers_up() == 3, 60, what="load balancer sees the 3 replicas up")
    return run, ref


def versions_of_running_tasks(deployment) -> set[str]:
    return {
        e.partition("=")[2]
        for t in deployment.running_tasks()
        for e in t["Spec"]["ContainerSpec"]["Env"]
        if e.startswith("VER=")
    }


def test_all_replicas_run_healthy_on_the_programs_image(deployment, v1):
    run, ref = v1
    tasks = deployment.running_tasks()
    assert len(tasks) == 3
    assert {t["Spec"]["ContainerSpec"]["Image"] for t in tasks} == {ref}
    for task in tasks:
        container = deployment.client.containers.get(task["Status"]["ContainerStatus"]["ContainerID"])
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
    (image_name,) = run.one("docker-build:index:Image").inputs["tags"]
    assert ref.startswith(f"{image_name}@sha256:") and image_name.startswith(f"{deployment.registry}/restdemo:v1-")


def test_answers_come_from_three_distinct_replicas(deployment, v1):
    answers = [requests.get(f"{deployment.lb_url}/health", timeout=5).json() for _ in range(30)]
    container_ids = {t["Status"]["ContainerStatus"]["ContainerID"][:12] for t in deployment.running_tasks()}
    assert {a["hostname"] for a in answers} == container_ids
    assert len(container_ids) == 3
    assert {a["version"] for a in answers} == {"v1"}


@pytest.fixture(scope="module")
def v2(deployment, v1):
    run = capture(deployment.registry, deployment.client, version="v2")
    return run, build_and_push(deployment.client, run.one("docker-build:index:Image").inputs)


def test_rolling_to_a_new_version_under_load_fails_no_request(deployment, v2):
    run, ref = v2
    with steady_load(deployment.lb_url, rate=20) as load:
        time.sleep(2)
        deployment.apply(run, ref)
        seconds = deployment.wait_converged(ref)
        time.sleep(2)
    local = parse_settings(wire_config(stack_config("local")))
    report(
        f"rollout of 3 replicas v1 -> v2 until swarm marked it completed: {seconds:.1f} s "
        f"(all-replicas lower bound {local.rollout_lower_bound():g} s; swarm's model "
        f"{local.swarm_update_seconds():g} s, {seconds / local.swarm_update_seconds():.2f}x); "
        f"{load.total} requests, {len(load.failures)} failed"
    )
    assert load.failures == []
    assert load.total >= 20 * seconds * 0.8
    assert set(load.versions) == {"v1", "v2"}
    assert versions_of_running_tasks(deployment) == {"v2"}
    assert {requests.get(f"{deployment.lb_url}/health", timeout=5).json()["version"] for _ in range(10)} == {"v2"}


def test_a_broken_image_is_rolled_back_by_swarm_without_failing_a_request(deployment, v2):
    run, good_ref = v2
    broken_name = f"{deployment.registry}/restdemo:broken-{uuid.uuid4().hex[:8]}"
    build_image(HERE, broken_name, dockerfile=HERE / "broken.Dockerfile", build_args={"IMAGE": good_ref})
    broken_ref = push(deployment.client, broken_name)
    with steady_load(deployment.lb_url, rate=20) as load:
        started = time.monotonic()
        deployment.apply(run, broken_ref)
        deployment.wait_rolled_back()
        seconds = time.monotonic() - started
        deployment.wait_converged(good_ref)
    report(f"broken image rolled back by swarm in {seconds:.1f} s; {load.total} requests, {len(load.failures)} failed")
    assert load.failures == []
    assert set(load.versions) == {"v2"}
    assert {t["Spec"]["ContainerSpec"]["Image"] for t in deployment.running_tasks()} == {good_ref}
    assert deployment.service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == good_ref


def replicas_on_page(browser) -> dict[str, str]:
    """hostname -> version, as the page shows its replicas now."""
    return {row["hostname"]: row["version"] for row in read_page(browser)["replicas"]}


def running_containers(deployment) -> dict[str, str]:
    """hostname (the container's short id) -> VER, of the service's running tasks."""
    return {
        task["Status"]["ContainerStatus"]["ContainerID"][:12]: next(
            e.partition("=")[2] for e in task["Spec"]["ContainerSpec"]["Env"] if e.startswith("VER=")
        )
        for task in deployment.running_tasks()
    }


def test_the_page_shows_the_replicas_rolling_to_a_new_version(deployment, v1):
    """The seed's demo, through the load balancer: the page shows every replica with its version,
    then old and new side by side while swarm rolls, then only the new ones; its timeline shows
    the marks of both versions during the rollout, then only v3 among the newest."""
    run = capture(deployment.registry, deployment.client, version="v3")
    ref = build_and_push(deployment.client, run.one("docker-build:index:Image").inputs)
    with chromium() as browser:
        browser.get(f"{deployment.lb_url}/")
        before = wait_until(
            lambda: (shown := replicas_on_page(browser)) == running_containers(deployment) and shown,
            60,
            interval=0.5,
            what="the page showing the 3 running replicas",
        )
        assert len(before) == 3 and "v3" not in before.values()
        old = set(before.values())
        deployment.apply(run, ref)
        mixed = []
        on_timeline = []  # the versions of the timeline's marks, at each look during the rollout

        def rolled() -> bool:
            shown = replicas_on_page(browser)
            if len(set(shown.values())) > 1:
                mixed.append(shown)
            on_timeline.append({m["version"] for m in read_timeline(browser)["marks"] if not m["failure"]})
            running = running_containers(deployment)
            return len(running) == 3 and set(running.values()) == {"v3"} and shown == running

        wait_until(rolled, 240, interval=0.5, what="the page showing only the 3 new replicas on v3")
        running = running_containers(deployment)
        # Rather than waiting for the old marks to leave (120 s): the last 5 s are v3, from the 3 new.
        timeline = wait_until(
            lambda: newest_marks(browser, 5, running), 30, interval=0.5, what="the timeline's newest marks all v3"
        )
    assert mixed, "the page never showed the old and new versions side by side"
    assert all(set(shown.values()) <= old | {"v3"} for shown in mixed)
    assert old | {"v3"} in on_timeline, "the timeline never showed the marks of the old and new versions"
    assert all(versions <= old | {"v3"} for versions in on_timeline)
    # The rollout at a glance: the old version's marks still on the left, then v3's.
    legend = [item["version"] for item in timeline["legend"]]
    assert set(legend[:-1]) == old and legend[-1] == "v3"
    old_marks = [m for m in timeline["marks"] if m["version"] in old]
    assert old_marks and {m["replica"] for m in old_marks} == set(before)
    failures = [m for m in timeline["marks"] if m["failure"]]
    report(f"the page's timeline over the rollout to v3: {len(timeline['marks'])} marks, {len(failures)} failed polls")


def newest_marks(browser, seconds: float, running: dict[str, str]) -> dict | None:
    """The timeline once its marks of the last `seconds` are from the `running` replicas, each in
    its version, and from each of them."""
    timeline = read_timeline(browser)
    newest = [m for m in timeline["marks"] if m["at"] > timeline["now"] - seconds * 1000]
    shown = {(m["replica"], m["version"]) for m in newest}
    return timeline if shown == set(running.items()) else None
