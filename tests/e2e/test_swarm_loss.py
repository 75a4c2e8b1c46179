"""A swarm formed anew (a one-manager stack's replacement, `docker swarm leave --force`, a reset of
Docker Desktop) has no service: `up --refresh` reads that back and creates it again through the same
spec path, while an `up` without a refresh updates a service that is no longer there.

Last in the e2e tier by name: it leaves and re-forms the engine's swarm."""

from __future__ import annotations

import docker
import pytest
import requests

from tests.e2e.harness import NETWORK_ID, Deployment, build_and_push, capture, removed, start_load_balancer
from tests.support.net import wait_until

pytestmark = pytest.mark.e2e


def spec_without_network(spec: dict) -> dict:
    task = {k: v for k, v in spec["TaskTemplate"].items() if k != "Networks"}
    return {**spec, "TaskTemplate": task}


def test_a_service_gone_with_its_swarm_is_created_again_by_up_with_refresh(swarm_of_our_own, registry):
    swarm = swarm_of_our_own
    run = capture(registry, swarm, version="v1")
    ref = build_and_push(swarm, run.one("docker-build:index:Image").inputs)
    deployment = Deployment(swarm, registry, {})
    lb_url, *_ = start_load_balancer(swarm, _network(deployment))
    deployment.apply(run, ref)
    deployment.wait_converged(ref)
    before = deployment.service.attrs
    assert deployment.refresh() == []  # a refresh of a swarm that kept everything changes nothing

    swarm.swarm.leave(force=True)
    swarm.swarm.init(advertise_addr="127.0.0.1")
    with pytest.raises(docker.errors.NotFound):  # `up` without a refresh: the recorded service is gone
        deployment.apply(run, ref)

    assert deployment.refresh() == ["service", "network"]
    deployment.apply(run, ref)
    deployment.wait_converged(ref)
    after = deployment.service.attrs
    assert after["ID"] != before["ID"]
    assert spec_without_network(after["Spec"]) == spec_without_network(before["Spec"])
    lb_url, balancer, config = start_load_balancer(swarm, deployment.network_ids[NETWORK_ID])
    try:
        answer = wait_until(lambda: _health(lb_url), 90, interval=1, what="the re-created service answering")
        assert answer["version"] == "v1"
    finally:
        for service in (deployment.service, balancer):
            service.remove()
        wait_until(lambda: removed(swarm.networks.get(deployment.network_ids[NETWORK_ID])), 90, interval=1)
        config.remove()


def _network(deployment: Deployment) -> str:
    deployment.network_ids[NETWORK_ID] = deployment.client.networks.create(
        "restdemo", driver="overlay", attachable=True
    ).id
    return deployment.network_ids[NETWORK_ID]


def _health(url: str) -> dict | None:
    answer = requests.get(f"{url}/health", timeout=2)
    return answer.json() if answer.status_code == 200 else None
