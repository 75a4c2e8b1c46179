"""infra/swarm/swarm.py: the swarm's nodes, their ports and the user data that starts the agent."""

from __future__ import annotations

import pytest

from infra.admin.endpoint import certificate_sha256
from tests.support.aws_stack import AWS_STACKS, GROUP, SG_INGRESS, config, user_data
from tests.support.pulumi_program import (
    AMI_ID,
    ARM_AMI_ID,
    ECR_PASSWORD,
    INVOKES,
    certificate_pem,
    run_program,
    stack_config,
)

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


INVOKES_SSM = INVOKES["aws:ssm/getParameter:getParameter"]


def test_a_new_latest_ami_rolls_no_node(monkeypatch):
    """Defect: the AMI came from SSM's `latest` parameter, so an Amazon release replaced every node."""
    before = run_program("dev")
    monkeypatch.setitem(
        INVOKES,
        "aws:ssm/getParameter:getParameter",
        lambda region: {**INVOKES_SSM(region), "value": "ami-0fedcba987654321f"},
    )
    after = run_program("dev")
    templates = lambda run: {r.name: r.inputs for r in run.of_type("aws:ec2/launchTemplate:LaunchTemplate")}  # noqa: E731
    assert templates(after) == templates(before)


def test_an_ami_id_is_used_as_given():
    run = run_program("dev", {**stack_config("dev"), "restdemo:nodeAmi": "ami-0123456789abcdef0"})
    templates = run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert {t.inputs["imageId"] for t in templates} == {"ami-0123456789abcdef0"}
    assert not [token for token, _ in run.calls if token == "aws:ec2/getAmi:getAmi"]


def test_graviton_workers_boot_the_pinned_releases_arm64_image_beside_x86_managers():
    release = "al2023-ami-2023.9.20251208.0-kernel-6.1-"
    config = {**stack_config("staging"), "restdemo:workerInstanceType": "t4g.small", "restdemo:workerInstanceTypes": []}
    run = run_program("staging", config)
    templates = {r.name: r.inputs for r in run.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    assert {name: (t["imageId"], t["instanceType"]) for name, t in templates.items()} == {
        "swarm-managers-template": (AMI_ID, "t3.small"),
        "swarm-workers-template": (ARM_AMI_ID, "t4g.small"),
    }
    assert [args["filters"] for token, args in run.calls if token == "aws:ec2/getAmi:getAmi"] == [
        [{"name": "name", "values": [release + arch]}, {"name": "architecture", "values": [arch]}]
        for arch in ("x86_64", "arm64")
    ]
    # Both images, one index: each node pulls its architecture's.
    for image in run.of_type("docker-build:index:Image"):
        assert image.inputs["platforms"] == ["linux/amd64", "linux/arm64"], image.name


def test_overlay_encryption_esp_only_between_nodes(run):
    (esp,) = [r for r in run.of_type(SG_INGRESS) if r.inputs["ipProtocol"] == "50"]
    assert esp.inputs["referencedSecurityGroupId"] == esp.inputs["securityGroupId"] == "swarm-nodes-id"
    assert "fromPort" not in esp.inputs and "toPort" not in esp.inputs


def test_swarm_ports_only_between_nodes_and_8000_only_from_the_alb(run):
    rules = {r.name: r.inputs for r in run.of_type(SG_INGRESS)}
    for name in ("swarm-swarm-tcp-7946", "swarm-swarm-udp-7946", "swarm-swarm-udp-4789", "swarm-manager-2377"):
        assert rules[name]["referencedSecurityGroupId"] == "swarm-nodes-id"
    assert rules["swarm-mesh-8000"]["referencedSecurityGroupId"] == "web-id"
    # The agents' readiness: on managers only, from the admin NLB and the managers (recover), not
    # from the VPC, where any container could open idle connections to it.
    readiness = {n: r for n, r in rules.items() if r.get("fromPort") == 44554}
    assert {n: (r["securityGroupId"], r["referencedSecurityGroupId"]) for n, r in readiness.items()} == {
        "swarm-readiness": ("swarm-managers-id", "admin-id"),
        "swarm-readiness-managers": ("swarm-managers-id", "swarm-managers-id"),
    }
    assert not [r for r in rules.values() if r.get("cidrIpv4") == str(config(run, "vpcCidr"))]


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_user_data_holds_no_secret_and_fits(run, role):
    text = user_data(run, role)
    assert text.startswith("#cloud-config\n")
    assert len(text.encode()) < 16 * 1024
    for secret in (ECR_PASSWORD, "PRIVATE KEY", "private-key", "BEGIN CERTIFICATE"):
        assert secret not in text
    assert f"restdemo-agent-{run.stack}:v1-" in text


def test_prune_interval_reaches_the_agent():
    env = user_data(run_program("dev"), "worker")
    assert "RESTDEMO_PRUNE_INTERVAL=86400" in env
    assert "RESTDEMO_PRUNE_INTERVAL=0" in user_data(run_program("prod"), "worker")


def test_named_resources_that_moved_keep_their_former_identity(run):
    """A stack with state from before the NodeGroup/SwarmState split (even a failed first `up`) keeps
    its table, queue, log group and groups: without an alias Pulumi would create the new ones first,
    which AWS refuses for a name in use, then delete the old ones."""
    swarm = run.named("restdemo:swarm:Swarm", "swarm").urn
    moved = {
        ("aws:dynamodb/table:Table", "swarm-state-table"): "swarm-state",
        ("aws:sqs/queue:Queue", "swarm-state-lifecycle"): "swarm-lifecycle",
        ("aws:cloudwatch/logGroup:LogGroup", "swarm-state-logs"): "swarm-logs",
        (GROUP, "swarm-managers-group"): "swarm-managers",
        (GROUP, "swarm-workers-group"): "swarm-workers",
    }
    for (typ, name), former in moved.items():
        assert run.named(typ, name).aliases == [(former, swarm)], name


def test_a_renewed_certificate_rolls_the_managers_not_the_workers(monkeypatch):
    """pulumi_tls replaces the server certificate in its renewal window (early_renewal_hours): the
    managers' launch template changes with it, so the group's quorum-safe instance refresh rolls
    them one by one onto the new certificate; the workers' template stays as it was."""
    before = run_program("dev")
    monkeypatch.setattr("tests.support.pulumi_program.CERTIFICATE_GENERATION", 2)
    after = run_program("dev")
    assert user_data(before, "manager") != user_data(after, "manager")
    assert user_data(before, "worker") == user_data(after, "worker")
    # The fingerprint the managers check is the new certificate's.
    assert certificate_sha256(certificate_pem("admin-server")) in user_data(after, "manager")
    renewal = after.named("tls:index/locallySignedCert:LocallySignedCert", "admin-server").inputs
    assert renewal["earlyRenewalHours"] == 720
