"""infra/admin/endpoint.py: the Docker API's endpoint, its certificates and the provider that uses them."""

from __future__ import annotations

import json

import pytest

from infra.admin.endpoint import ca_plan, certificate_sha256
from tests.support.aws_stack import AWS_STACKS, SG_INGRESS, config
from tests.support.pulumi_program import (
    PULL_PASSWORD,
    certificate_pem,
    run_program,
    stack_config,
)

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


def test_admin_nlb_forwards_2376_and_checks_agent_readiness(run):
    listener = run.named("aws:lb/listener:Listener", "admin").inputs
    assert (listener["port"], listener["protocol"]) == (2376, "TCP")
    target_group = run.named("aws:lb/targetGroup:TargetGroup", "admin").inputs
    assert (target_group["port"], target_group["protocol"]) == (2376, "TCP")
    assert target_group["healthCheck"] == {
        "protocol": "HTTP",
        "port": "44554",
        "path": "/ready",
        "matcher": "200",
        "interval": 10,
        "healthyThreshold": 2,
        "unhealthyThreshold": 2,
    }
    assert run.named("aws:lb/loadBalancer:LoadBalancer", "admin").inputs["loadBalancerType"] == "network"


def test_with_session_manager_access_no_cidr_reaches_the_docker_api(run):
    assert config(run, "adminAccess") == "session-manager"
    assert [r.name for r in run.of_type(SG_INGRESS) if r.inputs.get("fromPort") == 2376] == []
    assert run.one("pulumi:providers:docker").inputs["host"] == "tcp://127.0.0.1:23760"
    assert run.outputs["dockerHost"] == "tcp://127.0.0.1:23760"  # where `make status` sends docker


def test_with_load_balancer_access_2376_only_from_the_admin_cidrs():
    admin = ["198.51.100.0/24"]
    run = run_program(
        "dev", {**stack_config("dev"), "restdemo:adminAccess": "load-balancer", "restdemo:adminCidrs": admin}
    )
    rules = [r.inputs for r in run.of_type(SG_INGRESS) if r.inputs.get("fromPort") == 2376]
    assert rules and all(r["cidrIpv4"] in admin for r in rules)
    assert {r["securityGroupId"] for r in rules} == {"admin-id", "swarm-managers-id"}
    nlb = "tcp://admin-0123456789.eu-west-1.elb.amazonaws.com:2376"
    assert run.one("pulumi:providers:docker").inputs["host"] == run.outputs["dockerHost"] == nlb


def test_service_provider_is_the_admin_endpoint_with_the_client_certificate(run):
    provider = run.one("pulumi:providers:docker")
    assert provider.inputs["caMaterial"] == certificate_pem("admin-ca") + certificate_pem("admin-ca-b")  # both trusted
    assert provider.inputs["certMaterial"] == certificate_pem("admin-client")
    assert "admin-client-private-key" in provider.inputs["keyMaterial"]
    assert "keyMaterial" in provider.secret_paths
    # ECR credentials go with the provider (sent as --with-registry-auth), never in the service's auth.
    (login,) = json.loads(provider.inputs["registryAuth"])  # provider inputs arrive as JSON text
    assert login["address"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert (login["username"], login["password"]) == ("AWS", PULL_PASSWORD)
    assert "registryAuth" in provider.secret_paths
    service = run.one("docker:index/service:Service")
    assert service.provider.startswith(provider.urn + "::")
    # The provider passes the string verbatim as swarm's SpreadDescriptor: no CLI-style `spread=`.
    assert service.inputs["taskSpec"]["placement"]["prefs"] == ["node.labels.availability_zone"]
    assert service.inputs["mode"]["replicated"]["replicas"] == config(run, "replicas")
    assert "auth" not in service.inputs


def test_server_certificate_is_for_the_nlb_name(run):
    request = run.named("tls:index/certRequest:CertRequest", "admin-server").inputs
    assert request["dnsNames"] == ["admin-0123456789.eu-west-1.elb.amazonaws.com"]
    assert request["ipAddresses"] == ["127.0.0.1"]  # the Session Manager tunnel's end
    server = run.named("tls:index/locallySignedCert:LocallySignedCert", "admin-server").inputs
    client = run.named("tls:index/locallySignedCert:LocallySignedCert", "admin-client").inputs
    assert "server_auth" in server["allowedUses"] and "client_auth" in client["allowedUses"]


# --- the Docker API's CA: two slots, rotated a step per up (docs/operations.md, Certificates) -------


def accepts(trusted: set, signer) -> bool:
    return signer in trusted


def step(rotation: int) -> tuple[set, tuple]:
    """At a step: the CAs every party trusts (slot, generation), and the one signing the certificates."""
    plan = ca_plan(rotation)
    return set(plan.generations.items()), (plan.active, plan.generations[plan.active])


def test_each_rotation_step_keeps_every_manager_and_the_client_trusting_each_other():
    """A step's up re-issues the client certificate at once, while the managers roll one by one: a
    manager of the step before must accept the new client, and the client accept its server. One
    step at a time holds that; skipping one (an odd step's new CA signing at once) breaks it."""
    assert [(ca_plan(r).active, ca_plan(r).generations) for r in range(6)] == [
        ("a", {"a": 0, "b": 0}),
        ("a", {"a": 0, "b": 1}),
        ("b", {"a": 0, "b": 1}),
        ("b", {"a": 1, "b": 1}),
        ("a", {"a": 1, "b": 1}),
        ("a", {"a": 1, "b": 2}),
    ]
    for rotation in range(12):
        old_trust, old_signer = step(rotation)
        new_trust, new_signer = step(rotation + 1)
        assert accepts(old_trust, new_signer) and accepts(new_trust, old_signer), rotation
    # Renewing the CA that signs, in one up (what a single five-year CA renewed in place does): the
    # managers that have not rolled yet reject the new client certificate.
    old_trust, _ = step(0)
    assert not accepts(old_trust, ("a", 1))


def test_the_cas_last_a_year_and_a_new_generation_replaces_key_and_certificate():
    first = run_program("dev")
    for name in ("admin-ca", "admin-ca-b"):
        ca = first.named("tls:index/selfSignedCert:SelfSignedCert", name)
        assert ca.inputs["validityPeriodHours"] == 24 * 365 and "validityPeriodHours" in ca.ignore_changes
        assert ca.replacement_trigger is None  # generation 0: the stack's CA stays as it was
    assert first.named("tls:index/selfSignedCert:SelfSignedCert", "admin-ca").inputs["subject"]["commonName"] == (
        "restdemo dev CA"
    )
    signer = first.named("tls:index/locallySignedCert:LocallySignedCert", "admin-client").inputs
    assert signer["caCertPem"] == certificate_pem("admin-ca")
    staged = run_program("dev", {**stack_config("dev"), "restdemo:dockerApiCaRotation": "1"})
    for typ in ("tls:index/privateKey:PrivateKey", "tls:index/selfSignedCert:SelfSignedCert"):
        assert staged.named(typ, "admin-ca-b").replacement_trigger == "b1"
        assert staged.named(typ, "admin-ca").replacement_trigger is None
    switched = run_program("dev", {**stack_config("dev"), "restdemo:dockerApiCaRotation": "2"})
    for role in ("client", "server"):
        signed = switched.named("tls:index/locallySignedCert:LocallySignedCert", f"admin-{role}").inputs
        assert signed["caCertPem"] == certificate_pem("admin-ca-b")
    assert switched.outputs["adminCaExpires"] == "2027-11-28T12:00:00Z"


def test_the_managers_check_every_certificate_of_the_trust_bundle(run):
    from infra.admin.endpoint import pem_sha256
    from tests.support.aws_stack import user_data

    bundle = certificate_pem("admin-ca") + certificate_pem("admin-ca-b")
    assert pem_sha256(bundle) == ",".join(certificate_sha256(certificate_pem(n)) for n in ("admin-ca", "admin-ca-b"))
    assert pem_sha256(bundle) in user_data(run, "manager")
