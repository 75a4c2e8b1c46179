"""infra/program.py under Pulumi mocks, for every stack file in stacks/: the composition."""

from __future__ import annotations

import json
import re
import runpy

import pytest

from infra.config.settings import SettingsError
from tests.infra.conftest import stack_run
from tests.support.aws_stack import AWS_STACKS
from tests.support.pulumi_program import ECR_PASSWORD, REPO, STACKS, run_program, stack_config

pytestmark = pytest.mark.unit


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


def test_no_secret_in_plain_outputs(run):
    assert ECR_PASSWORD not in json.dumps(run.outputs)


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_aws_outputs_hold_no_plain_secret(stack):
    run = stack_run(stack)
    assert run.secret_outputs == ["adminClientKey"]
    assert "admin-client-private-key" in run.outputs["adminClientKey"]
    text = json.dumps({k: v for k, v in run.outputs.items() if k not in run.secret_outputs})
    for secret in (ECR_PASSWORD, "PRIVATE KEY", "private-key"):
        assert secret not in text
    assert run.outputs["adminEndpoint"] == "tcp://admin-0123456789.eu-west-1.elb.amazonaws.com:2376"
    domain = stack_config(stack).get("restdemo:domainName")
    assert run.outputs["url"] == (
        f"https://{domain}" if domain else "http://web-0123456789.eu-west-1.elb.amazonaws.com"
    )
    assert run.outputs["logGroup"] == f"/restdemo/{run.stack}"
    assert run.outputs["agentImage"].startswith(
        f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/restdemo-agent-{run.stack}:"
    )


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


def test_local_outputs(local):
    assert local.outputs["url"] == "http://localhost:8000"
    assert local.outputs["serviceName"] == "restdemo"
    assert local.outputs["replicas"] == 3


def test_entry_point_runs_the_program():
    # infra/__main__.py is what Pulumi runs; run it too, not only main().
    import pulumi

    from tests.support.pulumi_program import RecordingMocks, RecordingMonitor, wire_config

    mocks = RecordingMocks("us-east-1")
    pulumi.runtime.set_mocks(mocks, project="restdemo", stack="local", preview=False, monitor=RecordingMonitor(mocks))
    pulumi.runtime.set_all_config(wire_config(stack_config("local")))
    pulumi.runtime.test(lambda: runpy.run_path(str(REPO / "infra" / "__main__.py")) and None)()
    assert "docker:index/service:Service" in {r.type for r in mocks.registered}


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


def test_a_compose_app_on_aws_has_a_repository_per_built_service_and_runs_as_the_single_service_does():
    """Each built service's own ECR repository, which the nodes and the pull-only role may only pull;
    every node in every route's target group; the services spread over the zones, on workers only
    (prod), with the pull-only role's login."""
    from tests.support.stack_variants import COMPOSE_HOSTS_VARIANT, variant_run

    run = variant_run("prod", COMPOSE_HOSTS_VARIANT)
    repositories = sorted(r.inputs["name"] for r in run.of_type("aws:ecr/repository:Repository"))
    assert repositories == ["restdemo-agent-prod", "restdemo_admin-prod", "restdemo_web-prod"]
    policies = {r.name for r in run.of_type("aws:ecr/repositoryPolicy:RepositoryPolicy")}
    assert policies == {"agent-registry", "registry-admin", "registry-web"}
    puller = json.loads(run.named("aws:iam/rolePolicy:RolePolicy", "pull-role").inputs["policy"])
    pulled = {
        arn
        for s in puller["Statement"]
        for arn in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }
    assert {arn.rsplit("/", 1)[-1] for arn in pulled if ":repository/" in arn} == {
        "restdemo-agent-prod",
        "restdemo_admin-prod",
        "restdemo_web-prod",
    }
    workers = run.named("aws:autoscaling/group:Group", "swarm-workers-group").inputs
    assert len(workers["targetGroupArns"]) == 3
    services = {r.inputs["name"]: r.inputs for r in run.of_type("docker:index/service:Service")}
    assert sorted(services) == ["restdemo_admin", "restdemo_api", "restdemo_web"]
    for spec in services.values():
        assert spec["taskSpec"]["placement"]["prefs"] == ["node.labels.availability_zone"]
        assert spec["taskSpec"]["placement"]["constraints"][:2] == ["node.role==worker", "node.labels.role==worker"]
    network = run.named("docker:index/network:Network", "restdemo-network").inputs
    assert (network["name"], network["attachable"], network["options"]) == (
        "restdemo-internal",
        False,
        {"encrypted": ""},
    )
    provider = run.named("pulumi:providers:docker", "restdemo-swarm").inputs
    assert "ecr" in provider["registryAuth"]
