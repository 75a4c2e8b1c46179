"""infra/admin/endpoint.py: the Docker API's endpoint, its certificates and the provider that uses them."""

from __future__ import annotations

import json

import pytest

from tests.support.aws_stack import AWS_STACKS, SG_INGRESS, config
from tests.support.pulumi_program import (
    ECR_PASSWORD,
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
    assert provider.inputs["caMaterial"] == certificate_pem("admin-ca")
    assert provider.inputs["certMaterial"] == certificate_pem("admin-client")
    assert "admin-client-private-key" in provider.inputs["keyMaterial"]
    assert "keyMaterial" in provider.secret_paths
    # ECR credentials go with the provider (sent as --with-registry-auth), never in the service's auth.
    (login,) = json.loads(provider.inputs["registryAuth"])  # provider inputs arrive as JSON text
    assert login["address"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert (login["username"], login["password"]) == ("AWS", ECR_PASSWORD)
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
