"""The stack's CloudWatch dashboard as data: `dashboard_body` builds its JSON from plain values.

The body follows CloudWatch's dashboard body structure (widgets of type metric, alarm, text; each
metric an array [namespace, name, dimension name, value, ..., {options}]).
"""

from __future__ import annotations

import json

from restdemo_agent.contract import (
    DISK_USED_PERCENT,
    LEADER_SEEN,
    MANAGERS_REACHABLE,
    MEMORY_USED_PERCENT,
    METRICS_DIMENSION,
    METRICS_NAMESPACE,
    NODES_DOWN,
    NODES_READY,
    REPLICAS_DESIRED,
    REPLICAS_RUNNING,
    SERVICE_DIMENSION,
    SERVICE_REPLICAS_MISSING,
    WORKER_METRICS_NAMESPACE,
)

WIDTH, HEIGHT = 12, 6


def _widget(title: str, metrics: list[list], *, region: str, stat: str, x: int, y: int) -> dict:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": WIDTH,
        "height": HEIGHT,
        "properties": {
            "title": title,
            "region": region,
            "stat": stat,
            "period": 60,
            "view": "timeSeries",
            "metrics": metrics,
        },
    }


def dashboard_body(
    *,
    region: str,
    stack: str,
    web_balancer: str,
    web_target_group: str,
    admin_balancer: str,
    admin_target_group: str,
    groups: dict[str, str],
    alarm_arns: list[str],
    routes: dict[str, str] | None = None,
    services: dict[str, str] | None = None,
    file_system: str | None = None,
    database: str | None = None,
) -> str:
    """The stack's widgets; with a Compose stack's `routes` (each one's target group, by its service)
    and `services` (each one's name in the swarm), charts below with a line per route and per service."""
    alb, lb = "AWS/ApplicationELB", ["LoadBalancer", web_balancer]

    def swarm(name: str, label: str) -> list:
        return [METRICS_NAMESPACE, name, METRICS_DIMENSION, stack, {"label": label}]

    def workers(name: str, label: str) -> list:
        return [WORKER_METRICS_NAMESPACE, name, METRICS_DIMENSION, stack, {"label": label}]

    targets = ["TargetGroup", web_target_group, "LoadBalancer", web_balancer]
    widgets = [
        _widget("Requests", [[alb, "RequestCount", *lb]], region=region, stat="Sum", x=0, y=0),
        _widget(
            "5xx answers",
            [[alb, "HTTPCode_Target_5XX_Count", *lb], [alb, "HTTPCode_ELB_5XX_Count", *lb]],
            region=region,
            stat="Sum",
            x=WIDTH,
            y=0,
        ),
        _widget(
            "Latency (s)",
            [
                [alb, "TargetResponseTime", *lb, {"stat": "p50", "label": "p50"}],
                [alb, "TargetResponseTime", *lb, {"stat": "p99", "label": "p99"}],
            ],
            region=region,
            stat="p99",
            x=0,
            y=HEIGHT,
        ),
        _widget(
            "Healthy hosts",
            [
                [alb, "HealthyHostCount", *targets, {"label": "web: nodes"}],
                [alb, "UnHealthyHostCount", *targets, {"label": "web: unhealthy"}],
                [
                    "AWS/NetworkELB",
                    "HealthyHostCount",
                    "TargetGroup",
                    admin_target_group,
                    "LoadBalancer",
                    admin_balancer,
                    # ELB reports it only while requests flow, and each of its nodes counts its own
                    # zone's targets (cross-zone off): the managers' own count is the other widget's.
                    {"label": "admin: ready managers in the fullest zone (while requests flow)", "stat": "Maximum"},
                ],
            ],
            region=region,
            stat="Minimum",
            x=WIDTH,
            y=HEIGHT,
        ),
        _widget(
            "Instances in service / desired",
            [
                ["AWS/AutoScaling", metric, "AutoScalingGroupName", group, {"label": f"{role}s: {label}"}]
                for role, group in groups.items()
                for metric, label in (("GroupInServiceInstances", "in service"), ("GroupDesiredCapacity", "desired"))
            ],
            region=region,
            stat="Maximum",
            x=0,
            y=2 * HEIGHT,
        ),
        _widget(
            "Replicas running / desired",
            [swarm(REPLICAS_RUNNING, "running"), swarm(REPLICAS_DESIRED, "desired")],
            region=region,
            stat="Maximum",
            x=WIDTH,
            y=2 * HEIGHT,
        ),
        _widget(
            "Leader and managers",
            [swarm(LEADER_SEEN, "a manager sees a leader"), swarm(MANAGERS_REACHABLE, "managers reachable")],
            region=region,
            stat="Maximum",
            x=0,
            y=3 * HEIGHT,
        ),
        _widget(
            "Nodes",
            [swarm(NODES_READY, "ready"), swarm(NODES_DOWN, "down")],
            region=region,
            stat="Maximum",
            x=WIDTH,
            y=3 * HEIGHT,
        ),
        _widget(
            "Disk and memory in use, fullest node (%)",
            [
                swarm(DISK_USED_PERCENT, "managers: Docker data root"),
                swarm(MEMORY_USED_PERCENT, "managers: memory"),
                workers(DISK_USED_PERCENT, "workers: Docker data root"),
                workers(MEMORY_USED_PERCENT, "workers: memory"),
            ],
            region=region,
            stat="Maximum",
            x=0,
            y=4 * HEIGHT,
        ),
        {
            "type": "alarm",
            "x": WIDTH,
            "y": 4 * HEIGHT,
            "width": WIDTH,
            "height": HEIGHT,
            "properties": {"title": "Alarms", "alarms": sorted(alarm_arns)},
        },
    ]
    widgets += _app_widgets(region, stack, web_balancer, routes or {}, services or {}, y=5 * HEIGHT)
    if file_system:
        efs = ["AWS/EFS", "FileSystemId", file_system]
        widgets.append(
            _widget(
                "Volumes (EFS)",
                [
                    [efs[0], "PercentIOLimit", *efs[1:], {"label": "I/O limit used (%)", "stat": "Maximum"}],
                    [efs[0], "ClientConnections", *efs[1:], {"label": "client connections", "stat": "Sum"}],
                    [efs[0], "MeteredIOBytes", *efs[1:], {"label": "bytes read and written", "stat": "Sum"}],
                ],
                region=region,
                stat="Maximum",
                x=0,
                y=7 * HEIGHT,
            )
        )
    if database:
        rds = ["AWS/RDS", "DBInstanceIdentifier", database]
        widgets.append(
            _widget(
                "Database (RDS)",
                [
                    [rds[0], "CPUUtilization", *rds[1:], {"label": "CPU (%)", "stat": "Average"}],
                    [rds[0], "DatabaseConnections", *rds[1:], {"label": "connections"}],
                    [rds[0], "FreeStorageSpace", *rds[1:], {"label": "free storage (bytes)", "yAxis": "right"}],
                    [
                        rds[0],
                        "ReplicationSlotDiskUsage",
                        *rds[1:],
                        {"label": "WAL held by slots (bytes)", "yAxis": "right"},
                    ],
                ],
                region=region,
                stat="Maximum",
                x=WIDTH,
                y=7 * HEIGHT,
            )
        )
    return json.dumps({"widgets": widgets}, sort_keys=True)


def _app_widgets(
    region: str, stack: str, web_balancer: str, routes: dict[str, str], services: dict[str, str], *, y: int
) -> list[dict]:
    """Each route's requests, 5xx and healthy hosts, and each service's missing replicas: the stack's
    sums above hide which one fails."""

    def per_route(metric: str) -> list[list]:
        return [
            ["AWS/ApplicationELB", metric, "TargetGroup", group, "LoadBalancer", web_balancer, {"label": route}]
            for route, group in sorted(routes.items())
        ]

    charts = []
    if routes:
        charts += [
            ("Requests per route", per_route("RequestCount"), "Sum"),
            ("5xx answers per route", per_route("HTTPCode_Target_5XX_Count"), "Sum"),
            ("Healthy hosts per route", per_route("HealthyHostCount"), "Minimum"),
        ]
    if services:
        missing = [
            [
                METRICS_NAMESPACE,
                SERVICE_REPLICAS_MISSING,
                METRICS_DIMENSION,
                stack,
                SERVICE_DIMENSION,
                name,
                {"label": key},
            ]
            for key, name in sorted(services.items())
        ]
        charts.append(("Replicas missing per service", missing, "Maximum"))
    return [
        _widget(title, metrics, region=region, stat=stat, x=(i % 2) * WIDTH, y=y + (i // 2) * HEIGHT)
        for i, (title, metrics, stat) in enumerate(charts)
    ]
