"""The whole program under Pulumi mocks, for every stack file in stacks/."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import runpy

import pytest

from infra.config.settings import SettingsError
from tests.support.pulumi_program import ECR_PASSWORD, REPO, STACKS, run_program, stack_config

pytestmark = pytest.mark.unit

DOCKER_BUILD_IMAGE = "docker-build:index:Image"

AWS_STACKS = [s for s in STACKS if stack_config(s)["restdemo:platform"] == "aws"]


@pytest.fixture(scope="module", params=STACKS)
def run(request):
    return run_program(request.param)


def test_there_are_the_four_stacks():
    assert STACKS == ["dev", "local", "prod", "staging"]
    assert AWS_STACKS == ["dev", "prod", "staging"]


def test_components_have_restdemo_type_tokens_and_own_their_children(run):
    components = [r for r in run.registered if not r.custom and r.type != "pulumi:providers:docker"]
    for component in components:
        assert re.fullmatch(r"restdemo:[a-z]+:[A-Z][A-Za-z]+", component.type), component.type
    component_urns = {c.urn for c in components}
    for resource in run.registered:
        if resource.custom:
            assert resource.parent in component_urns, f"{resource.type} {resource.name} is not parented to a component"


def test_image_is_built_from_app_runtime_target_and_pushed(run):
    image = run.named(DOCKER_BUILD_IMAGE, "restdemo").inputs
    assert (image["context"], image["dockerfile"], image["target"]) == (
        {"location": "app"},
        {"location": "app/Dockerfile"},
        "runtime",
    )
    assert image["buildArgs"]["VERSION"] == stack_config(run.stack)["restdemo:version"]
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", image["buildArgs"]["REVISION"])
    assert image["buildOnPreview"] is False
    if run.stack == "local":
        # BuildKit runs in a container whose loopback is not the engine's: the image is loaded into
        # the engine, and the engine pushes it to its 127.0.0.1 registry.
        assert (image.get("push"), image["load"]) == (False, True)
        pushed = run.one("docker:index/registryImage:RegistryImage")
        assert pushed.inputs == {"name": image["tags"][0], "keepRemotely": True}
        assert run.named(DOCKER_BUILD_IMAGE, "restdemo").urn in pushed.dependencies
    else:
        assert (image["push"], image.get("load")) == (True, False)
    repository = run.outputs["repository"]
    (tag,) = image["tags"]
    assert re.fullmatch(rf"{re.escape(repository)}:v1-[0-9a-f]{{12}}", tag)
    # The service runs the provider's `ref`: the tag pinned to the digest it pushed.
    assert run.outputs["image"] == f"{tag}@sha256:" + hashlib.sha256(tag.encode()).hexdigest()


def test_the_same_source_gives_the_same_image_tag_run_after_run(run):
    again = run_program(run.stack)
    assert (
        again.named(DOCKER_BUILD_IMAGE, "restdemo").inputs["tags"]
        == run.named(DOCKER_BUILD_IMAGE, "restdemo").inputs["tags"]
    )


def test_aws_stacks_read_the_registry_build_cache_the_local_one_has_none(run):
    image = run.named(DOCKER_BUILD_IMAGE, "restdemo").inputs
    assert "cacheTo" not in image  # only the deploy job writes it (buildCache: read-write)
    if run.stack == "local":
        assert "cacheFrom" not in image
        return
    assert image["cacheFrom"] == [{"registry": {"ref": f"{run.outputs['repository']}:buildcache"}}]
    registry = run.named("aws:ecr/repository:Repository", "registry").inputs
    assert registry["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert registry["imageTagMutabilityExclusionFilters"] == [{"filter": "buildcache", "filterType": "WILDCARD"}]


def test_the_deploy_job_writes_the_cache_and_a_failed_write_does_not_fail_the_up():
    run = run_program("dev", {**stack_config("dev"), "restdemo:buildCache": "read-write"})
    image = run.named(DOCKER_BUILD_IMAGE, "restdemo").inputs
    cache = f"{run.outputs['repository']}:buildcache"
    ((to,),) = [list(c.values()) for c in image["cacheTo"]]
    assert (to["ref"], to["mode"], to["imageManifest"], to["ociMediaTypes"]) == (cache, "max", True, True)
    assert to["ignoreError"] is True
    off = run_program("dev", {**stack_config("dev"), "restdemo:buildCache": "off"}).named(
        DOCKER_BUILD_IMAGE, "restdemo"
    )
    assert "cacheFrom" not in off.inputs and "cacheTo" not in off.inputs


def test_the_ca_bundle_is_a_build_secret_never_an_argument_or_output(tmp_path):
    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nproxy\n-----END CERTIFICATE-----\n")
    run = run_program("local", {**stack_config("local"), "restdemo:buildCaBundle": str(bundle)})
    image = run.one(DOCKER_BUILD_IMAGE)
    assert image.inputs["secrets"] == {"ca_bundle": bundle.read_text()}
    assert "secrets" in image.secret_paths
    assert image.inputs["ignoreSecretsInDiffCalculation"] == ["ca_bundle"]
    assert "proxy" not in json.dumps(image.inputs["buildArgs"]) + json.dumps(run.outputs)


@pytest.mark.parametrize("text", [None, "not a certificate"])
def test_a_ca_bundle_that_is_not_a_pem_file_stops_the_program(tmp_path, text):
    bundle = tmp_path / "bundle.pem"
    if text is not None:
        bundle.write_text(text)
    with pytest.raises(
        Exception, match=r"restdemo:buildCaBundle = .*must be a (readable )?PEM file of CA certificates"
    ):
        run_program("local", {**stack_config("local"), "restdemo:buildCaBundle": str(bundle)})


def test_no_secret_in_plain_outputs(run):
    assert ECR_PASSWORD not in json.dumps(run.outputs)


# --- local -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local():
    return run_program("local")


def test_local_graph(local):
    assert sorted((r.type, r.name) for r in local.registered) == [
        ("docker-build:index:Image", "restdemo"),
        ("docker:index/container:Container", "registry"),
        ("docker:index/network:Network", "restdemo-network"),
        ("docker:index/registryImage:RegistryImage", "restdemo"),
        ("docker:index/remoteImage:RemoteImage", "registry"),
        ("docker:index/service:Service", "restdemo"),
        ("docker:index/volume:Volume", "registry"),
        ("pulumi:providers:docker", "restdemo-swarm"),
        ("restdemo:image:Image", "restdemo"),
        ("restdemo:registry:Registry", "registry"),
        ("restdemo:service:SwarmService", "restdemo"),
    ]


def test_local_registry_runs_on_loopback_only(local):
    container = local.one("docker:index/container:Container")
    assert container.inputs["ports"] == [{"internal": 5000, "external": 5000, "ip": "127.0.0.1"}]
    assert container.inputs["restart"] == "always"
    assert container.inputs["volumes"] == [{"volumeName": "restdemo-registry", "containerPath": "/var/lib/registry"}]
    assert local.one("docker:index/remoteImage:RemoteImage").inputs["name"] == "registry:2.8.3"
    assert local.outputs["repository"] == "127.0.0.1:5000/restdemo"
    assert "registries" not in local.one(DOCKER_BUILD_IMAGE).inputs  # loopback: no login


def test_an_existing_registry_replaces_the_one_the_program_runs():
    run = run_program("local", {**stack_config("local"), "restdemo:registryAddress": "registry.internal:5000"})
    assert not run.of_type("docker:index/container:Container")
    assert run.outputs["repository"] == "registry.internal:5000/restdemo"


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
    assert "auth" not in spec


def test_service_network_is_an_attachable_overlay(local):
    network = local.one("docker:index/network:Network")
    assert network.inputs == {"name": "restdemo", "driver": "overlay", "attachable": True}
    # Read back with the driver's own options: never compared, or every `up` would replace it.
    assert network.ignore_changes == ["options"]


def test_on_aws_the_service_network_is_encrypted():
    network = run_program("dev").one("docker:index/network:Network")
    assert (network.inputs["name"], network.inputs["options"]) == ("restdemo-encrypted", {"encrypted": ""})


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


def test_local_outputs(local):
    assert local.outputs["url"] == "http://localhost:8000"
    assert local.outputs["serviceName"] == "restdemo"
    assert local.outputs["replicas"] == 3


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


def test_entry_point_runs_the_program():
    # infra/__main__.py is what Pulumi runs; run it too, not only main().
    import pulumi

    from tests.support.pulumi_program import RecordingMocks, RecordingMonitor, wire_config

    mocks = RecordingMocks("us-east-1")
    pulumi.runtime.set_mocks(mocks, project="restdemo", stack="local", preview=False, monitor=RecordingMonitor(mocks))
    pulumi.runtime.set_all_config(wire_config(stack_config("local")))
    pulumi.runtime.test(lambda: runpy.run_path(str(REPO / "infra" / "__main__.py")) and None)()
    assert "docker:index/service:Service" in {r.type for r in mocks.registered}


# --- AWS stacks: registries and images (the cluster: test_aws_cluster.py) ----------------------


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_aws_registries_are_ecr_immutable_scanned_with_lifecycle(stack):
    run = run_program(stack)
    keep = stack_config(stack)["restdemo:ecrKeepImages"]
    for component, repository_name in (("registry", "restdemo"), ("agent-registry", "restdemo-agent")):
        repository = run.named("aws:ecr/repository:Repository", component).inputs
        assert repository["name"] == f"{repository_name}-{stack}"
        # Every tag immutable but the build cache's.
        assert repository["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
        assert repository["imageTagMutabilityExclusionFilters"] == [{"filter": "buildcache", "filterType": "WILDCARD"}]
        assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
        policy = json.loads(run.named("aws:ecr/lifecyclePolicy:LifecyclePolicy", component).inputs["policy"])
        untagged, images = policy["rules"]
        # Each build leaves the previous cache manifest untagged: those go after a day, and are
        # not counted among the images kept (with tagStatus any they took half of the places).
        assert untagged["selection"] == {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 1,
        }
        assert images["selection"] == {
            "tagStatus": "tagged",
            "tagPatternList": ["*-*"],
            "countType": "imageCountMoreThan",
            "countNumber": keep,
        }
        assert (untagged["rulePriority"], images["rulePriority"]) == (1, 2)
        pattern = images["selection"]["tagPatternList"][0]
        assert fnmatch.fnmatchcase("v1-0123456789ab", pattern) and not fnmatch.fnmatchcase("buildcache", pattern)


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_aws_registry_credentials_are_secrets(stack):
    run = run_program(stack)
    image = run.named(DOCKER_BUILD_IMAGE, "restdemo")
    region = stack_config(stack)["aws:region"]
    assert image.inputs["registries"] == [
        {"address": f"123456789012.dkr.ecr.{region}.amazonaws.com", "username": "AWS", "password": ECR_PASSWORD}
    ]
    # Pulumi marks the whole registries list secret because the password in it is.
    assert image.secret_paths == ["registries"]
    assert image.inputs["platforms"] == ["linux/amd64"]
    assert ("aws:ecr/getAuthorizationToken:getAuthorizationToken", {"registryId": "123456789012"}) in run.calls


# --- invalid settings register nothing ------------------------------------------------------


@pytest.mark.parametrize(
    "stack,override,message",
    [
        ("local", {"restdemo:replicas": 0}, "restdemo:replicas"),
        ("local", {"restdemo:publishedPort": 65536}, "restdemo:publishedPort"),
        ("local", {"restdemo:updateDelay": "fifteen"}, "restdemo:updateDelay"),
        ("local", {"restdemo:replicaz": 3}, "did you mean restdemo:replicas"),
        ("prod", {"restdemo:managerCount": 2}, "restdemo:managerCount"),
        ("prod", {"restdemo:workerCount": -1}, "restdemo:workerCount"),
        ("prod", {"restdemo:vpcCidr": "10.30.0.0/99"}, "restdemo:vpcCidr"),
        ("prod", {"restdemo:privateSubnetCidrs": ["10.30.0.0/24", "10.30.11.0/24", "10.30.12.0/24"]}, "overlaps"),
        (
            "dev",
            {"restdemo:adminAccess": "load-balancer"},
            "restdemo:adminAccess = load-balancer needs restdemo:adminCidrs",
        ),
        ("dev", {"aws:region": ""}, "platform aws needs aws:region"),
    ],
)
def test_invalid_setting_stops_before_any_resource(stack, override, message):
    config = {**stack_config(stack), **override}
    from tests.support import pulumi_program

    recorded: list = []
    original = pulumi_program.RecordingMocks.new_resource

    def spy(self, args):
        recorded.append(args.typ)
        return original(self, args)

    pulumi_program.RecordingMocks.new_resource = spy
    try:
        with pytest.raises(SettingsError, match=re.escape(message)):
            run_program(stack, config)
    finally:
        pulumi_program.RecordingMocks.new_resource = original
    assert recorded == []
