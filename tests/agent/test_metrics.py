"""agent/src/restdemo_agent/metrics.py: what the agent measures, and the EMF lines it writes."""

from __future__ import annotations

import json

import pytest

from restdemo_agent.metrics import emf, leader_view, manager_view, memory_used_percent, used_percent
from restdemo_agent.plan import Node, rolled_back_services
from tests.support.alarm_eval import from_emf

pytestmark = pytest.mark.unit

MEMINFO = "MemTotal:        2000000 kB\nMemFree:          100000 kB\nMemAvailable:     500000 kB\n"


def node(id, role="worker", state="ready", leader=False, reachable=True) -> Node:
    return Node(
        id=id, role=role, state=state, availability="active", instance_id=f"i-{id}", leader=leader, reachable=reachable
    )


def service(id, replicas, state=None) -> dict:
    spec = {"Name": id, "Mode": {"Replicated": {"Replicas": replicas}}}
    return {"ID": id, "Spec": spec, **({"UpdateStatus": {"State": state}} if state else {})}


def test_an_emf_line_is_extracted_as_one_datapoint_per_metric_under_the_stacks_dimension():
    line = {"time": "2026-12-02T03:00:00Z", "action": "metrics", **emf("dev", {"AgentHeartbeat": 1, "X": 2.5}, 1e9)}
    points = from_emf([json.dumps(line), "an ordinary log line"])
    assert [(p.metric, p.value, p.namespace, p.dimensions, p.timestamp) for p in points] == [
        ("AgentHeartbeat", 1.0, "restdemo", {"Stack": "dev"}, 1e9),
        ("X", 2.5, "restdemo", {"Stack": "dev"}, 1e9),
    ]
    assert line["_aws"]["Timestamp"] == 1_000_000_000_000  # milliseconds


def test_units_follow_the_metric():
    directive = emf("dev", {"DockerDiskUsedPercent": 1, "RegistryCredentialsAgeSeconds": 2, "NodesReady": 3}, 0)
    units = {m["Name"]: m["Unit"] for m in directive["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {
        "DockerDiskUsedPercent": "Percent",
        "RegistryCredentialsAgeSeconds": "Seconds",
        "NodesReady": "Count",
    }


def test_disk_and_memory_in_use():
    assert used_percent(total=1000, free=150) == 85.0
    assert used_percent(total=0, free=0) == 0.0
    assert memory_used_percent(MEMINFO) == 75.0  # what is not available, as `free` counts it


def test_a_manager_sees_a_leader_or_reports_none():
    nodes = [node("a", "manager", leader=True), node("b", "manager"), node("c", "manager", "down", reachable=False)]
    assert manager_view(nodes) == {"SwarmLeaderSeen": 1, "ManagersReachable": 2}
    assert manager_view([node("b", "manager"), node("c", "manager")]) == {"SwarmLeaderSeen": 0, "ManagersReachable": 2}
    assert manager_view(None) == {"SwarmLeaderSeen": 0, "ManagersReachable": 0}  # the swarm reports an error


def test_the_leaders_view_of_nodes_replicas_updates_and_credentials():
    nodes = [node("a", "manager", leader=True), node("b"), node("c", state="down")]
    services = [
        service("web", 3, "rollback_completed"),
        service("lb", 1),
        {"ID": "g", "Spec": {"Mode": {"Global": {}}}},
    ]
    rolled_back = rolled_back_services(services, {})
    view = leader_view(nodes, services, {"web": 2, "lb": 1, "g": 3}, [120.4, 3600.0], rolled_back=rolled_back)
    assert view == {
        "NodesReady": 2,
        "NodesDown": 1,
        "ReplicasRunning": 3,  # replicated services only
        "ReplicasDesired": 4,
        "ServiceRolledBack": 1,
        "ServiceUpdatePaused": 0,
        "RegistryCredentialsAgeSeconds": 3600,
    }


@pytest.mark.parametrize(
    "state,rolled_back,paused",
    [
        (None, 0, 0),
        ("updating", 0, 0),
        ("completed", 0, 0),
        ("paused", 0, 1),
        ("rollback_started", 1, 0),
        ("rollback_paused", 1, 1),
        ("rollback_completed", 1, 0),
    ],
)
def test_update_states_as_moby_names_them(state, rolled_back, paused):
    services = [service("web", 1, state)]
    view = leader_view([], services, {}, [], rolled_back=rolled_back_services(services, {}))
    assert (view["ServiceRolledBack"], view["ServiceUpdatePaused"]) == (rolled_back, paused)
    assert "RegistryCredentialsAgeSeconds" not in view  # no refresh yet: no age to report


def test_what_the_agent_writes_keeps_the_embedded_metric_formats_rules():
    from tests.fidelity.data.emf import emf_problems

    everything = {
        "AgentHeartbeat": 1,
        "DockerDiskUsedPercent": 41.5,
        "MemoryUsedPercent": 75.0,
        **manager_view([node("a", "manager", leader=True)]),
        **leader_view([node("a", "manager", leader=True)], [service("web", 3)], {"web": 3}, [60.0]),
    }
    line = {"time": "2026-12-02T03:00:00Z", "action": "metrics", **emf("dev", everything, 1.7e9)}
    assert emf_problems(json.loads(json.dumps(line))) == []
    assert len(line["_aws"]["CloudWatchMetrics"][0]["Metrics"]) == 12


def test_failed_node_setups_are_reported_once(tmp_path):
    from restdemo_agent.agent import Agent
    from restdemo_agent.contract import AgentEnvironment
    from restdemo_agent.metrics import setup_failures
    from tests.support.agent_env import WORKER_ENVIRONMENT

    assert (setup_failures(3, 1, 0), setup_failures(3, 1, 2), setup_failures(1, 1, 0)) == (2, 0, 0)
    environment = AgentEnvironment.from_environ({**WORKER_ENVIRONMENT, "RESTDEMO_NODE_STATE_DIR": str(tmp_path)})
    agent = Agent(environment, None, None, None, None, None, None)
    assert agent.failed_setups() == 0  # no counts on this node: nothing to report
    (tmp_path / "setup-runs").write_text("4\n")
    (tmp_path / "setup-successes").write_text("1\n")
    assert (agent.failed_setups(), agent.failed_setups()) == (3, 0)
    assert (tmp_path / "setup-failures-reported").read_text() == "3"


def agent_with(engine, tmp_path, capsys, **env):
    from restdemo_agent.agent import Agent
    from restdemo_agent.contract import AgentEnvironment
    from tests.support.agent_env import WORKER_ENVIRONMENT

    environment = AgentEnvironment.from_environ({**WORKER_ENVIRONMENT, "RESTDEMO_NODE_STATE_DIR": str(tmp_path), **env})
    return Agent(environment, None, engine, None, None, None, None)


def written(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_reading_that_fails_leaves_the_heartbeat_and_the_other_readings(tmp_path, capsys):
    """A node whose data root cannot be read still says it is alive (else the heartbeat alarm
    would call a live node dead), and says which reading failed."""
    import boto3
    from moto import mock_aws

    agent = agent_with(None, tmp_path, capsys, RESTDEMO_DOCKER_ROOT=str(tmp_path / "gone"))
    with mock_aws():
        agent.cloudwatch = boto3.client(
            "cloudwatch", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        agent.report_metrics()
        agent.report_metrics()  # the same period: nothing more
        sent = agent.cloudwatch.list_metrics(Namespace="restdemo/workers")["Metrics"]
    lines = written(capsys)
    errors = [line["reading"] for line in lines if line["action"] == "metrics-error"]
    (metrics,) = [line for line in lines if line["action"] == "metrics"]
    assert errors == ["node_readings", "swarm_readings"]
    assert metrics["AgentHeartbeat"] == 1.0 and "DockerDiskUsedPercent" not in metrics
    assert [m["MetricName"] for m in sent] == ["AgentHeartbeat"]


class Leader:
    """The Engine calls the metrics make, answering as a one-node swarm's leader would."""

    def __init__(self, services):
        self.listed = services

    def is_manager(self):
        return True

    def swarm_error(self):
        return ""

    def node_id(self):
        return "a"

    def nodes(self):
        return [node("a", "manager", leader=True)]

    def services(self):
        return self.listed

    def running(self):
        return {}


def ecr_service(id):
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/restdemo-dev:v1-0123456789ab@sha256:" + "0" * 64
    return {**service(id, 1), "Spec": {**service(id, 1)["Spec"], "TaskTemplate": {"ContainerSpec": {"Image": image}}}}


class LeaderlessManager(Leader):
    def nodes(self):
        raise RuntimeError("rpc error: code = Unknown desc = The swarm does not have a leader.")


def test_a_manager_that_cannot_list_the_nodes_reports_that_it_sees_no_leader(tmp_path, capsys):
    agent = agent_with(LeaderlessManager([]), tmp_path, capsys)
    assert agent.swarm_readings() == {"SwarmLeaderSeen": 0, "ManagersReachable": 0}


class RunningLeader(Leader):
    def running(self):
        return {"web": 2, "api": 0}


def test_the_leader_writes_a_line_per_service_and_no_stale_one_after_a_failed_reading(tmp_path, capsys):
    import dataclasses

    def with_image(found: dict) -> dict:
        return {**found, "Spec": {**found["Spec"], "TaskTemplate": {"ContainerSpec": {"Image": "ghcr.io/x:1"}}}}

    agent = agent_with(RunningLeader([with_image(service("web", 2)), with_image(service("api", 1))]), tmp_path, capsys)
    agent.environment = dataclasses.replace(agent.environment, role="manager")  # its lines are EMF
    agent.held_at_maximum = {"web": True, "gone": True}  # web follows the load (the leader's last look)
    agent.write_metrics(agent.swarm_readings())
    lines = [line for line in written(capsys) if line["action"] == "service-metrics"]
    points = from_emf([json.dumps(line) for line in lines])
    assert sorted((p.dimensions["Service"], p.metric, p.value) for p in points) == [
        ("api", "ServiceReplicasMissing", 1.0),
        ("web", "ServiceAtMaxReplicas", 1.0),
        ("web", "ServiceReplicasMissing", 0.0),
    ]
    assert {p.dimensions["Stack"] for p in points} == {"dev"}
    agent.engine = LeaderlessManager([])
    agent.write_metrics(agent.swarm_readings())
    assert [line for line in written(capsys) if line["action"] == "service-metrics"] == []
