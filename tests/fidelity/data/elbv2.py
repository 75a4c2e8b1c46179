"""Elastic Load Balancing v2 (Pulumi's `aws:lb`): load balancers and target groups.

Sources: terraform-provider-aws (tpa) internal/service/elbv2 and the AWS ELBv2 API reference.
"""

from __future__ import annotations

from tests.fidelity.rules import Between, Field, OneOf, Pattern, Satisfies


def _timeout_below_interval(check: dict) -> str | None:
    if "timeout" in check and "interval" in check and not check["timeout"] < check["interval"]:
        return f"timeout {check['timeout']} must be smaller than the interval {check['interval']}"
    return None


TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"


RULE = "aws:lb/listenerRule:ListenerRule"


def _at_most_five_values(conditions: list) -> str | None:
    """ELBv2 quotas: five condition values per rule, across its conditions (host-header and
    path-pattern values each count)."""
    count = sum(len(c.get(kind, {}).get("values", [])) for c in conditions for kind in ("hostHeader", "pathPattern"))
    return None if count <= 5 else f"{count} condition values; a rule takes at most 5"


FIELDS = [
    Field(RULE, "priority", Between(1, 50000), "ELBv2 CreateRule Priority: 1-50000", 0),
    Field(
        RULE,
        "conditions[].pathPattern.values[]",
        Pattern(r"[A-Za-z0-9_\-.$/~\"'@:+&()!,;=*?]{1,128}"),
        "ELBv2 PathPatternConditionConfig: up to 128 characters of A-Z a-z 0-9 and _ - . $ / ~ \" ' @ : + & ( ) ! "
        ", ; = * ?",
        "/a b",
    ),
    Field(
        RULE,
        "conditions[].hostHeader.values[]",
        Pattern(r"[A-Za-z0-9\-.*?]{1,128}"),
        "ELBv2 HostHeaderConditionConfig: up to 128 characters of A-Z a-z 0-9 - . * ?",
        "api_example.com",
    ),
    Field(
        RULE,
        "conditions",
        Satisfies(_at_most_five_values),
        "ELBv2 quotas: condition values per rule, 5",
        [{"pathPattern": {"values": ["/a", "/b", "/c"]}}, {"hostHeader": {"values": ["a.b", "c.d", "e.f"]}}],
    ),
    Field(
        "aws:lb/loadBalancer:LoadBalancer",
        "loadBalancerType",
        OneOf(("application", "network", "gateway")),
        "tpa elbv2/load_balancer.go LoadBalancerTypeEnum",
        "classic",
    ),
    Field(
        "aws:lb/loadBalancer:LoadBalancer",
        "idleTimeout",
        Between(1, 4000),
        "AWS ELBv2 LoadBalancerAttribute idle_timeout.timeout_seconds",
        0,
    ),
    Field(
        TARGET_GROUP,
        "protocol",
        OneOf(("HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE")),
        "tpa elbv2/target_group.go ProtocolEnum",
        "HTTP2",
    ),
    Field(TARGET_GROUP, "deregistrationDelay", Between(0, 3600), "tpa elbv2/target_group.go IntBetween(0, 3600)", 7200),
    Field(TARGET_GROUP, "healthCheck.interval", Between(5, 300), "tpa elbv2/target_group.go IntBetween(5, 300)", 1),
    Field(TARGET_GROUP, "healthCheck.timeout", Between(2, 120), "tpa elbv2/target_group.go IntBetween(2, 120)", 1),
    Field(
        TARGET_GROUP,
        "healthCheck",
        Satisfies(_timeout_below_interval),
        "ELBv2 CreateTargetGroup ValidationError: the health check timeout must be smaller than the interval",
        {"interval": 5, "timeout": 5},
    ),
    Field(
        TARGET_GROUP, "healthCheck.healthyThreshold", Between(2, 10), "tpa elbv2/target_group.go IntBetween(2, 10)", 1
    ),
    Field(
        TARGET_GROUP,
        "healthCheck.unhealthyThreshold",
        Between(2, 10),
        "tpa elbv2/target_group.go IntBetween(2, 10)",
        11,
    ),
    Field(
        TARGET_GROUP,
        "healthCheck.path",
        Pattern(r"/.{0,1023}"),
        "tpa elbv2/target_group.go StringHasPrefix(/), 1-1024",
        "health",
    ),
    Field(
        TARGET_GROUP,
        "healthCheck.protocol",
        OneOf(("HTTP", "HTTPS", "TCP")),
        "tpa elbv2/target_group.go health_check.protocol",
        "UDP",
    ),
]
