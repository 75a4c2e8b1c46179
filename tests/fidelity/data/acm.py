"""ACM and Route 53: the certificate for a stack's domain, its DNS validation and the ALB's alias.

Sources: terraform-provider-aws (tpa) internal/service/acm and internal/service/route53, and the
Route 53 API reference (ResourceRecordSet). They are registered only for a stack with a domain:
the fidelity tier runs prod with one (tests/fidelity/test_fidelity.py DOMAIN_STACK).
"""

from __future__ import annotations

from typing import Any

from tests.fidelity.rules import Between, Field, OneOf, Satisfies

CERTIFICATE = "aws:acm/certificate:Certificate"
RECORD = "aws:route53/record:Record"


def _acm_domain(value: Any) -> str | None:
    if not 1 <= len(value) <= 253:
        return "must be 1-253 characters"
    return "cannot end with a period" if value.endswith(".") else None


FIELDS = [
    Field(
        CERTIFICATE,
        "domainName",
        Satisfies(_acm_domain),
        "tpa acm/certificate.go domain_name: StringLenBetween(1, 253), StringDoesNotMatch(\\.$)",
        "app.example.com.",
    ),
    Field(
        CERTIFICATE,
        "validationMethod",
        OneOf(("DNS", "EMAIL", "NONE")),
        "tpa acm/certificate.go validation_method: the ValidationMethod values and NONE",
        "HTTP",
    ),
    Field(
        RECORD,
        "type",
        OneOf(
            (
                "A",
                "AAAA",
                "CAA",
                "CNAME",
                "DS",
                "HTTPS",
                "MX",
                "NAPTR",
                "NS",
                "PTR",
                "SOA",
                "SPF",
                "SRV",
                "SSHFP",
                "SVCB",
                "TLSA",
                "TXT",
            )
        ),
        "tpa route53/record.go type: enum.Validate[awstypes.RRType]",
        "ALIAS",
    ),
    Field(RECORD, "ttl", Between(0, 2147483647), "Route 53 API ResourceRecordSet.TTL: 0 to 2147483647", -1),
    Field(
        RECORD,
        "zoneId",
        Satisfies(lambda value: None if 1 <= len(value) <= 32 else "must be 1-32 characters"),
        "tpa route53/record.go zone_id: StringLenBetween(1, 32)",
        "Z" * 33,
    ),
]
