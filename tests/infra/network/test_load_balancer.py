"""infra/network/load_balancer.py: the public ALB, its listeners and its target group, under mocks."""

from __future__ import annotations

import pytest

from infra.config.compose import Route, route_priority
from infra.network.load_balancer import dead_target_window_seconds
from tests.support.aws_stack import AWS_STACKS, SG_EGRESS, SG_INGRESS
from tests.support.pulumi_program import (
    run_program,
    stack_config,
)

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS


def test_alb_listens_on_80_and_forwards_to_port_8000_checked_on_health(run):
    """On 80 it forwards, or with HTTPS (staging and prod) redirects and 443 forwards."""
    listener = run.named("aws:lb/listener:Listener", "web-http").inputs
    assert (listener["port"], listener["protocol"]) == (80, "HTTP")
    if run.of_type("aws:acm/certificate:Certificate"):
        assert listener["defaultActions"][0]["type"] == "redirect"
        listener = run.named("aws:lb/listener:Listener", "web-https").inputs
    assert listener["defaultActions"] == [
        {"type": "forward", "targetGroupArn": listener["defaultActions"][0]["targetGroupArn"]}
    ]
    target_group = run.named("aws:lb/targetGroup:TargetGroup", "web").inputs
    assert (target_group["port"], target_group["protocol"], target_group["targetType"]) == (8000, "HTTP", "instance")
    assert target_group["healthCheck"] == {
        "path": "/health",
        "port": "8000",
        "protocol": "HTTP",
        "matcher": "200",
        "interval": 5,
        "timeout": 4,
        "healthyThreshold": 2,
        "unhealthyThreshold": 2,
    }
    assert dead_target_window_seconds() == 14  # the bound docs/operations.md gives
    assert target_group["deregistrationDelay"] == 60
    balancer = run.named("aws:lb/loadBalancer:LoadBalancer", "web").inputs
    assert balancer["loadBalancerType"] == "application" and balancer["internal"] is False
    assert balancer["enableDeletionProtection"] is (run.stack == "prod")


def test_the_alb_gives_up_an_idle_connection_before_the_app_does(run):
    """AWS: a target's keep-alive timeout must exceed the load balancer's idle timeout, or the
    ALB reuses a connection the target is closing and answers 502."""
    from restdemo.server import IDLE_KEEPALIVE_SECONDS

    balancer = run.named("aws:lb/loadBalancer:LoadBalancer", "web").inputs
    assert balancer["idleTimeout"] < IDLE_KEEPALIVE_SECONDS


def test_a_certificate_adds_443_and_redirects_80():
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0f0e0d0c-0000-4000-8000-000000000000"
    run = run_program(
        "dev", {**stack_config("dev"), "restdemo:certificateArn": arn, "restdemo:domainName": "app.example.com"}
    )
    https = run.named("aws:lb/listener:Listener", "web-https").inputs
    assert (https["port"], https["protocol"], https["certificateArn"]) == (443, "HTTPS", arn)
    assert https["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    http = run.named("aws:lb/listener:Listener", "web-http").inputs
    assert http["defaultActions"] == [
        {"type": "redirect", "redirect": {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}}
    ]
    opened = sorted(r.inputs["fromPort"] for r in run.of_type(SG_INGRESS) if r.inputs.get("cidrIpv4") == "0.0.0.0/0")
    assert opened == [80, 443]
    assert run.outputs["url"] == "https://app.example.com"


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_another_published_port_reaches_the_service_end_to_end(stack):
    """dev with `publishedPort: 9000`: the service published 9000 while the target group, its health
    check and the nodes' rule stayed on 8000, so the site was unreachable. All follow the setting."""
    run = run_program(stack, {**stack_config(stack), "restdemo:publishedPort": "9000"})
    service = run.one("docker:index/service:Service").inputs
    assert [(p["targetPort"], p["publishedPort"]) for p in service["endpointSpec"]["ports"]] == [(8000, 9000)]
    target_group = run.named("aws:lb/targetGroup:TargetGroup", "web").inputs
    assert (target_group["port"], target_group["healthCheck"]["port"]) == (9000, "9000")
    rules = {r.name: r.inputs for r in run.of_type(SG_INGRESS)}
    assert "swarm-mesh-8000" not in rules
    assert (rules["swarm-mesh-9000"]["fromPort"], rules["swarm-mesh-9000"]["toPort"]) == (9000, 9000)
    assert rules["swarm-mesh-9000"]["referencedSecurityGroupId"] == "web-id"
    (to_nodes,) = [r.inputs for r in run.of_type(SG_EGRESS) if r.name == "web-to-nodes"]
    assert (to_nodes["fromPort"], to_nodes["toPort"]) == (9000, 9000)


def route_run(stack: str = "prod"):
    from tests.support.stack_variants import COMPOSE_HOSTS_VARIANT, variant_run

    return variant_run(stack, COMPOSE_HOSTS_VARIANT)


def test_each_compose_service_that_publishes_a_port_has_its_target_group_and_route():
    """web is the default (no route), admin below /admin, api by host name, on the HTTPS listener (the
    certificate the program requests covers app.example.com and api.example.com, each validated and
    aliased in the stack's zone); each target group on its service's published port, checked on its
    own path."""
    run = route_run()
    groups = {r.name: r.inputs for r in run.of_type("aws:lb/targetGroup:TargetGroup") if r.name.startswith("web")}
    assert {name: (g["port"], g["healthCheck"]["path"], g["healthCheck"]["port"]) for name, g in groups.items()} == {
        "web": (8081, "/ready", "8081"),
        "web-admin": (8082, "/ready", "8082"),
        "web-api": (8083, "/ready", "8083"),
    }
    https = run.named("aws:lb/listener:Listener", "web-https").inputs
    assert https["defaultActions"][0]["type"] == "forward"  # to web's group
    rules = {r.name: r.inputs for r in run.of_type("aws:lb/listenerRule:ListenerRule")}
    # Host routes first, then paths (on the stack's domain only); each priority from its service's name,
    # so no other route's coming or going moves it.
    assert {name: (rule["priority"], rule["conditions"]) for name, rule in rules.items()} == {
        "web-admin": (
            route_priority("admin", Route(path="/admin")),
            [{"hostHeader": {"values": ["app.example.com"]}}, {"pathPattern": {"values": ["/admin", "/admin/*"]}}],
        ),
        "web-api": (
            route_priority("api", Route(hosts=("api.example.com",))),
            [{"hostHeader": {"values": ["api.example.com"]}}],
        ),
    }
    assert rules["web-api"]["priority"] < 25000 <= rules["web-admin"]["priority"] < 50000
    attached = sorted(r.name for r in run.of_type("aws:autoscaling/attachment:Attachment"))
    assert attached == [
        "swarm-managers-target-0",
        "swarm-managers-target-1",
        "swarm-managers-target-route-admin",
        "swarm-managers-target-route-api",
    ]
    assert {rule["listenerArn"] for rule in rules.values()} == {"arn:aws:lb:eu-west-1:123456789012:web-https"}
    certificate = run.named("aws:acm/certificate:Certificate", "domain").inputs
    assert (certificate["domainName"], certificate["subjectAlternativeNames"]) == (
        "app.example.com",
        ["api.example.com"],
    )
    records = sorted((r.name, r.inputs["name"]) for r in run.of_type("aws:route53/record:Record") if "alias" in r.name)
    assert records == [("web-alias", "app.example.com"), ("web-api.example.com-alias", "api.example.com")]
    validations = sorted(r.name for r in run.of_type("aws:route53/record:Record") if "validation" in r.name)
    assert validations == ["domain-validation", "domain-validation-api.example.com"]
    ports = sorted((r.inputs["fromPort"], r.name) for r in run.of_type(SG_EGRESS) if r.name.startswith("web-to-nodes"))
    assert ports == [(8081, "web-to-nodes-8081"), (8082, "web-to-nodes-8082"), (8083, "web-to-nodes-8083")]
    mesh = sorted(r.inputs["fromPort"] for r in run.of_type(SG_INGRESS) if r.name.startswith("swarm-mesh-"))
    assert mesh == [8081, 8082, 8083]
    assert run.outputs["urls"] == {
        "admin": "https://app.example.com/admin",
        "api": "https://api.example.com",
        "web": "https://app.example.com",
    }


def test_without_a_default_route_a_request_no_rule_matches_is_answered_404(tmp_path):
    from tests.support.stack_variants import AWS_API_IMAGE, compose_app_config, run_compose_app

    overlay = tmp_path / "routes.yaml"
    overlay.write_text("services:\n  web:\n    x-restdemo: {path: /shop}\n")
    config = compose_app_config(
        stack="dev", **{"restdemo:composeFile": ["tests/e2e/compose_app/compose.yaml", str(overlay)]}
    )
    run = run_compose_app(config, {"API_IMAGE": AWS_API_IMAGE}, "dev")
    http = run.named("aws:lb/listener:Listener", "web-http").inputs
    assert http["defaultActions"] == [
        {
            "type": "fixed-response",
            "fixedResponse": {"contentType": "text/plain", "statusCode": "404", "messageBody": "no route"},
        }
    ]
    assert sorted(r.name for r in run.of_type("aws:lb/targetGroup:TargetGroup")) == [
        "admin",
        "web-admin",
        "web-web",
    ]
