"""infra/monitoring/monitoring.py under mocks: every AWS stack pages through its topic."""

from __future__ import annotations

import json

import pytest

from tests.support.aws_stack import AWS_STACKS, GROUP, group
from tests.support.pulumi_program import ACCOUNT, kms_key_arn, run_program, stack_config

pytestmark = pytest.mark.unit
# The `run` fixture (tests/infra/conftest.py) runs the program once per stack named here.
STACKS_UNDER_TEST = AWS_STACKS
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:restdemo-{stack}-alarms"


def test_an_encrypted_topic_of_the_stacks_own(run):
    topic = run.one("aws:sns/topic:Topic").inputs
    assert topic["name"] == f"restdemo-{run.stack}-alarms"
    key = run.named("aws:kms/key:Key", "monitoring-topic-key")
    assert topic["kmsMasterKeyId"] == kms_key_arn("eu-west-1", "monitoring-topic-key", run.stack)
    key_policy = json.loads(key.inputs["policy"])
    statements = {s["Sid"]: s for s in key_policy["Statement"]}
    assert statements["CloudwatchEncrypts"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statements["CloudwatchEncrypts"]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert statements["EventsEncrypt"]["Principal"] == {"Service": "events.amazonaws.com"}
    assert "Condition" not in statements["EventsEncrypt"]  # EventBridge's delivery carries no source keys
    assert run.outputs["alarmTopic"] == TOPIC.format(stack=run.stack)


def test_only_this_stacks_alarms_may_publish_and_eventbridge_without_conditions(run):
    """EventBridge refuses Condition blocks in an SNS topic policy (its user guide)."""
    statements = {
        s["Principal"]["Service"]: s
        for s in json.loads(run.one("aws:sns/topicPolicy:TopicPolicy").inputs["policy"])["Statement"]
    }
    alarms = statements["cloudwatch.amazonaws.com"]["Condition"]["ArnLike"]["aws:SourceArn"]
    assert alarms == f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:restdemo-{run.stack}-*"
    assert "Condition" not in statements["events.amazonaws.com"]
    assert {s["Action"] for s in statements.values()} == {"sns:Publish"}


def test_what_notifies_the_topic_waits_for_its_policy(run):
    policy = run.one("aws:sns/topicPolicy:TopicPolicy").urn
    targets = run.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert [t.name for t in targets] == ["monitoring-spot", "monitoring-autoscaling"]
    for resource in [*run.of_type(ALARM), *targets]:
        assert policy in resource.dependencies, resource.name


def test_every_alarm_pages_when_it_fires_and_when_it_is_ok_again(run):
    alarms = run.of_type(ALARM)
    assert len(alarms) == 14  # with workers-spot-fallback: every committed stack runs spot workers
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == alarm.inputs["okActions"] == [TOPIC.format(stack=run.stack)]
        assert alarm.inputs["name"].startswith(f"restdemo-{run.stack}-")
        assert alarm.inputs["alarmDescription"].endswith(" (set restdemo:runbookUrl for a link)")
        assert " Runbook: docs/operations.md, section #" in alarm.inputs["alarmDescription"]


def test_the_alarms_watch_this_stacks_load_balancers_and_groups(run):
    quorum = run.named(ALARM, "monitoring-managers-below-quorum").inputs
    assert (quorum["namespace"], quorum["metricName"], quorum["dimensions"]) == (
        "restdemo",
        "ManagersReachable",
        {"Stack": run.stack},
    )
    assert quorum["threshold"] == stack_config(run.stack)["restdemo:managerCount"] // 2 + 1
    workers = run.named(ALARM, "monitoring-workers-below-desired").inputs
    assert {q["metric"]["dimensions"]["AutoScalingGroupName"] for q in workers["metricQueries"] if "metric" in q} == {
        group(run, "worker")["name"]
    }


def test_the_groups_publish_the_metrics_those_alarms_watch(run):
    for resource in run.of_type(GROUP):
        assert resource.inputs["enabledMetrics"] == ["GroupDesiredCapacity", "GroupInServiceInstances"]
        assert resource.inputs["metricsGranularity"] == "1Minute"


def test_failed_launches_terminations_and_refreshes_reach_the_topic(run):
    rule = run.named("aws:cloudwatch/eventRule:EventRule", "monitoring-autoscaling").inputs
    assert rule["name"] == f"restdemo-{run.stack}-autoscaling-failures"
    pattern = json.loads(rule["eventPattern"])
    assert pattern["source"] == ["aws.autoscaling"]
    assert pattern["detail"] == {"AutoScalingGroupName": sorted(group(run, r)["name"] for r in ("manager", "worker"))}
    assert "EC2 Auto Scaling Instance Refresh Failed" in pattern["detail-type"]
    target = run.named("aws:cloudwatch/eventTarget:EventTarget", "monitoring-autoscaling").inputs
    assert target["arn"] == TOPIC.format(stack=run.stack)
    assert target["inputTransformer"]["inputTemplate"].startswith(f'"restdemo {run.stack}: <type> in <group>')


def test_spot_interruption_warnings_reach_the_topic_as_information(run):
    """EC2's two-minute warning (EC2 User Guide, "Spot Instance interruption notices": source aws.ec2,
    the instance in detail.instance-id) says no page; a stack without spot makes no such rule."""
    rule = run.named("aws:cloudwatch/eventRule:EventRule", "monitoring-spot").inputs
    assert rule["name"] == f"restdemo-{run.stack}-spot-interruptions"
    assert json.loads(rule["eventPattern"]) == {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Spot Instance Interruption Warning"],
    }
    target = run.named("aws:cloudwatch/eventTarget:EventTarget", "monitoring-spot").inputs
    assert target["arn"] == TOPIC.format(stack=run.stack)
    assert target["inputTransformer"]["inputPaths"] == {
        "instance": "$.detail.instance-id",
        "action": "$.detail.instance-action",
    }
    template = target["inputTransformer"]["inputTemplate"]
    assert template.startswith(f'"restdemo {run.stack}, information (no page): EC2 reclaims spot instance <instance>')
    assert "section #spot-interruptions" in template
    on_demand = {**stack_config(run.stack), "restdemo:workerOnDemandPercent": 100}
    rules = run_program(run.stack, on_demand).of_type("aws:cloudwatch/eventRule:EventRule")
    assert [r.name for r in rules] == ["monitoring-autoscaling"]
    # Every worker of its count on-demand, the workers it scales up to beyond them spot: the rule.
    based = {**stack_config(run.stack), "restdemo:workerOnDemandBase": 1, "restdemo:workerOnDemandPercent": 0}
    scaling = {**based, "restdemo:workerCount": 1, "restdemo:workerMaxCount": 4}
    rules = run_program(run.stack, scaling).of_type("aws:cloudwatch/eventRule:EventRule")
    assert sorted(r.name for r in rules) == ["monitoring-autoscaling", "monitoring-spot"]


def test_the_dashboard_and_its_address(run):
    dashboard = run.one("aws:cloudwatch/dashboard:Dashboard").inputs
    assert dashboard["dashboardName"] == f"restdemo-{run.stack}"
    alarms = json.loads(dashboard["dashboardBody"])["widgets"][-1]["properties"]["alarms"]
    assert len(alarms) == 14
    assert run.outputs["dashboardUrl"] == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        f"#dashboards:name=restdemo-{run.stack}"
    )


def test_an_email_is_subscribed_and_an_existing_topic_replaces_the_stacks_own():
    existing = "arn:aws:sns:eu-west-1:123456789012:oncall"
    run = run_program(
        "dev",
        {**stack_config("dev"), "restdemo:alarmEmail": "oncall@example.com", "restdemo:alarmTopicArn": existing},
    )
    assert not run.of_type("aws:sns/topic:Topic") and not run.of_type("aws:sns/topicPolicy:TopicPolicy")
    assert [k.name for k in run.of_type("aws:kms/key:Key")] == ["secrets"]
    subscription = run.one("aws:sns/topicSubscription:TopicSubscription").inputs
    assert subscription == {"topic": existing, "protocol": "email", "endpoint": "oncall@example.com"}
    assert {a.inputs["alarmActions"][0] for a in run.of_type(ALARM)} == {existing}


def test_the_local_stack_has_no_monitoring():
    run = run_program("local")
    assert not [r for r in run.registered if r.type.startswith(("aws:cloudwatch", "aws:sns"))]


@pytest.mark.parametrize(
    "requests,target_5xx,elb_5xx,fires",
    [
        (None, 0, 50, True),  # no replica reachable: the ALB's own 503s, no RequestCount at all
        (1000, 100, 0, True),  # 10 % of the answers
        (1000, 10, 0, False),  # 1 %
        (None, None, None, False),  # no traffic
    ],
)
def test_the_5xx_alarm_as_cloudwatch_evaluates_it(run, requests, target_5xx, elb_5xx, fires):
    from tests.support.alarm_eval import Alarm, Datapoint, first_alarm

    alarm = Alarm.from_inputs(run.named(ALARM, "monitoring-web-5xx-share").inputs)
    dimensions = {"LoadBalancer": "app/web/0123456789abcdef"}
    points = [
        Datapoint(minute * 60 + 30, value, metric, "AWS/ApplicationELB", dimensions)
        for minute in range(10)
        for metric, value in (
            ("RequestCount", requests),
            ("HTTPCode_Target_5XX_Count", target_5xx),
            ("HTTPCode_ELB_5XX_Count", elb_5xx),
        )
        if value is not None
    ]
    assert (first_alarm(alarm, points, 60, 600) is not None) is fires


def test_a_compose_stacks_dashboard_has_a_line_per_route_and_per_service():
    from tests.support.stack_variants import COMPOSE_VARIANT, variant_run

    run = variant_run("dev", COMPOSE_VARIANT)
    body = json.loads(run.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    charts = {w["properties"]["title"]: w["properties"]["metrics"] for w in body["widgets"] if w["type"] == "metric"}
    assert [m[-1]["label"] for m in charts["Requests per route"]] == ["admin", "web"]
    # The default route (web) through the target group the single service's always was.
    assert [m[3] for m in charts["Requests per route"]] == [
        "targetgroup/web-admin/fedcba9876543210",
        "targetgroup/web/fedcba9876543210",
    ]
    assert [(m[5], m[-1]["label"]) for m in charts["Replicas missing per service"]] == [
        ("restdemo_admin", "admin"),
        ("restdemo_api", "api"),
        ("restdemo_web", "web"),
    ]
