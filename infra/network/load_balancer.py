"""LoadBalancer: the public ALB in front of every swarm node's published port (the routing mesh).

Its security group is the only one in the stack open to the internet, and only on the
listener ports. The target group checks `healthCheckPath` (traffic health); the node groups
never use it to decide replacement.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config.settings import SettingsView
from infra.config.tags import Owned, tags
from infra.network.firewall import allow_in, allow_out, security_group
from infra.network.network import Network


@dataclass(frozen=True)
class LoadBalancerSettings(SettingsView):
    """What `LoadBalancer` reads of the settings: listeners, certificate, alias and the single service's route."""

    owner: str | None
    certificate_arn: str | None
    deletion_protection: bool
    domain_name: str | None
    hosted_zone_id: str | None
    health_check_path: str
    published_port: int


# ALB keeps sending in-flight requests to a leaving node this long; the node's own
# drain (lifecycle hook) moves its tasks in the meantime.
DEREGISTRATION_DELAY_SECONDS = 60
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# The ALB closes a connection idle this long (AWS default 60 s). AWS: the target's keep-alive must
# outlast it; the app closes idle connections after 30 s (restdemo.server.IDLE_KEEPALIVE_SECONDS).
IDLE_TIMEOUT_SECONDS = 20

# A node that dies still gets new requests until the ALB's checks fail it: at most
# unhealthy_threshold intervals plus one check's timeout (`dead_target_window_seconds`). The
# shortest interval and threshold ELBv2 allows; the timeout below the interval, as it requires.
HEALTH_CHECK_INTERVAL_SECONDS = 5
HEALTH_CHECK_TIMEOUT_SECONDS = 4
HEALTH_CHECK_UNHEALTHY_THRESHOLD = 2


def dead_target_window_seconds() -> int:
    """The longest a dead node stays in service behind the ALB (docs/operations.md)."""
    return HEALTH_CHECK_INTERVAL_SECONDS * HEALTH_CHECK_UNHEALTHY_THRESHOLD + HEALTH_CHECK_TIMEOUT_SECONDS


def public_balancer(
    name: str,
    kind: str,
    owned: Owned,
    network: Network,
    group: aws.ec2.SecurityGroup,
    opts: pulumi.ResourceOptions,
    *,
    deletion_protection: bool,
    **extra,
) -> aws.lb.LoadBalancer:
    """An internet-facing load balancer of `kind` in the public subnets, behind `group`."""
    return aws.lb.LoadBalancer(
        name,
        load_balancer_type=kind,
        internal=False,
        security_groups=[group.id],
        subnets=network.public_subnet_ids,
        enable_deletion_protection=deletion_protection,
        tags=tags(owned, name),
        opts=opts,
        **extra,
    )


def serves_https(settings: LoadBalancerSettings) -> bool:
    """A certificate of yours (certificateArn), or one for your domain (domainName)."""
    return bool(settings.certificate_arn or settings.domain_name)


def listener_ports(settings: LoadBalancerSettings) -> list[int]:
    return [80, 443] if serves_https(settings) else [80]


@dataclass(frozen=True)
class WebRoute:
    """A service the ALB sends requests to: its key (in its resources' names), the port the routing
    mesh publishes it on every node, the path its target group checks, and what its listener rule
    matches: host names or a path prefix; neither for the listener's default."""

    key: str
    port: int
    health_check_path: str
    hosts: tuple[str, ...] = ()
    path: str | None = None
    priority: int = 0  # its listener rule's (infra/config/compose.py route_priority); none for the default

    @property
    def is_default(self) -> bool:
        return not (self.hosts or self.path)


def single_route(settings: LoadBalancerSettings) -> WebRoute:
    """The single service's: the listener's default, on publishedPort, checked on healthCheckPath."""
    return WebRoute("", settings.published_port, settings.health_check_path)


def rule_conditions(route: WebRoute, domain: str | None) -> list[aws.lb.ListenerRuleConditionArgs]:
    """A host route matches its names; a path route its prefix and everything below it, on the stack's
    domain when it has one (so not below another route's host name)."""

    def hosts(names: list[str]) -> aws.lb.ListenerRuleConditionArgs:
        return aws.lb.ListenerRuleConditionArgs(host_header=aws.lb.ListenerRuleConditionHostHeaderArgs(values=names))

    if route.hosts:
        return [hosts(list(route.hosts))]
    path = aws.lb.ListenerRuleConditionArgs(
        path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=[route.path, f"{route.path}/*"])
    )
    return [hosts([domain]), path] if domain else [path]


class LoadBalancer(pulumi.ComponentResource):
    """The public ALB in front of the routing mesh: its security group, target group and listeners.

    Takes:
        name: the name of the security group, ALB and target group, and the prefix of the rules' and listeners'.
        settings: its slice of the settings (the certificate for HTTPS, deletion protection, tags).
        network: the VPC, its CIDR (the nodes' side) and the public subnets.
        certificate_arn: the HTTPS listener's certificate (a `DomainCertificate`'s); default certificateArn.
        routes: the services it sends requests to (`WebRoute`s); default the single service's (`single_route`).
        opts: resource options.

    Gives:
        dns_name: the ALB's DNS name.
        url: `https://<domainName>` with a domain (its alias record made with hostedZoneId), else
            `http://<dns_name>`.
        security_group_id: the ALB's security group, which the nodes admit on the mesh's port.
        target_group_arn: the default route's target group (the first route's when none is the default).
        target_group_arns: every route's target group, which every node joins.
        ports: the ports the routes reach on every node (the nodes admit them from the ALB only).
        arn_suffix, target_group_arn_suffix: how CloudWatch's dimensions name the ALB and that target group.
        default_route: the key of the route the listeners forward to by default ("" for the single service).
        route_target_groups: each other route's target group's arn suffix, by its key (its alarms).
    """

    def __init__(
        self,
        name: str,
        *,
        settings: LoadBalancerSettings,
        network: Network,
        certificate_arn: pulumi.Input[str] | None = None,
        routes: list[WebRoute] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:loadbalancer:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        routes = routes or [single_route(settings)]
        self.ports = sorted({route.port for route in routes})
        group = self._security_group(name, settings, network, self.ports, child)
        balancer = public_balancer(
            name,
            "application",
            settings,
            network,
            group,
            child,
            deletion_protection=settings.deletion_protection,
            drop_invalid_header_fields=True,
            idle_timeout=IDLE_TIMEOUT_SECONDS,
        )
        # The default route's target group keeps the name the single service's always had.
        target_groups = {
            route.key: self._target_group(
                name if route.is_default else f"{name}-{route.key}", settings, network, route, child
            )
            for route in routes
        }
        default = next((route for route in routes if route.is_default), None)
        listener = self._listeners(
            name,
            settings,
            balancer,
            target_groups[default.key] if default else None,
            certificate_arn or settings.certificate_arn,
            child,
        )
        for route in routes:
            if route.is_default:
                continue
            aws.lb.ListenerRule(
                f"{name}-{route.key}",
                listener_arn=listener.arn,
                priority=route.priority,
                actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=target_groups[route.key].arn)],
                conditions=rule_conditions(route, settings.domain_name),
                tags=tags(settings, f"{name}-{route.key}"),
                opts=child,
            )
        target_group = target_groups[(default or routes[0]).key]
        self.dns_name = balancer.dns_name
        if settings.hosted_zone_id:
            self._alias(name, settings, balancer, child)
            for host in sorted({host for route in routes for host in route.hosts} - {settings.domain_name}):
                self._alias(f"{name}-{host}", settings, balancer, child, host)
        if settings.domain_name:  # every certificate here covers it (settings refuse one without)
            self.url = pulumi.Output.from_input(f"https://{settings.domain_name}")
        else:
            self.url = balancer.dns_name.apply(lambda dns: f"http://{dns}")
        self.security_group_id = group.id
        self.target_group_arn = target_group.arn
        self.target_group_arns = [group.arn for group in target_groups.values()]
        self.arn_suffix, self.target_group_arn_suffix = balancer.arn_suffix, target_group.arn_suffix
        self.default_route = (default or routes[0]).key
        self.route_target_groups = {
            key: group.arn_suffix for key, group in target_groups.items() if group is not target_group
        }
        # What the managers attach to, each under a name of its own that no other route's change moves:
        # the default route's group as it always was (`1`), each other route's by its service.
        self.attachments = {
            ("1" if key == "" or (default and key == default.key) else f"route-{key}"): group.arn
            for key, group in target_groups.items()
        }
        self.register_outputs({"dns_name": self.dns_name, "url": self.url})

    def _security_group(
        self,
        name: str,
        settings: LoadBalancerSettings,
        network: Network,
        ports: list[int],
        child: pulumi.ResourceOptions,
    ) -> aws.ec2.SecurityGroup:
        group = security_group(name, settings, network.vpc_id, "restdemo ALB: listeners from anywhere", child)
        for port in listener_ports(settings):
            allow_in(f"{name}-listener-{port}", settings, group, port, f"listener {port}", child, cidr="0.0.0.0/0")
        for port in ports:
            allow_out(
                # publishedPort's rule keeps the name it always had
                f"{name}-to-nodes" if port == settings.published_port else f"{name}-to-nodes-{port}",
                settings,
                group,
                network.vpc_cidr,
                "the routing mesh on every node",
                child,
                port=port,
            )
        return group

    def _target_group(
        self,
        name: str,
        settings: LoadBalancerSettings,
        network: Network,
        route: WebRoute,
        child: pulumi.ResourceOptions,
    ) -> aws.lb.TargetGroup:
        return aws.lb.TargetGroup(
            name,
            vpc_id=network.vpc_id,
            # The routing mesh answers on the service's published port on every node.
            port=route.port,
            protocol="HTTP",
            target_type="instance",
            deregistration_delay=DEREGISTRATION_DELAY_SECONDS,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=route.health_check_path,
                port=str(route.port),
                protocol="HTTP",
                matcher="200",
                interval=HEALTH_CHECK_INTERVAL_SECONDS,
                timeout=HEALTH_CHECK_TIMEOUT_SECONDS,
                healthy_threshold=2,
                unhealthy_threshold=HEALTH_CHECK_UNHEALTHY_THRESHOLD,
            ),
            tags=tags(settings, name),
            opts=child,
        )

    def _listeners(
        self,
        name: str,
        settings: LoadBalancerSettings,
        balancer: aws.lb.LoadBalancer,
        target_group: aws.lb.TargetGroup | None,
        certificate_arn: pulumi.Input[str] | None,
        child: pulumi.ResourceOptions,
    ) -> aws.lb.Listener:
        """HTTP on 80; with a certificate, HTTPS on 443 too, and 80 redirects to it. The one that serves
        (HTTPS when there is one) is returned: the routes' rules go on it. With no default route, a
        request no rule matches is answered 404."""
        forward = [
            aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)
            if target_group
            else aws.lb.ListenerDefaultActionArgs(
                type="fixed-response",
                fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                    content_type="text/plain", status_code="404", message_body="no route"
                ),
            )
        ]
        if certificate_arn:
            serving = aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=balancer.arn,
                port=443,
                protocol="HTTPS",
                certificate_arn=certificate_arn,
                ssl_policy=TLS_POLICY,
                default_actions=forward,
                tags=tags(settings, f"{name}-https"),
                opts=child,
            )
            http_actions = [
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        port="443", protocol="HTTPS", status_code="HTTP_301"
                    ),
                )
            ]
        else:
            http_actions = forward
        http = aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=balancer.arn,
            port=80,
            protocol="HTTP",
            default_actions=http_actions,
            tags=tags(settings, f"{name}-http"),
            opts=child,
        )
        return serving if certificate_arn else http

    def _alias(
        self,
        name: str,
        settings: LoadBalancerSettings,
        balancer: aws.lb.LoadBalancer,
        child: pulumi.ResourceOptions,
        host: str | None = None,
    ) -> aws.route53.Record:
        """domainName (or a route's host), in its hosted zone, as an alias of the ALB (answered by Route 53
        itself)."""
        return aws.route53.Record(
            f"{name}-alias",
            zone_id=settings.hosted_zone_id,
            name=host or settings.domain_name,
            type="A",
            aliases=[
                aws.route53.RecordAliasArgs(
                    name=balancer.dns_name, zone_id=balancer.zone_id, evaluate_target_health=True
                )
            ],
            opts=child,
        )
