"""agent/src/restdemo_agent/interruption.py: what a spot notice says, which node it drains, which
notices are done with; the worker recording its own notice from a metadata stand-in under its STS
identity (moto), and the leader draining only the active worker that notice names."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import boto3
import pytest
from moto import mock_aws

from restdemo_agent.agent import Agent
from restdemo_agent.aws import Lifecycle, SwarmState
from restdemo_agent.contract import AgentEnvironment
from restdemo_agent.identity import Identity, Metadata
from restdemo_agent.interruption import (
    INSTANCE_ACTION_PATH,
    INTERRUPTION,
    NOTICE_KEPT_SECONDS,
    REBALANCE,
    REBALANCE_PATH,
    Notice,
    notice_from,
    noticed_instance,
    to_delete,
    to_drain,
    to_record,
)
from tests.agent.test_aws import KEY, PREFIX, REGION, TABLE, make_table
from tests.agent.test_metrics import node
from tests.support.agent_env import WORKER_ENVIRONMENT
from tests.support.imds import metadata_service
from tests.support.moto_groups import empty_group

pytestmark = pytest.mark.unit

# As EC2 documents them (User Guide, "Spot Instance interruption notices"; "EC2 instance rebalance
# recommendations").
ACTION = json.dumps({"action": "terminate", "time": "2026-12-07T08:22:00Z"})
RECOMMENDATION = json.dumps({"noticeTime": "2026-12-07T08:17:00Z"})


def test_the_interruption_is_read_first_and_a_body_not_as_documented_is_no_notice():
    assert notice_from(ACTION, RECOMMENDATION) == Notice(INTERRUPTION, "2026-12-07T08:22:00Z")
    assert notice_from(None, RECOMMENDATION) == Notice(REBALANCE, "2026-12-07T08:17:00Z")
    assert notice_from("not json", RECOMMENDATION) == Notice(REBALANCE, "2026-12-07T08:17:00Z")
    for action, recommendation in ((None, None), ("[]", None), ('{"time": 5}', '{"noticeTime": null}'), ("", "")):
        assert notice_from(action, recommendation) is None


def test_a_key_names_the_instance_of_the_aws_userid_it_was_written_under():
    assert noticed_instance("notice#AROAEXAMPLEID:i-0abc") == "i-0abc"
    assert [noticed_instance(k) for k in ("notice#i-0abc", "notice#AROA:bob", "primary", "x#AROA:i-1")] == [None] * 4


WORKERS = [
    node("w1"),
    node("w2"),
    dataclasses.replace(node("w3"), availability="drain"),
    node("m1", role="manager", leader=True),
    dataclasses.replace(node("w8"), instance_id=None),
    node("wd", state="down"),  # already gone: no drain
    *(node(name) for name in ("w4", "w5", "w6", "w7")),
]


def notice(kind: str = INTERRUPTION, recorded: float = 9_000.0, at: str = "2026-12-07T08:22:00Z") -> dict:
    return {"kind": kind, "at": at, "recorded": str(recorded)}


def test_only_a_ready_worker_a_well_formed_notice_names_is_drained():
    notices = {f"notice#AROA:i-{n}": notice() for n in ("w1", "w2", "w3", "m1", "w9", "wd")}
    notices["notice#AROA:i-w1"] = notice(REBALANCE)  # the group's to act on (to_record): no drain
    # The worker writes the item's fields as it likes: an unknown kind, no time, a huge one.
    notices["notice#AROA:i-w4"] = notice("please")
    for name, bad in (("w5", notice(at="")), ("w6", notice(at="x" * 65)), ("w7", {"kind": INTERRUPTION})):
        notices[f"notice#AROA:i-{name}"] = bad
    assert [(key, n.id) for key, n in to_drain(notices, WORKERS)] == [("notice#AROA:i-w2", "w2")]


def test_a_worker_an_operator_paused_is_drained_on_its_notice_too():
    """Paused, its tasks still run there and die with the instance: the notice drains it, and stays
    until swarm has it draining."""
    paused = [dataclasses.replace(n, availability="pause") if n.id == "w2" else n for n in WORKERS]
    notices = {"notice#AROA:i-w2": notice(recorded=9_000.0)}
    assert [n.id for _, n in to_drain(notices, paused)] == ["w2"]
    assert to_delete(notices, paused, 9_010.0) == []


def test_a_worker_records_an_interruption_once_and_a_rebalance_recommendation_never():
    interruption, rebalance = Notice(INTERRUPTION, "t1"), Notice(REBALANCE, "t0")
    assert to_record(interruption, None) and to_record(interruption, Notice(INTERRUPTION, "t0"))
    assert not to_record(interruption, interruption) and not to_record(rebalance, None)
    assert not to_record(None, None)


def test_a_notice_is_forgotten_once_its_node_is_draining_or_no_worker_or_it_names_none_for_long():
    now = 10_000.0
    notices = {
        "notice#AROA:i-w1": notice(recorded=now - 5),  # being drained: kept
        "notice#AROA:i-w3": notice(recorded=now - 5),  # drained
        "notice#AROA:i-m1": notice(recorded=now - 5),  # a manager's: never drained
        "notice#AROA:i-w8": notice(recorded=now - 5),  # not joined yet: kept a while
        "notice#AROA:i-w9": notice(recorded=now - NOTICE_KEPT_SECONDS - 1),  # gone
        "notice#AROA:i-w2": {"kind": INTERRUPTION, "at": "t", "recorded": "soon"},  # malformed: forgotten
        "notice#AROA:i-wa": {"kind": "please"},
    }
    assert to_delete(notices, WORKERS, now) == [
        "notice#AROA:i-m1",
        "notice#AROA:i-w2",
        "notice#AROA:i-w3",
        "notice#AROA:i-w9",
        "notice#AROA:i-wa",
    ]


def test_the_metadata_reader_takes_a_token_and_reads_a_missing_document_as_none():
    with metadata_service() as imds:
        metadata = Metadata(imds.url)
        assert metadata.get(INSTANCE_ACTION_PATH) is None
        imds.set(INSTANCE_ACTION_PATH, ACTION)
        assert metadata.get(INSTANCE_ACTION_PATH) == ACTION
        assert (len(imds.tokens), imds.refused) == (1, 0)  # one token, reused


@pytest.fixture
def aws(monkeypatch):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        make_table(dynamodb)
        yield {"dynamodb": dynamodb, "ssm": boto3.client("ssm", region_name=REGION)}


def instance_session(instance: str):
    """STS as an instance role's session sees itself: EC2 names the session after the instance."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn="arn:aws:iam::123456789012:role/restdemo-dev-eu-west-1-worker", RoleSessionName=instance
    )["Credentials"]
    return boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


class NodesEngine:
    """Answers what the leader's drain asks: the nodes, and no task left anywhere."""

    def __init__(self, nodes):
        self.listed, self.updates = nodes, []

    def update_node(self, node_id, **changes):
        self.updates.append((node_id, changes))
        self.listed = [dataclasses.replace(n, availability="drain") if n.id == node_id else n for n in self.listed]

    def tasks_on(self, node_id):
        return []

    def running_elsewhere(self, node_id):
        return {}

    def replicas(self):
        return {}


MANAGER = {
    "RESTDEMO_SECRETS_KEY": KEY,
    **{f"RESTDEMO_TLS_{name}_PARAMETER": name.lower() for name in ("CA", "CERT", "KEY")},
}


def agent_on(engine, aws, role: str, me: Identity, **fields) -> Agent:
    environment = AgentEnvironment.from_environ({**WORKER_ENVIRONMENT, "RESTDEMO_ROLE": role, **fields.pop("env", {})})
    state = SwarmState(aws["dynamodb"], aws["ssm"], TABLE, PREFIX, KEY)
    return Agent(environment, me, engine, state, Lifecycle(None, None, ""), None, None, **fields)


def test_a_worker_records_its_notice_once_under_its_own_identity_and_the_leader_drains_only_it(aws, capsys):
    with metadata_service() as imds:
        me = Identity("i-w2", f"{REGION}a", "10.0.0.12")
        worker = agent_on(
            None, aws, "worker", me, sts=instance_session("i-w2"), env={"RESTDEMO_METADATA_URL": imds.url}
        )
        worker.watch_interruption()
        assert worker.state.notices() == {}  # no notice, nothing written
        imds.set(REBALANCE_PATH, RECOMMENDATION)
        worker.watch_interruption()
        assert worker.state.notices() == {}  # logged only: the group replaces the instance first
        imds.set(INSTANCE_ACTION_PATH, ACTION)
        worker.watch_interruption()
        worker.watch_interruption()  # the same notice again: not written again
    notices = worker.state.notices()
    ((key, recorded),) = notices.items()
    assert key.startswith("notice#AROA") and key.endswith(":i-w2")
    assert (recorded["kind"], recorded["at"]) == (INTERRUPTION, "2026-12-07T08:22:00Z")
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["kind"] for line in logged if line["action"] == "interruption-noticed"] == [REBALANCE, INTERRUPTION]

    engine = NodesEngine(WORKERS)
    leader = agent_on(engine, aws, "manager", Identity("i-m1", f"{REGION}a", "10.0.0.10"), env=MANAGER)
    leader.drain_noticed(engine.listed)
    deadline = time.monotonic() + 10
    while leader.noticed_drains and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.updates == [("w2", {"Availability": "drain"})]
    assert leader.state.notices() == notices  # kept until the leader sees the node drained
    leader.drain_noticed(engine.listed)
    assert engine.updates == [("w2", {"Availability": "drain"})]
    assert leader.state.notices() == {}


class FailingScan:
    def scan(self, **request):
        raise RuntimeError("ProvisionedThroughputExceededException")


def test_notices_the_leader_cannot_read_or_a_worker_wrote_badly_hold_no_other_healing_step(aws, capsys):
    """A worker's item with a number where a string goes is read as absent, and forgotten; a scan that
    fails is logged, and the leader's round goes on."""
    aws["dynamodb"].put_item(
        TableName=TABLE, Item={"pk": {"S": "notice#AROA:i-w2"}, "kind": {"N": "1"}, "at": {"BOOL": True}}
    )
    engine = NodesEngine(WORKERS)
    leader = agent_on(engine, aws, "manager", Identity("i-m1", f"{REGION}a", "10.0.0.10"), env=MANAGER)
    leader.drain_noticed(engine.listed)
    assert engine.updates == [] and leader.state.notices() == {}
    leader.state.dynamodb = FailingScan()
    leader.drain_noticed(engine.listed)
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"notices-error"' in x]
    assert line["message"] == "ProvisionedThroughputExceededException"


class LeaderEngine(NodesEngine):
    """The leader's own engine in a round: m1 leads."""

    def swarm_error(self):
        return None

    def is_manager(self):
        return True

    def nodes(self):
        return self.listed

    def node_id(self):
        return "m1"


def test_a_spot_drain_goes_first_in_the_leaders_round_whatever_fails_after_it(aws, monkeypatch, capsys):
    """The lifecycle queue, Auto Scaling and EC2 all failing (no clients at all here) hold no drain back:
    the interrupted worker has two minutes."""
    aws["dynamodb"].put_item(
        TableName=TABLE,
        Item={"pk": {"S": "notice#AROA:i-w2"}, **{k: {"S": v} for k, v in notice(recorded=time.time()).items()}},
    )
    engine = LeaderEngine(WORKERS)
    leader = agent_on(
        engine,
        aws,
        "manager",
        Identity("i-m1", f"{REGION}a", "10.0.0.10"),
        env={**MANAGER, "RESTDEMO_METRICS_PERIOD": "1"},
    )
    monkeypatch.setattr(leader, "join_or_give_up", lambda: True)
    monkeypatch.setattr(leader, "report_metrics", lambda: None)
    leader.run(rounds=1)
    deadline = time.monotonic() + 10
    while leader.noticed_drains and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.updates == [("w2", {"Availability": "drain"})]
    errors = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"error"' in x]
    assert errors, "the round's later steps failed, as meant"


def test_a_reclaimed_worker_leaves_the_web_target_groups_before_it_is_drained(aws, capsys):
    """The load balancer sends the reclaimed worker no new request (deregistered: draining, then
    gone), so no request meets it when EC2 takes it; the other worker stays."""
    ec2 = boto3.client("ec2", region_name=REGION)
    autoscaling, elbv2 = boto3.client("autoscaling", region_name=REGION), boto3.client("elbv2", region_name=REGION)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    web = elbv2.create_target_group(Name="web-a1b2", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="instance")
    web_arn = web["TargetGroups"][0]["TargetGroupArn"]
    empty_group(ec2, autoscaling, "restdemo-dev-workers")
    autoscaling.attach_load_balancer_target_groups(
        AutoScalingGroupName="restdemo-dev-workers", TargetGroupARNs=[web_arn]
    )
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="restdemo-dev-workers", DesiredCapacity=2)
    reclaimed, kept = sorted(
        t["Target"]["Id"] for t in elbv2.describe_target_health(TargetGroupArn=web_arn)["TargetHealthDescriptions"]
    )
    workers = [
        dataclasses.replace(node("w2"), instance_id=reclaimed),
        dataclasses.replace(node("w1"), instance_id=kept),
    ]
    aws["dynamodb"].put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"notice#AROA:{reclaimed}"},
            **{k: {"S": v} for k, v in notice(recorded=time.time()).items()},
        },
    )
    engine = NodesEngine(workers)
    leader = agent_on(engine, aws, "manager", Identity("i-m1", f"{REGION}a", "10.0.0.10"), env=MANAGER, elbv2=elbv2)
    leader.lifecycle = Lifecycle(None, autoscaling, "")
    leader.drain_noticed(engine.listed)

    def serving() -> list[str]:
        registered = elbv2.describe_target_health(TargetGroupArn=web_arn)["TargetHealthDescriptions"]
        return [t["Target"]["Id"] for t in registered if t["TargetHealth"]["State"] != "draining"]

    def leaving() -> bool:  # its thread logs once it has left
        return any(t.name.startswith("leave-") for t in threading.enumerate())

    deadline = time.monotonic() + 10  # the drain and the leaving run beside each other
    while (leader.noticed_drains or leaving() or serving() != [kept]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert serving() == [kept]
    assert engine.updates == [("w2", {"Availability": "drain"})]
    logged = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    actions = [x["action"] for x in logged if x["action"] in ("left-load-balancers", "interruption-drain")]
    assert actions == ["interruption-drain", "left-load-balancers"]
