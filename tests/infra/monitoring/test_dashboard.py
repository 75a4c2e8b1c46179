"""infra/monitoring/dashboard.py: the dashboard's widgets and their metrics."""

from __future__ import annotations

import json

import pytest

from infra.monitoring.dashboard import dashboard_body

pytestmark = pytest.mark.unit


def body(**app: dict[str, str]) -> dict:
    return json.loads(
        dashboard_body(
            region="eu-west-1",
            stack="dev",
            web_balancer="app/web/1",
            web_target_group="targetgroup/web/2",
            admin_balancer="net/admin/3",
            admin_target_group="targetgroup/admin/4",
            groups={"manager": "restdemo-dev-managers", "worker": "restdemo-dev-workers"},
            alarm_arns=["arn:b", "arn:a"],
            **app,
        )
    )


def test_requests_errors_latency_hosts_groups_and_the_alarms():
    widgets = body()["widgets"]
    assert [w["properties"]["title"] for w in widgets] == [
        "Requests",
        "5xx answers",
        "Latency (s)",
        "Healthy hosts",
        "Instances in service / desired",
        "Replicas running / desired",
        "Leader and managers",
        "Nodes",
        "Disk and memory in use, fullest node (%)",
        "Alarms",
    ]
    assert widgets[-1] == {
        "type": "alarm",
        "x": 12,
        "y": 24,
        "width": 12,
        "height": 6,
        "properties": {"title": "Alarms", "alarms": ["arn:a", "arn:b"]},
    }


def test_latency_shows_p50_and_p99_of_the_albs_target_response_time():
    latency = body()["widgets"][2]["properties"]["metrics"]
    assert latency == [
        ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", "app/web/1", {"stat": "p50", "label": "p50"}],
        ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", "app/web/1", {"stat": "p99", "label": "p99"}],
    ]


def test_the_swarm_as_the_agents_report_it():
    replicas = body()["widgets"][5]["properties"]["metrics"]
    assert replicas == [
        ["restdemo", "ReplicasRunning", "Stack", "dev", {"label": "running"}],
        ["restdemo", "ReplicasDesired", "Stack", "dev", {"label": "desired"}],
    ]


def test_the_groups_in_service_and_desired():
    groups = body()["widgets"][4]["properties"]["metrics"]
    assert [m[1:4] for m in groups] == [
        ["GroupInServiceInstances", "AutoScalingGroupName", "restdemo-dev-managers"],
        ["GroupDesiredCapacity", "AutoScalingGroupName", "restdemo-dev-managers"],
        ["GroupInServiceInstances", "AutoScalingGroupName", "restdemo-dev-workers"],
        ["GroupDesiredCapacity", "AutoScalingGroupName", "restdemo-dev-workers"],
    ]


def test_a_compose_stack_shows_each_route_and_each_service():
    """Requests, 5xx and healthy hosts per route (its target group), replicas missing per service
    (the leader's line for it): the stack's sums hide which one is failing."""
    widgets = body(
        routes={"web": "targetgroup/web-web/5", "api": "targetgroup/web-api/6"},
        services={"web": "restdemo_web", "api": "restdemo_api", "worker": "restdemo_worker"},
    )["widgets"]
    added = {w["properties"]["title"]: w for w in widgets[10:]}
    assert list(added) == [
        "Requests per route",
        "5xx answers per route",
        "Healthy hosts per route",
        "Replicas missing per service",
    ]
    assert added["Requests per route"]["properties"]["metrics"] == [
        [
            "AWS/ApplicationELB",
            "RequestCount",
            "TargetGroup",
            "targetgroup/web-api/6",
            "LoadBalancer",
            "app/web/1",
            {"label": "api"},
        ],
        [
            "AWS/ApplicationELB",
            "RequestCount",
            "TargetGroup",
            "targetgroup/web-web/5",
            "LoadBalancer",
            "app/web/1",
            {"label": "web"},
        ],
    ]
    assert [m[1] for m in added["5xx answers per route"]["properties"]["metrics"]] == ["HTTPCode_Target_5XX_Count"] * 2
    assert added["Healthy hosts per route"]["properties"]["stat"] == "Minimum"
    assert added["Replicas missing per service"]["properties"]["metrics"] == [
        ["restdemo", "ServiceReplicasMissing", "Stack", "dev", "Service", "restdemo_api", {"label": "api"}],
        ["restdemo", "ServiceReplicasMissing", "Stack", "dev", "Service", "restdemo_web", {"label": "web"}],
        ["restdemo", "ServiceReplicasMissing", "Stack", "dev", "Service", "restdemo_worker", {"label": "worker"}],
    ]
    assert [(w["x"], w["y"]) for w in widgets[10:]] == [(0, 30), (12, 30), (0, 36), (12, 36)]
    assert len(body()["widgets"]) == 10  # the single service's dashboard as it was


def test_a_stack_with_volumes_shows_its_file_system():
    widgets = body(file_system="fs-0123456789abcdef0")["widgets"]
    (efs,) = [w for w in widgets if w["properties"]["title"] == "Volumes (EFS)"]
    assert [m[:4] for m in efs["properties"]["metrics"]] == [
        ["AWS/EFS", "PercentIOLimit", "FileSystemId", "fs-0123456789abcdef0"],
        ["AWS/EFS", "ClientConnections", "FileSystemId", "fs-0123456789abcdef0"],
        ["AWS/EFS", "MeteredIOBytes", "FileSystemId", "fs-0123456789abcdef0"],
    ]
    assert (efs["x"], efs["y"]) == (0, 42)
