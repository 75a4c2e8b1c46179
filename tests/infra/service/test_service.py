"""infra/service/service.py: the replicated service, its network and its provider."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.pulumi_program import REPO, run_program, stack_config

pytestmark = pytest.mark.unit


def test_local_provider_is_the_local_engine(local):
    provider = local.one("pulumi:providers:docker")
    assert provider.inputs == {"host": "unix:///var/run/docker.sock"}
    service = local.one("docker:index/service:Service")
    assert service.provider.startswith(provider.urn + "::")


def test_service_is_exactly_the_architecture(local):
    spec = local.one("docker:index/service:Service").inputs
    assert spec["name"] == "restdemo"
    assert spec["mode"] == {"replicated": {"replicas": 3}}
    container = spec["taskSpec"]["containerSpec"]
    assert container["image"] == local.outputs["image"]
    assert re.fullmatch(r"127\.0\.0\.1:5000/restdemo:v1-[0-9a-f]{12}@sha256:[0-9a-f]{64}", container["image"])
    assert container["env"] == {"VER": "v1"}
    assert container["healthcheck"] == {
        "tests": ["CMD", "restdemo-cli", "show", "health", "--timeout", "4"],
        "interval": "5s",
        "timeout": "5s",
        "retries": 3,
        "startPeriod": "10s",
    }
    assert (container["stopSignal"], container["stopGracePeriod"]) == ("SIGTERM", "15s")
    assert spec["updateConfig"] == {
        "parallelism": 1,
        "delay": "15s",
        "order": "start-first",
        "failureAction": "rollback",
        "monitor": "30s",
        "maxFailureRatio": "0",
    }
    assert spec["rollbackConfig"] == {
        "parallelism": 1,
        "delay": "0s",
        "order": "start-first",
        "failureAction": "pause",
        "monitor": "30s",
        "maxFailureRatio": "0",
    }
    assert spec["endpointSpec"] == {
        "mode": "vip",
        "ports": [
            {"name": "http", "protocol": "tcp", "targetPort": 8000, "publishedPort": 8000, "publishMode": "ingress"}
        ],
    }
    assert spec["convergeConfig"] == {"delay": "7s", "timeout": "10m"}
    # Daemon defaults spelt out, so a second preview shows no diff.
    assert spec["taskSpec"]["restartPolicy"] == {"condition": "any", "delay": "5s", "maxAttempts": 0, "window": "0s"}
    assert spec["taskSpec"]["networksAdvanceds"] == [{"id": "restdemo-network-id"}]
    assert spec["taskSpec"]["resources"] == {
        "limits": {"memoryBytes": 256 * 1024 * 1024, "nanoCpus": 500_000_000},
        "reservation": {"memoryBytes": 64 * 1024 * 1024, "nanoCpus": 100_000_000},
    }
    assert "placement" not in spec["taskSpec"]  # one node: nowhere else to go
    assert "auth" not in spec


@pytest.mark.parametrize(
    "stack,constraints",
    [
        ("dev", None),
        ("staging", ["node.role==worker", "node.labels.role==worker"]),
        ("prod", ["node.role==worker", "node.labels.role==worker"]),
    ],
)
def test_with_two_workers_or_more_the_service_keeps_off_the_managers(stack, constraints):
    """Raft keeps the managers' CPU and memory; dev's lone worker is no redundancy, so its service
    may still run on the manager when the worker is lost."""
    placement = run_program(stack).one("docker:index/service:Service").inputs["taskSpec"]["placement"]
    assert placement.get("constraints") == constraints
    assert placement["prefs"] == ["node.labels.availability_zone"]


def test_a_reservation_above_its_limit_is_refused_before_anything_is_made():
    from infra.config.settings import SettingsError, parse_settings

    config = {
        **stack_config("local"),
        "restdemo:serviceMemoryReservationMb": "512",
        "restdemo:serviceCpuReservation": "1",
    }
    with pytest.raises(SettingsError) as error:
        parse_settings(config)
    assert str(error.value).splitlines()[-2:] == [
        "  restdemo:serviceMemoryReservationMb = 512: must not be above restdemo:serviceMemoryLimitMb = 256",
        "  restdemo:serviceCpuReservation = 1: must not be above restdemo:serviceCpuLimit = 0.5",
    ]


def test_service_network_is_an_attachable_overlay(local):
    network = local.one("docker:index/network:Network")
    assert network.inputs == {"name": "restdemo", "driver": "overlay", "attachable": True}
    # Read back with the driver's own options: never compared, or every `up` would replace it.
    assert network.ignore_changes == ["options"]


def test_on_aws_the_service_network_is_encrypted_and_only_the_services():
    network = run_program("dev").one("docker:index/network:Network")
    assert (network.inputs["name"], network.inputs["options"]) == ("restdemo-internal", {"encrypted": ""})
    # No other container may join it (a taken-over node's): the replicas only through the published port.
    assert network.inputs["attachable"] is False


def test_service_healthcheck_is_the_images_own(local):
    dockerfile = (REPO / "app" / "Dockerfile").read_text()
    healthcheck = re.search(
        r"HEALTHCHECK --interval=(\S+) --timeout=(\S+) --start-period=(\S+) --retries=(\d+) \\\n\s+CMD (\[.*\])",
        dockerfile,
    )
    spec = local.one("docker:index/service:Service").inputs["taskSpec"]["containerSpec"]["healthcheck"]
    assert ["CMD", *json.loads(healthcheck.group(5))] == spec["tests"]
    assert healthcheck.group(1, 2, 3) == (spec["interval"], spec["timeout"], spec["startPeriod"])
    assert int(healthcheck.group(4)) == spec["retries"]


def test_settings_flow_into_the_service():
    config = {
        **stack_config("local"),
        "restdemo:replicas": 5,
        "restdemo:version": "v3",
        "restdemo:updateDelay": "1m",
        "restdemo:publishedPort": 8080,
        "restdemo:stopGracePeriod": "30s",
    }
    spec = run_program("local", config).one("docker:index/service:Service").inputs
    assert spec["mode"]["replicated"]["replicas"] == 5
    assert spec["taskSpec"]["containerSpec"]["env"] == {"VER": "v3"}
    assert spec["taskSpec"]["containerSpec"]["stopGracePeriod"] == "30s"
    assert spec["updateConfig"]["delay"] == "1m"  # the provider's read-back form (shortDur)
    assert spec["endpointSpec"]["ports"][0]["publishedPort"] == 8080


SECOND_APP = {
    "restdemo:serviceName": "second-app",
    "restdemo:buildContext": "tests/e2e/second_app",
    "restdemo:buildTarget": "serve",
    "restdemo:containerPort": 9090,
    "restdemo:healthCheck": [],
    "restdemo:healthCheckPath": "/ready",
    "restdemo:serviceEnvironment": ["GREETING=hello", "WORKERS=2"],
}


def test_your_own_service_is_settings_only():
    """Another app: its name on the service and its network, its port, its environment beside VER,
    and the image's own HEALTHCHECK restated from its Dockerfile (tests/e2e/second_app)."""
    run = run_program("local", {**stack_config("local"), **SECOND_APP})
    spec = run.one("docker:index/service:Service").inputs
    container = spec["taskSpec"]["containerSpec"]
    assert spec["name"] == "second-app"
    assert container["healthcheck"] == {
        "tests": ["CMD", "python3", "/srv/check.py"],
        "interval": "2s",
        "timeout": "2s",
        "retries": 2,
        "startPeriod": "5s",
    }
    assert container["env"] == {"GREETING": "hello", "WORKERS": "2", "VER": "v1"}
    assert spec["endpointSpec"]["ports"][0] | {} == {
        "name": "http",
        "protocol": "tcp",
        "targetPort": 9090,
        "publishedPort": 8000,
        "publishMode": "ingress",
    }
    assert run.one("docker:index/network:Network").inputs["name"] == "second-app"
    assert (run.outputs["serviceName"], run.outputs["healthCheckPath"]) == ("second-app", "/ready")


def test_a_health_check_command_of_your_own_runs_at_the_contracts_timings():
    config = {**stack_config("local"), "restdemo:healthCheck": ["CMD-SHELL", "wget -qO- localhost:8000/ping"]}
    health = run_program("local", config).one("docker:index/service:Service").inputs["taskSpec"]["containerSpec"]
    assert health["healthcheck"] == {
        "tests": ["CMD-SHELL", "wget -qO- localhost:8000/ping"],
        "interval": "5s",
        "timeout": "5s",
        "retries": 3,
        "startPeriod": "10s",
    }


def test_on_aws_your_services_network_is_named_after_it():
    config = {**stack_config("dev"), "restdemo:serviceName": "shop"}
    network = run_program("dev", config).one("docker:index/network:Network")
    assert network.inputs["name"] == "shop-internal"


def test_moving_to_the_images_own_check_restates_it_never_leaves_the_old_one():
    """The provider's healthcheck block is Optional+Computed: left out, a plan keeps the previous
    check (restdemo-cli), which an image without it fails. The new spec states the image's."""
    before = run_program("local").one("docker:index/service:Service").inputs["taskSpec"]["containerSpec"]
    after = run_program("local", {**stack_config("local"), "restdemo:healthCheck": []})
    check = after.one("docker:index/service:Service").inputs["taskSpec"]["containerSpec"]["healthcheck"]
    # restdemo's Dockerfile: HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=3 CMD [...]
    assert check == before["healthcheck"]


def test_placement_is_decided_in_one_function_for_every_service():
    """The zones' spread first, then a Compose service's own preferences; its constraints after the
    workers-only ones; on a laptop only what the service asks."""
    from infra.config.settings import Settings
    from infra.service.service import placement

    aws = Settings.model_construct(platform="aws", worker_count=2)
    given = placement(aws, ["node.labels.rack"], ["node.labels.disk==ssd"], 2)
    assert (given.prefs, given.constraints, given.max_replicas) == (
        ["node.labels.availability_zone", "node.labels.rack"],
        ["node.role==worker", "node.labels.role==worker", "node.labels.disk==ssd"],
        2,
    )
    assert placement(Settings.model_construct(platform="local", worker_count=2)) is None
    assert placement(Settings.model_construct(platform="local"), ["node.labels.rack"]).prefs == ["node.labels.rack"]


def test_a_service_that_follows_the_load_carries_its_bounds_and_leaves_its_count_to_the_agent():
    """ADR 0034: made at its fewest replicas, the bounds as labels the leader's agent reads, and the
    count out of the program's diff: `up` neither resets a scaled service nor shows drift for it."""
    from restdemo_agent.scaling import Bounds, bounds_of

    config = {**stack_config("dev"), "restdemo:maxReplicas": "7", "restdemo:scaleOutCooldown": "2m"}
    service = run_program("dev", config).one("docker:index/service:Service")
    labels = {item["label"]: item["value"] for item in service.inputs["labels"]}
    assert service.inputs["mode"]["replicated"]["replicas"] == 2
    assert bounds_of(labels) == Bounds(minimum=2, maximum=7, cpu_percent=60, out_cooldown=120, in_cooldown=300)
    assert service.ignore_changes == ["mode.replicated.replicas"]
    fixed = run_program("dev").one("docker:index/service:Service")
    assert (fixed.inputs.get("labels"), fixed.ignore_changes) == (None, [])
    # The local stack runs no agent: the program keeps the count there, so `replicas` still changes it.
    local = run_program("local", {**stack_config("local"), "restdemo:maxReplicas": "7"})
    assert local.one("docker:index/service:Service").ignore_changes == []
    assert (local.outputs.get("replicas"), len(local.one("docker:index/service:Service").inputs["labels"])) == (3, 5)


def test_a_compose_service_scales_within_its_own_bounds_the_stacks_settings_filling_the_rest():
    from restdemo_agent.scaling import Bounds, bounds_of
    from tests.support.stack_variants import COMPOSE_VARIANT, variant_run

    services = {
        s.inputs["name"]: s for s in variant_run("dev", COMPOSE_VARIANT).of_type("docker:index/service:Service")
    }
    admin = services["restdemo_admin"]
    labels = {item["label"]: item["value"] for item in admin.inputs["labels"]}
    assert bounds_of(labels) == Bounds(minimum=2, maximum=4, cpu_percent=60, out_cooldown=60, in_cooldown=600)
    # Its database's files are the agent's to write too (ADR 0030).
    assert admin.ignore_changes == ["taskSpec.containerSpec.secrets", "mode.replicated.replicas"]
    assert services["restdemo_web"].ignore_changes == []
