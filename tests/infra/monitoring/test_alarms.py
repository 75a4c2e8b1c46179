"""infra/monitoring/alarms.py: which alarms a stack has, when each fires, and what its page says."""

from __future__ import annotations

import functools
import json

import pytest

from infra.config.settings import Settings
from infra.monitoring.alarms import AlarmSettings, Watched, alarm_args, alarm_specs, description, quorum
from tests.support.alarm_eval import OK, Alarm, Datapoint, evaluate, first_alarm, from_emf

pytestmark = pytest.mark.unit

WATCHED = Watched(
    stack="dev",
    web_balancer="app/web/1",
    web_target_group="targetgroup/web/2",
    admin_balancer="net/admin/3",
    admin_target_group="targetgroup/admin/4",
    groups={"manager": "restdemo-dev-managers", "worker": "restdemo-dev-workers"},
)


def specs(**settings):
    return {spec.key: spec for spec in alarm_specs(AlarmSettings.of(Settings(**settings)), WATCHED)}


def test_every_stack_watches_the_load_balancers_and_both_groups():
    assert sorted(specs()) == [
        "managers-below-desired",
        "managers-below-quorum",
        "node-bootstrap-gave-up",
        "node-disk-high",
        "node-heartbeat-missing",
        "registry-credentials-stale",
        "replicas-below-desired",
        "service-rolled-back",
        "swarm-no-leader",
        "web-5xx-share",
        "web-latency-p99",
        "web-unhealthy-hosts",
        "workers-below-desired",
    ]


def test_the_swarms_alarms_read_the_agents_metrics_of_this_stack():
    """The swarm-level ones from the managers' only (EMF in the swarm's log group); the node ones from
    the managers' and the workers' namespace (PutMetricData) together."""
    for key in ("swarm-no-leader", "service-rolled-back", "managers-below-quorum"):
        metric = specs()[key].metric
        assert (metric.namespace, metric.dimensions) == ("restdemo", {"Stack": "dev"})
    for key in ("replicas-below-desired",):
        assert {(m.namespace, m.dimensions["Stack"]) for m in specs()[key].inputs.values()} == {("restdemo", "dev")}
    heartbeat = specs(manager_count=3, worker_count=2)["node-heartbeat-missing"]
    # Each role against its own count: a worker's forged heartbeats cannot cover a silent manager.
    assert heartbeat.expression == "IF((FILL(m1, 0) < 3) OR (FILL(m2, 0) < 2), 1, 0)"
    assert {(m.namespace, m.name, m.stat) for m in heartbeat.inputs.values()} == {
        ("restdemo", "AgentHeartbeat", "Sum"),
        ("restdemo/workers", "AgentHeartbeat", "Sum"),
    }
    assert (heartbeat.threshold, heartbeat.comparison, heartbeat.missing, heartbeat.periods) == (
        1,
        "GreaterThanOrEqualToThreshold",
        "breaching",
        5,
    )
    disk = specs()["node-disk-high"]
    assert disk.expression == "MAX([m1, m2])" and {m.namespace for m in disk.inputs.values()} == {
        "restdemo",
        "restdemo/workers",
    }
    leader = specs()["swarm-no-leader"]
    assert (leader.metric.name, leader.threshold, leader.periods, leader.datapoints, leader.missing) == (
        "SwarmLeaderSeen",
        1,
        3,
        2,
        "breaching",
    )
    for key in ("replicas-below-desired", "service-rolled-back", "registry-credentials-stale", "node-disk-high"):
        assert specs()[key].missing == "ignore", key  # an ongoing state: a lost minute changes nothing
    assert specs()["registry-credentials-stale"].threshold == 6 * 3600


@pytest.mark.parametrize("managers,needed", [(1, 1), (3, 2), (5, 3)])
def test_the_quorum_alarm_fires_below_a_majority_of_the_managers(managers, needed):
    assert quorum(managers) == needed
    spec = specs(manager_count=managers)["managers-below-quorum"]
    assert (spec.comparison, spec.threshold, spec.missing) == ("LessThanThreshold", needed, "breaching")
    assert (spec.metric.namespace, spec.metric.name, spec.metric.stat) == ("restdemo", "ManagersReachable", "Maximum")
    assert spec.metric.dimensions == {"Stack": "dev"}


# --- the quorum and 5xx alarms, evaluated (tests/support/alarm_eval.py) on the program's own inputs --

T = 1_800_000_000  # a whole minute
ALARM_TYPE = "aws:cloudwatch/metricAlarm:MetricAlarm"
# The alarm as it was: the admin NLB's HealthyHostCount (Minimum, no zone), missing data breaching.
NLB_QUORUM_ALARM = {
    "comparisonOperator": "LessThanThreshold",
    "threshold": 2.0,
    "evaluationPeriods": 2.0,
    "datapointsToAlarm": 2.0,
    "treatMissingData": "breaching",
    "namespace": "AWS/NetworkELB",
    "metricName": "HealthyHostCount",
    "dimensions": {"TargetGroup": "targetgroup/admin-0/fedcba9876543210", "LoadBalancer": "net/admin/0123456789abcdef"},
    "period": 60.0,
    "statistic": "Minimum",
}


@functools.cache
def program_alarm(stack: str, key: str) -> Alarm:
    from tests.support.pulumi_program import run_program

    return Alarm.from_inputs(run_program(stack).named(ALARM_TYPE, f"monitoring-{key}").inputs)


def managers_report(stack: str, minutes: range, reachable: list[float]) -> list[Datapoint]:
    """Each reporting manager's ManagersReachable, once a minute, as its agent writes it."""
    return [
        Datapoint(T + m * 60 + 5 + i, value, "ManagersReachable", "restdemo", {"Stack": stack}, "Count")
        for m in minutes
        for i, value in enumerate(reachable)
    ]


def nlb_nodes_report(minutes: range, per_node: list[float]) -> list[Datapoint]:
    """The admin NLB's nodes, one per zone, each counting its own zone's healthy targets (cross-zone
    off), while requests flow."""
    dimensions = NLB_QUORUM_ALARM["dimensions"]
    return [
        Datapoint(T + m * 60 + 30, value, "HealthyHostCount", "AWS/NetworkELB", dict(dimensions), "Count")
        for m in minutes
        for value in per_node
    ]


@pytest.mark.parametrize("stack", ["staging", "prod"])
@pytest.mark.parametrize("traffic", ["idle", "requests flowing"])
def test_the_quorum_alarm_is_quiet_on_a_healthy_stack_idle_or_spread_over_zones(stack, traffic):
    """Three healthy managers, one per zone. ELB reports nothing while no request flows (every stack
    reaches its API through Session Manager by default), and each NLB node counts its own zone's
    targets: the NLB-based alarm paged for ever in both cases; the managers' own count does not."""
    minutes = range(30)
    nlb = [] if traffic == "idle" else nlb_nodes_report(minutes, [1.0, 1.0, 1.0])
    data = managers_report(stack, minutes, [3.0, 3.0, 3.0]) + nlb
    states = evaluate(program_alarm(stack, "managers-below-quorum"), data, T + 300, T + 1800)
    assert {state for _, state in states} == {OK}
    assert first_alarm(Alarm.from_inputs(NLB_QUORUM_ALARM), data, T + 300, T + 1800) is not None


def test_the_quorum_alarm_pages_within_five_minutes_of_losing_two_managers_of_three():
    """Two managers' instances die at minute 15: their agents go silent, and the survivor sees no
    leader and reports 0 reachable (it cannot list the nodes); or every manager goes silent."""
    lost = T + 15 * 60
    alarm = program_alarm("prod", "managers-below-quorum")
    data = managers_report("prod", range(15), [3.0, 3.0, 3.0]) + managers_report("prod", range(15, 30), [0.0])
    fired = first_alarm(alarm, data, T + 300, T + 1800)
    assert fired is not None and 0 < fired - lost <= 300
    silent = managers_report("prod", range(15), [3.0, 3.0, 3.0])
    fired = first_alarm(alarm, silent, T + 300, T + 1800)
    assert fired is not None and 0 < fired - lost <= 300


def test_the_5xx_alarm_is_a_share_of_the_requests_and_quiet_without_traffic():
    spec = specs()["web-5xx-share"]
    answers = "MAX([FILL(m3, 0), (FILL(m1, 0) + FILL(m2, 0))])"
    assert spec.expression == f"IF({answers} >= 10, 100 * (FILL(m1, 0) + FILL(m2, 0)) / {answers}, 0)"
    assert {i: m.name for i, m in spec.inputs.items()} == {
        "m1": "HTTPCode_Target_5XX_Count",
        "m2": "HTTPCode_ELB_5XX_Count",
        "m3": "RequestCount",
    }
    assert (spec.threshold, spec.periods, spec.datapoints, spec.missing) == (5.0, 5, 3, "notBreaching")


def test_the_5xx_alarm_needs_ten_answers_a_minute():
    """One 5xx in each of three quiet minutes (100 % of one request) pages nobody; an outage of ten
    answers a minute, all 5xx from the ALB (not counted in RequestCount), still does."""
    alarm = program_alarm("prod", "web-5xx-share")
    web = next(q.metric.dimensions for q in alarm.queries if q.metric)

    def minute(m: int, name: str, value: float) -> Datapoint:
        return Datapoint(T + m * 60 + 7, value, name, "AWS/ApplicationELB", dict(web), "Count")

    quiet = [
        point
        for m in (1, 2, 3)
        for point in (minute(m, "RequestCount", 1.0), minute(m, "HTTPCode_Target_5XX_Count", 1.0))
    ]
    assert first_alarm(alarm, quiet, T, T + 600) is None
    outage = [minute(m, "HTTPCode_ELB_5XX_Count", 10.0) for m in (1, 2, 3)]
    assert first_alarm(alarm, outage, T, T + 600) == T + 240


def test_below_desired_is_ten_minutes_of_desired_minus_in_service():
    spec = specs()["workers-below-desired"]
    assert spec.expression == "m1 - m2" and (spec.periods, spec.datapoints, spec.period) == (10, 10, 60)
    assert {m.name for m in spec.inputs.values()} == {"GroupDesiredCapacity", "GroupInServiceInstances"}
    assert {m.dimensions["AutoScalingGroupName"] for m in spec.inputs.values()} == {"restdemo-dev-workers"}


def test_the_replicas_alarm_names_the_service_to_look_at():
    assert specs()["replicas-below-desired"].action.startswith("docker service ps restdemo: ")
    second_app = {"build_context": "tests/e2e/second_app", "build_target": "serve", "container_port": 9090}
    shop = specs(service_name="shop", health_check=[], **second_app)
    assert shop["replicas-below-desired"].action.startswith("docker service ps shop: ")


def test_a_single_metric_alarm_and_a_percentile():
    args = alarm_args("dev", specs()["web-latency-p99"], "arn:topic", "https://runbook")
    assert args["name"] == "restdemo-dev-web-latency-p99"
    assert args["extended_statistic"] == "p99" and "statistic" not in args
    assert (args["alarm_actions"], args["ok_actions"]) == (["arn:topic"], ["arn:topic"])
    assert (args["namespace"], args["metric_name"], args["period"]) == ("AWS/ApplicationELB", "TargetResponseTime", 60)


def test_a_metric_math_alarm_returns_only_the_expression():
    args = alarm_args("dev", specs()["web-5xx-share"], "arn:topic", "https://runbook")
    assert "metric_name" not in args and "statistic" not in args
    assert [(q["id"], q["return_data"]) for q in args["metric_queries"]] == [
        ("e1", True),
        ("m1", False),
        ("m2", False),
        ("m3", False),
    ]
    assert args["metric_queries"][1]["metric"]["stat"] == "Sum"


def test_each_description_says_what_broke_what_to_do_and_where_the_runbook_is():
    for spec in specs().values():
        text = description(spec, "https://example.com/docs/operations.md")
        assert text.startswith(spec.broke) and spec.action in text
        assert text.endswith(f"Runbook: https://example.com/docs/operations.md#{spec.runbook}")


def test_every_runbook_link_leads_to_a_section_of_the_operations_guide():
    from tests.support.pulumi_program import REPO
    from tests.test_docs import anchors

    sections = anchors((REPO / "docs" / "operations.md").read_text())
    assert {spec.runbook for spec in specs().values()} <= sections


def test_each_failure_of_the_operations_guide_names_the_alarm_that_reports_it():
    import re

    from tests.support.pulumi_program import REPO

    guide = (REPO / "docs" / "operations.md").read_text()
    section = guide[guide.index("### When things go wrong") : guide.index("### By hand, on a manager")]
    failures = re.split(r"^#### ", section, flags=re.M)[1:]
    assert len(failures) >= 15
    known = set(specs()) | {"autoscaling-failures"}
    for failure in failures:
        heading = failure.splitlines()[0]
        alarm_lines = [line for line in failure.splitlines() if line.startswith("- Alarm:")]
        assert len(alarm_lines) == 1, f"{heading}: no '- Alarm:' line"
        text = failure[failure.index("- Alarm:") :].split("\n- ")[0]
        named = {name for name in re.findall(r"`([a-z0-9-]+)`", text) if "-" in name}
        assert named <= known, f"{heading}: {named - known} are not alarms of the stack"


def test_without_a_runbook_address_a_page_names_the_section_instead_of_a_relative_link():
    text = description(specs()["swarm-no-leader"], None)
    assert text.endswith(
        "Runbook: docs/operations.md, section #a-manager-has-no-quorum (set restdemo:runbookUrl for a link)"
    )


# --- what a worker taken over can write, and what CloudWatch makes of it ---------------------------


def emf_line(stack: str, at: float, **metrics: float) -> str:
    from restdemo_agent.metrics import emf

    return json.dumps({"action": "metrics", **emf(stack, metrics, at)})


def ingested(run, writes: list[tuple], classes: dict[str, str], policies: dict[str, dict]) -> list[Datapoint]:
    """The datapoints CloudWatch makes of what nodes write: an EMF line counts only when its writer's
    role may write to that log group and the group is of the Standard class (Infrequent Access
    extracts no metrics: CloudWatch Logs "Log classes"); a PutMetricData only when its writer's role
    may put that namespace (IAM's `cloudwatch:namespace`). `writes`: (role, "log", group, line) or
    (role, "put", namespace, datapoints)."""
    from tests.support.iam_eval import Request, identity_allows

    points = []
    for role, kind, target, payload in writes:
        principal = f"arn:aws:iam::123456789012:role/restdemo-{run.stack}-eu-west-1-{role}"
        if kind == "log":
            stream = f"arn:aws:logs:eu-west-1:123456789012:log-group:{target}:log-stream:x"
            allowed = identity_allows([policies[role]], Request(principal, "logs:PutLogEvents", stream))
            if allowed and classes.get(target) == "STANDARD":
                points += from_emf([payload])
        else:
            request = Request(principal, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": target})
            if identity_allows([policies[role]], request):
                points += payload
    return points


def test_forged_worker_metrics_do_not_mask_the_swarm_alarms():
    """Four failures from minute 10, each on its own: the swarm loses its leader, or its service runs
    3 of 6 replicas, or the managers see 1 of 3 reachable (the leader's and the managers' view), or
    one manager's agent hangs (its heartbeat stops). A worker taken over writes, every minute, what
    would keep every one of those alarms quiet (a leader seen, 999 replicas running, 3 managers
    reachable, 99 heartbeats) into every log group and namespace it can name. With the groups and
    roles the program makes, none of it reaches what those alarms read: each pages. With the one
    Standard group every node wrote before, the same stream kept them quiet."""
    from tests.support.aws_stack import policy_of
    from tests.support.pulumi_program import run_program

    run = run_program("prod")
    stack, swarm_group = run.stack, f"/restdemo/{run.stack}"
    policies = {role: policy_of(run, role) for role in ("manager", "worker")}
    log_groups = run.of_type("aws:cloudwatch/logGroup:LogGroup")
    classes = {r.inputs["name"]: r.inputs.get("logGroupClass", "STANDARD") for r in log_groups}
    forged_values = {
        "SwarmLeaderSeen": 1,
        "ReplicasRunning": 999,
        "ReplicasDesired": 1,
        "ManagersReachable": 3,
        "AgentHeartbeat": 99,
    }

    def in_namespace(line: str, namespace: str) -> list[Datapoint]:
        return from_emf([line.replace('"restdemo"', f'"{namespace}"', 1)])

    def forgeries(at: float) -> list[tuple]:
        forged = emf_line(stack, at + 1, **forged_values)
        writes = [("worker", "log", group, forged) for group in classes]
        return writes + [("worker", "put", ns, in_namespace(forged, ns)) for ns in ("restdemo", "restdemo/workers")]

    def scenario(genuine) -> list[tuple]:
        """`genuine(minute, at)`: what the healthy nodes write that minute; the forger adds its own."""
        return [
            w for minute in range(30) for w in (*genuine(minute, T + minute * 60 + 5), *forgeries(T + minute * 60 + 5))
        ]

    def managers_say(healthy: dict, failing: dict):
        return lambda minute, at: [
            ("manager", "log", swarm_group, emf_line(stack, at, **(healthy if minute < 10 else failing)))
        ]

    def heartbeats(minute: int, at: float) -> list[tuple]:
        """prod's 3 managers (the first one's agent hangs at minute 10) and 3 workers."""
        beat = emf_line(stack, at, AgentHeartbeat=1)
        writes = [("manager", "log", swarm_group, beat) for index in range(3) if index or minute < 10]
        return writes + [("worker", "put", "restdemo/workers", in_namespace(beat, "restdemo/workers"))] * 3

    cases = (
        ("swarm-no-leader", scenario(managers_say({"SwarmLeaderSeen": 1}, {"SwarmLeaderSeen": 0}))),
        (
            "replicas-below-desired",
            scenario(
                managers_say(
                    {"SwarmLeaderSeen": 1, "ReplicasDesired": 6, "ReplicasRunning": 6},
                    {"SwarmLeaderSeen": 1, "ReplicasDesired": 6, "ReplicasRunning": 3},
                )
            ),
        ),
        ("managers-below-quorum", scenario(managers_say({"ManagersReachable": 3}, {"ManagersReachable": 1}))),
        ("node-heartbeat-missing", scenario(heartbeats)),
    )
    everyone = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:PutLogEvents"],
                "Resource": f"arn:aws:logs:eu-west-1:123456789012:log-group:{swarm_group}:*",
            },
            {"Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": "*"},
        ]
    }
    for key, writes in cases:
        alarm = program_alarm("prod", key)
        now = ingested(run, writes, classes, policies)
        assert first_alarm(alarm, now, T + 600, T + 1800) is not None, key
        # Before: one Standard group, every node allowed to write it.
        before = ingested(run, writes, {swarm_group: "STANDARD"}, {"manager": everyone, "worker": everyone})
        assert first_alarm(alarm, before, T + 600, T + 1800) is None, key


def test_each_route_of_a_compose_stack_has_its_5xx_share_and_unhealthy_hosts():
    """The default route keeps the stack's own alarms; each other route's are on its target group, its
    5xx share over its own requests, quiet under ten answers a minute."""
    from tests.support.stack_variants import COMPOSE_HOSTS_VARIANT, variant_run

    run = variant_run("dev", COMPOSE_HOSTS_VARIANT)
    keys = sorted(r.name.removeprefix("monitoring-") for r in run.of_type(ALARM_TYPE) if "web-" in r.name)
    assert keys == [
        "web-5xx-share",
        "web-5xx-share-admin",
        "web-5xx-share-api",
        "web-latency-p99",
        "web-unhealthy-hosts",
        "web-unhealthy-hosts-admin",
        "web-unhealthy-hosts-api",
    ]
    alarm = Alarm.from_inputs(run.named(ALARM_TYPE, "monitoring-web-5xx-share-admin").inputs)
    admin = next(q.metric.dimensions for q in alarm.queries if q.metric)
    assert set(admin) == {"TargetGroup", "LoadBalancer"}

    def minute(m: int, name: str, value: float) -> Datapoint:
        return Datapoint(T + m * 60 + 7, value, name, "AWS/ApplicationELB", dict(admin), "Count")

    quiet = [
        p for m in (1, 2, 3) for p in (minute(m, "RequestCount", 1.0), minute(m, "HTTPCode_Target_5XX_Count", 1.0))
    ]
    assert first_alarm(alarm, quiet, T, T + 600) is None
    failing = [
        p for m in (1, 2, 3) for p in (minute(m, "RequestCount", 20.0), minute(m, "HTTPCode_Target_5XX_Count", 5.0))
    ]
    assert first_alarm(alarm, failing, T, T + 600) == T + 240


def test_each_compose_service_has_its_replicas_alarm_from_the_leaders_line_for_it():
    """A rollout running an extra task of one service hides nothing of another's shortfall: each service
    is watched on its own line (restdemo_agent.metrics replicas_missing, emf with the service)."""
    from restdemo_agent.metrics import emf, replicas_missing
    from tests.support.stack_variants import COMPOSE_VARIANT, variant_run

    run = variant_run("dev", COMPOSE_VARIANT)
    keys = sorted(r.name for r in run.of_type(ALARM_TYPE) if "replicas-below-desired" in r.name)
    assert keys == [
        "monitoring-replicas-below-desired",
        "monitoring-replicas-below-desired-admin",
        "monitoring-replicas-below-desired-api",
        "monitoring-replicas-below-desired-web",
    ]
    alarm = Alarm.from_inputs(run.named(ALARM_TYPE, "monitoring-replicas-below-desired-api").inputs)
    web_starting_one_more = {"ID": "w", "Spec": {"Name": "restdemo_web", "Mode": {"Replicated": {"Replicas": 2}}}}
    api_lost_its_task = {"ID": "a", "Spec": {"Name": "restdemo_api", "Mode": {"Replicated": {"Replicas": 1}}}}
    missing = replicas_missing([web_starting_one_more, api_lost_its_task], {"w": 3, "a": 0})
    assert missing == {"restdemo_web": 0, "restdemo_api": 1}
    lines = [
        json.dumps(emf("dev", {"ServiceReplicasMissing": value}, T + m * 60 + 5, name))
        for m in range(1, 8)
        for name, value in missing.items()
    ]
    assert first_alarm(alarm, from_emf(lines), T, T + 600) == T + 360
    web = Alarm.from_inputs(run.named(ALARM_TYPE, "monitoring-replicas-below-desired-web").inputs)
    assert first_alarm(web, from_emf(lines), T, T + 600) is None


def test_a_stack_with_volumes_pages_when_their_file_system_nears_its_io_limit():
    from tests.support.pulumi_program import run_program
    from tests.support.stack_variants import COMPOSE_VARIANT, variant_run

    run = variant_run("prod", COMPOSE_VARIANT)
    alarm = run.named(ALARM_TYPE, "monitoring-volumes-io-limit").inputs
    assert (alarm["namespace"], alarm["metricName"], alarm["statistic"], alarm["dimensions"]) == (
        "AWS/EFS",
        "PercentIOLimit",
        "Maximum",
        {"FileSystemId": run.one("aws:efs/fileSystem:FileSystem").name + "-id"},
    )
    assert (alarm["threshold"], alarm["evaluationPeriods"], alarm["datapointsToAlarm"]) == (90, 15, 15)
    assert alarm["treatMissingData"] == "notBreaching"
    assert "the-volumes-are-at-their-io-limit" in alarm["alarmDescription"]
    assert not [a for a in run_program("prod").of_type(ALARM_TYPE) if "volume" in a.name]


def test_a_stack_with_volumes_pages_when_the_leader_cannot_make_a_directory_for_5_minutes():
    from restdemo_agent.metrics import emf
    from tests.support.stack_variants import COMPOSE_VARIANT, variant_run

    inputs = variant_run("prod", COMPOSE_VARIANT).named(ALARM_TYPE, "monitoring-volume-directory-failing").inputs
    assert (inputs["metricName"], inputs["statistic"], inputs["dimensions"]) == (
        "VolumeDirectoriesFailing",
        "Maximum",
        {"Stack": "prod"},
    )
    assert "a-volumes-directory-cannot-be-made" in inputs["alarmDescription"]
    alarm = Alarm.from_inputs(inputs)
    # Made at first; from minute 5 the file system does not answer the leader; a retry fails each minute.
    failing = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    lines = [json.dumps(emf("prod", {"VolumeDirectoriesFailing": v}, T + m * 60 + 5)) for m, v in enumerate(failing, 1)]
    assert first_alarm(alarm, from_emf(lines), T, T + 720) == T + 10 * 60
    # A directory that fails once and is made at the retry a minute later pages nobody.
    blip = [0, 1, 0, 0, 0, 0, 0]
    lines = [json.dumps(emf("prod", {"VolumeDirectoriesFailing": v}, T + m * 60 + 5)) for m, v in enumerate(blip, 1)]
    assert first_alarm(alarm, from_emf(lines), T, T + 480) is None


def test_a_stack_that_keeps_secrets_in_aws_pages_when_the_leader_stops_reading_them():
    """Three refreshes and at least 15 minutes without a good read of one of them (the agent's age
    of the oldest), from the leader's line; a stack that keeps none has no such alarm."""
    from restdemo_agent.metrics import emf
    from tests.support.pulumi_program import run_program
    from tests.support.stack_variants import COMPOSE_AWS_SECRETS_VARIANT, variant_run

    run = variant_run("prod", COMPOSE_AWS_SECRETS_VARIANT)
    inputs = run.named(ALARM_TYPE, "monitoring-kept-secrets-stale").inputs
    assert (inputs["metricName"], inputs["statistic"], inputs["threshold"]) == ("KeptSecretsAgeSeconds", "Maximum", 900)
    assert "a-secret-kept-in-aws-does-not-reach-the-services" in inputs["alarmDescription"]
    alarm = Alarm.from_inputs(inputs)
    # Read fine every 3 minutes until minute 10, then never again.
    ages = [(m * 60) % 180 if m < 10 else m * 60 - 540 for m in range(1, 30)]
    lines = [json.dumps(emf("prod", {"KeptSecretsAgeSeconds": age}, T + m * 60 + 5)) for m, age in enumerate(ages, 1)]
    # Minute 25's reading, 960 s, is the first above 900: the alarm fires as that minute closes.
    assert first_alarm(alarm, from_emf(lines), T, T + 1800) == T + 26 * 60
    assert not [a for a in run_program("prod").of_type(ALARM_TYPE) if "kept-secrets" in a.name]


def test_a_stack_with_a_database_pages_on_its_cpu_storage_connections_and_a_slots_lag():
    """Each from RDS's own metrics of the stack's instance, with its runbook; the storage threshold a tenth
    of databaseStorageGb, the slots' WAL a quarter, and the connections 60% of the class's memory-given
    max_connections (112 for db.t4g.micro); a stack without one has none of them."""
    from tests.support.pulumi_program import run_program
    from tests.support.stack_variants import COMPOSE_VARIANT, variant_run

    run = variant_run("prod", COMPOSE_VARIANT)
    # The instance's identifier as the provider completed its prefix.
    identifier = {"DBInstanceIdentifier": "restdemo-prod-database-20261207143000000000000001"}
    found = {a.name.removeprefix("monitoring-"): a.inputs for a in run.of_type(ALARM_TYPE) if "database" in a.name}
    assert {
        key: (a["metricName"], a["statistic"], a["comparisonOperator"], a["threshold"], a["evaluationPeriods"])
        for key, a in found.items()
    } == {
        "database-cpu": ("CPUUtilization", "Average", "GreaterThanThreshold", 80, 15),
        "database-free-storage": ("FreeStorageSpace", "Minimum", "LessThanThreshold", 2147483648, 5),
        "database-connections": ("DatabaseConnections", "Maximum", "GreaterThanThreshold", 67, 10),
        "database-replication-slot-lag": ("ReplicationSlotDiskUsage", "Maximum", "GreaterThanThreshold", 5 << 30, 15),
    }
    assert all(a["dimensions"] == identifier and a["namespace"] == "AWS/RDS" for a in found.values())
    runbooks = {
        "database-cpu": "the-database-is-busy",
        "database-free-storage": "the-database-is-running-out-of-storage",
        "database-connections": "the-database-is-near-its-connection-limit",
        "database-replication-slot-lag": "a-replication-slot-holds-the-databases-wal",
    }
    assert all(runbooks[key] in a["alarmDescription"] for key, a in found.items())
    assert not [a for a in run_program("prod").of_type(ALARM_TYPE) if "database" in a.name]
    # Storage running out: 2 GiB free of 20 for five minutes pages; above it, none.
    alarm = Alarm.from_inputs(found["database-free-storage"])
    low = [Datapoint(T + m * 60, 2.0 * 2**30 - 1, "FreeStorageSpace", "AWS/RDS", identifier) for m in range(1, 8)]
    assert first_alarm(alarm, low, T, T + 600) == T + 6 * 60  # five whole minutes of it, each read after its end
    high = [Datapoint(T + m * 60, 3.0 * 2**30, "FreeStorageSpace", "AWS/RDS", identifier) for m in range(1, 8)]
    assert first_alarm(alarm, high, T, T + 600) is None


def test_a_service_held_at_its_maximum_replicas_for_15_minutes_pages_and_14_do_not():
    """The leader's line for a scaling service (restdemo_agent.scaling.at_maximum), evaluated: 15
    minutes at its maximum page; 14, then a minute its load eased, do not. Only scaling services have one."""
    from restdemo_agent.metrics import emf
    from tests.support.pulumi_program import run_program, stack_config
    from tests.support.stack_variants import COMPOSE_VARIANT, variant_run

    run = run_program("dev", {**stack_config("dev"), "restdemo:maxReplicas": "8"})
    (inputs,) = [r.inputs for r in run.of_type(ALARM_TYPE) if "held-at-max" in r.name]
    assert inputs["dimensions"] == {"Stack": "dev", "Service": "restdemo"}
    assert "a-service-is-held-at-its-maximum-replicas" in inputs["alarmDescription"]
    alarm = Alarm.from_inputs(inputs)

    def minutes(values: list[int]) -> list:
        lines = [
            json.dumps(emf("dev", {"ServiceAtMaxReplicas": v}, T + m * 60 + 5, "restdemo"))
            for m, v in enumerate(values)
        ]
        return from_emf(lines)

    assert first_alarm(alarm, minutes([1] * 15), T, T + 1200) == T + 900
    assert first_alarm(alarm, minutes([1] * 14 + [0] + [1] * 14), T, T + 1800) is None
    assert not [r for r in run_program("dev").of_type(ALARM_TYPE) if "held-at-max" in r.name]
    compose = sorted(r.name for r in variant_run("dev", COMPOSE_VARIANT).of_type(ALARM_TYPE) if "held-at-max" in r.name)
    assert compose == ["monitoring-replicas-held-at-max-admin"]
