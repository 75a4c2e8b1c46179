"""infra/network/certificate.py with the load balancer: HTTPS on your domain, under mocks."""

from __future__ import annotations

import pytest

from tests.support.aws_stack import AWS_STACKS
from tests.support.pulumi_program import run_program, stack_config

pytestmark = pytest.mark.unit

DOMAIN = {"restdemo:domainName": "app.example.com", "restdemo:hostedZoneId": "Z0123456789ABC"}


@pytest.fixture(scope="module", params=AWS_STACKS)
def with_domain(request):
    return run_program(request.param, {**stack_config(request.param), **DOMAIN})


def test_a_domain_gets_a_certificate_validated_through_its_zone(with_domain):
    certificate = with_domain.named("aws:acm/certificate:Certificate", "domain").inputs
    assert (certificate["domainName"], certificate["validationMethod"]) == ("app.example.com", "DNS")
    record = with_domain.named("aws:route53/record:Record", "domain-validation").inputs
    assert (record["zoneId"], record["type"], record["ttl"], record["allowOverwrite"]) == (
        "Z0123456789ABC",
        "CNAME",
        300,
        True,
    )
    assert record["name"].endswith(".app.example.com.") and record["records"][0].endswith(".acm-validations.aws.")
    validation = with_domain.named("aws:acm/certificateValidation:CertificateValidation", "domain").inputs
    assert validation["validationRecordFqdns"] == [record["name"].rstrip(".")]


def test_https_on_443_with_that_certificate_80_redirecting_and_the_url_on_the_domain(with_domain):
    https = with_domain.named("aws:lb/listener:Listener", "web-https").inputs
    assert (https["port"], https["protocol"]) == (443, "HTTPS")
    assert https["certificateArn"] == "arn:aws:acm:eu-west-1:123456789012:certificate/domain"  # the validated one
    http = with_domain.named("aws:lb/listener:Listener", "web-http").inputs
    assert http["defaultActions"] == [
        {"type": "redirect", "redirect": {"protocol": "HTTPS", "statusCode": "HTTP_301", "port": "443"}}
    ]
    alias = with_domain.named("aws:route53/record:Record", "web-alias").inputs
    assert (alias["zoneId"], alias["name"], alias["type"]) == ("Z0123456789ABC", "app.example.com", "A")
    assert alias["aliases"] == [
        {"name": "web-0123456789.eu-west-1.elb.amazonaws.com", "zoneId": "Z32O12XQLNTSW2", "evaluateTargetHealth": True}
    ]
    assert with_domain.outputs["url"] == "https://app.example.com"


def test_your_own_certificate_serves_its_domain_and_the_zone_only_adds_the_alias():
    """certificateArn with domainName: the url and make status use the name it covers; with the zone
    as well, the alias record is made there; without it, your DNS points at loadBalancerDnsName."""
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0f0e0d0c-0000-4000-8000-000000000000"
    elsewhere = run_program(
        "dev", {**stack_config("dev"), "restdemo:certificateArn": arn, "restdemo:domainName": "app.example.com"}
    )
    assert elsewhere.named("aws:lb/listener:Listener", "web-https").inputs["certificateArn"] == arn
    assert (
        elsewhere.of_type("aws:acm/certificate:Certificate") == []
        and elsewhere.of_type("aws:route53/record:Record") == []
    )
    assert elsewhere.outputs["url"] == "https://app.example.com"
    assert elsewhere.outputs["loadBalancerDnsName"] == "web-0123456789.eu-west-1.elb.amazonaws.com"
    both = run_program("dev", {**stack_config("dev"), "restdemo:certificateArn": arn, **DOMAIN})
    assert both.of_type("aws:acm/certificate:Certificate") == []
    assert both.named("aws:lb/listener:Listener", "web-https").inputs["certificateArn"] == arn
    assert [r.name for r in both.of_type("aws:route53/record:Record")] == ["web-alias"]
    assert both.outputs["url"] == "https://app.example.com"


def test_without_a_domain_nothing_of_it_is_made():
    run = run_program("dev")
    assert run.of_type("aws:acm/certificate:Certificate") == [] and run.of_type("aws:route53/record:Record") == []
