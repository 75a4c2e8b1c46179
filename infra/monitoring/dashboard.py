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
) -> str:
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
    return json.dumps({"widgets": widgets}, sort_keys=True)
