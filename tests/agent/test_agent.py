"""agent/src/restdemo_agent/agent.py: how the agent sequences its steps, with AWS played by moto
and an engine that answers as the scenario needs (the lab runs the same code on real engines)."""

from __future__ import annotations

import dataclasses
import json
import time

import boto3
import docker
import pytest
from moto import mock_aws

from restdemo_agent.agent import Agent
from restdemo_agent.aws import Lifecycle, SwarmState
from restdemo_agent.contract import AWS_SECRETS_LABEL, SECRET_SOURCE_LABEL, AgentEnvironment, aws_secrets_label
from restdemo_agent.identity import Identity
from restdemo_agent.secrets import stored_name
from tests.agent.test_aws import KEY, PREFIX, REGION, TABLE, make_table
from tests.agent.test_metrics import Leader, ecr_service, node, service
from tests.support.agent_env import WORKER_ENVIRONMENT
from tests.support.moto_groups import empty_group

pytestmark = pytest.mark.unit

ME = Identity("i-0000000000000000a", f"{REGION}a", "10.0.0.10")


@pytest.fixture
def aws(monkeypatch):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        names = ("dynamodb", "ssm", "ec2", "autoscaling", "cloudwatch", "secretsmanager")
        clients = {name: boto3.client(name, region_name=REGION) for name in names}
        make_table(clients["dynamodb"])
        yield clients


def agent_on(engine, aws, role: str = "manager") -> Agent:
    environment = AgentEnvironment.from_environ(
        {**WORKER_ENVIRONMENT, "RESTDEMO_ROLE": role, "RESTDEMO_SECRETS_KEY": KEY, "RESTDEMO_METRICS_PERIOD": "1"}
        | ({"RESTDEMO_TLS_CA_PARAMETER": "ca", "RESTDEMO_TLS_CERT_PARAMETER": "c", "RESTDEMO_TLS_KEY_PARAMETER": "k"})
    )
    state = SwarmState(aws["dynamodb"], aws["ssm"], TABLE, PREFIX, KEY)
    lifecycle = Lifecycle(None, aws["autoscaling"], "")
    return Agent(environment, ME, engine, state, lifecycle, aws["ec2"], None, cloudwatch=aws["cloudwatch"])


def lines(capsys, action: str) -> list[dict]:
    return [line for line in map(json.loads, capsys.readouterr().out.splitlines()) if line["action"] == action]


def rolled_back(spec_image: str, state: str | None) -> dict:
    base = service("web", 2, state)
    return {**base, "Spec": {**base["Spec"], "TaskTemplate": {"ContainerSpec": {"Image": spec_image}}}}


def test_a_rollback_is_reported_until_a_new_spec_whatever_refreshes_or_new_leaders_do(aws, capsys):
    """The credential refresh is a service update: swarmkit clears UpdateStatus, the spec stays. A
    new leader (here: the agent restarted) reads the list the last one stored."""
    engine = Leader([rolled_back("web:v1", "rollback_completed")])
    assert agent_on(engine, aws).swarm_readings()["ServiceRolledBack"] == 1
    engine.listed = [rolled_back("web:v1", None)]  # after the refresh
    restarted = agent_on(engine, aws)
    assert restarted.swarm_readings()["ServiceRolledBack"] == 1
    assert restarted.swarm_readings()["ServiceRolledBack"] == 1
    engine.listed = [rolled_back("web:v2", "completed")]  # the next deploy
    assert restarted.swarm_readings()["ServiceRolledBack"] == 0
    assert agent_on(engine, aws).swarm_readings()["ServiceRolledBack"] == 0
    assert [line["services"] for line in lines(capsys, "rolled-back-services")] == [["web"], []]


def test_the_credentials_age_counts_only_services_there_are_and_a_new_leader_from_its_start(aws):
    agent = agent_on(Leader([ecr_service("web")]), aws)
    agent.refreshed = {"gone": time.monotonic() - 7 * 3600}  # a removed service's old refresh
    assert agent.swarm_readings()["RegistryCredentialsAgeSeconds"] == 0  # never refreshed: since it leads
    assert agent.refreshed == {}
    agent.leader_since -= 7 * 3600  # seven hours leading, every refresh failed
    assert agent.swarm_readings()["RegistryCredentialsAgeSeconds"] >= 7 * 3600


def test_the_state_table_failing_loses_neither_the_readings_nor_the_rollback(aws, capsys):
    """The table gone (or its key disabled): the leader still reports the leader, the managers and
    the rollback it knows, and stores the list once the table answers again."""
    engine = Leader([rolled_back("web:v1", "rollback_completed")])
    agent = agent_on(engine, aws)
    aws["dynamodb"].delete_table(TableName=TABLE)
    readings = agent.swarm_readings()
    assert (readings["SwarmLeaderSeen"], readings["ManagersReachable"], readings["ServiceRolledBack"]) == (1, 1, 1)
    engine.listed = [rolled_back("web:v1", None)]  # the credential refresh, meanwhile
    assert agent.swarm_readings()["ServiceRolledBack"] == 1
    make_table(aws["dynamodb"])
    assert agent.swarm_readings()["ServiceRolledBack"] == 1
    assert list(agent.state.rolled_back()) == ["web"]
    steps = [line["step"] for line in lines(capsys, "rolled-back-error")]
    assert steps == ["read", "store", "store"]


class Refreshing(Leader):
    """A leader whose service swarm has just rolled back; a credential refresh, like any update,
    clears UpdateStatus and moves the version on."""

    def send_registry_auth(self, service, header):
        self.listed = [{k: v for k, v in s.items() if k != "UpdateStatus"} for s in self.listed]
        for listed in self.listed:
            listed["Version"] = {"Index": listed["Version"]["Index"] + 1}

    def service_version(self, service_id):
        return next(s["Version"]["Index"] for s in self.listed if s["ID"] == service_id)


def test_a_rollback_is_noted_before_the_refresh_that_follows_it_clears_it(aws, capsys):
    """The rollback is swarm's update of the service, so the leader owes it fresh credentials at once;
    that refresh clears UpdateStatus before the next metrics period could read it. The rollback is
    held first, with swarm's reason logged while swarm still says it."""
    service = {
        **ecr_service("web"),
        "Version": {"Index": 7},
        "UpdateStatus": {"State": "rollback_completed", "Message": "rollback completed: task unhealthy"},
    }
    engine = Refreshing([service])
    agent = agent_on(engine, aws)
    agent.ecr = boto3.client("ecr", region_name=REGION)
    agent.refreshed, agent.refreshed_versions = {"web": time.monotonic()}, {"web": 5}  # refreshed before the deploy
    agent.refresh_registry_credentials()
    assert "UpdateStatus" not in engine.listed[0]  # the refresh went out
    assert agent.swarm_readings()["ServiceRolledBack"] == 1
    assert [(line["service"], line["reason"]) for line in lines(capsys, "service-rolled-back")] == [
        ("web", "rollback completed: task unhealthy")
    ]


class DeadNodeLeader(Leader):
    """A leader that sees a dead manager whose instance is gone, and cannot remove it."""

    def nodes(self):
        return [node("a", "manager", leader=True), node("b", "manager", "down", reachable=False)]

    def leader(self):
        return self.nodes()[0]

    def demote_and_remove(self, node):
        raise RuntimeError("rpc error: the swarm is busy")


def test_leader_seen_is_noted_before_any_healing_step_that_may_fail(aws, capsys):
    """`recover` compares when each manager last saw a leader: a manager whose lifecycle handling or
    healing fails every round must still note it, or it would look like one that saw none lately."""
    agent = agent_on(DeadNodeLeader([]), aws)
    agent.join_or_give_up = lambda: True

    def throttled():
        raise RuntimeError("Rate exceeded (DescribeAutoScalingInstances)")

    agent.handle_lifecycle = throttled
    agent.run(rounds=1)
    assert agent.state.leader_seen("a") is not None
    assert [line["message"] for line in lines(capsys, "error")] == ["Rate exceeded (DescribeAutoScalingInstances)"]
    with pytest.raises(RuntimeError, match="the swarm is busy"):
        agent.heal()


class Labelling(Leader):
    """A leader that records the node labels it is asked to set."""

    def __init__(self):
        super().__init__([])
        self.labelled = {}

    def label_node(self, node_id, labels):
        self.labelled[node_id] = labels

    def quarantine(self, node_id):
        self.labelled[node_id] = "drained"
        return True


def test_each_manager_labels_new_nodes_from_the_stacks_groups_in_aws(aws):
    """The wiring: a new node's labels come from the instance the stack's groups have at its address
    (the decisions themselves: tests/agent/test_labelling.py)."""
    ec2, autoscaling = aws["ec2"], aws["autoscaling"]
    image = empty_group(ec2, autoscaling, "restdemo-dev-workers")
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    autoscaling.attach_instances(AutoScalingGroupName="restdemo-dev-workers", InstanceIds=[instance["InstanceId"]])
    new = dataclasses.replace(node("w1"), instance_id=None, address=instance["PrivateIpAddress"])
    engine = Labelling()
    engine.nodes = lambda: [node("a", "manager", leader=True), new]
    nodes, _ = agent_on(engine, aws).known_nodes()
    assert engine.labelled == {
        "w1": {
            "instance_id": instance["InstanceId"],
            "availability_zone": instance["Placement"]["AvailabilityZone"],
            "role": "worker",
        }
    }
    assert [n.instance_id for n in nodes] == ["i-a", instance["InstanceId"]]


class JustFormed(Labelling):
    """The leader a moment after `swarm init`: its own node not labelled yet (no group lists it)."""

    def nodes(self):
        return [dataclasses.replace(node("a", "manager", leader=True), instance_id=None, address="10.0.0.10")]


def test_a_notice_for_its_own_instance_is_its_own_before_any_label(aws):
    """A manager told to terminate before the leader labelled its node (itself, here, with AWS
    silent) must drain and demote, never complete the action as for an instance that never joined."""
    from restdemo_agent.plan import HANDLE_MINE, lifecycle_handler

    agent = agent_on(JustFormed(), aws)
    nodes, me = agent.known_nodes()
    assert me.instance_id == ME.instance_id
    assert lifecycle_handler(ME.instance_id, nodes, me) == HANDLE_MINE


class Engine:
    """An engine in a given swarm state (None: it does not answer), never becoming a member."""

    def __init__(self, local_node_state: str | None):
        self.local_node_state = local_node_state

    def swarm(self):
        if self.local_node_state is None:
            raise ConnectionError("Cannot connect to the Docker daemon")
        return {"LocalNodeState": self.local_node_state, "NodeID": "n1"}

    def member(self):
        if self.local_node_state is None:
            raise ConnectionError("Cannot connect to the Docker daemon")
        return False

    def swarm_state_or_none(self):
        return self.local_node_state


@pytest.mark.parametrize("local_node_state,replaced", [("inactive", True), ("error", False), (None, False)])
def test_a_node_that_cannot_join_gives_its_instance_up_only_without_swarm_state(
    aws, capsys, tmp_path, local_node_state, replaced
):
    """It asks the host to power it off (its group replaces an instance that is not running): no
    call to Auto Scaling, whose SetInstanceHealth a worker no longer holds."""
    agent = agent_on(Engine(local_node_state), aws, role="worker")
    agent.environment = dataclasses.replace(
        agent.environment, bootstrap_timeout_seconds=0, node_state_dir=str(tmp_path)
    )
    assert agent.join_or_give_up() is not replaced  # a kept node goes on running
    request = tmp_path / "replace-me"
    assert request.exists() is replaced
    if replaced:
        assert request.read_text() == "bootstrap gave up after 0 s\n"
    written = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    reported = [line for line in written if line["action"] == "metrics" and "BootstrapGaveUp" in line]
    kept = [line for line in written if line["action"] == "bootstrap-gave-up-kept"]
    assert (len(reported), len(kept)) == ((1, 0) if replaced else (0, 1))
    # A worker's metrics reach CloudWatch through PutMetricData, in the workers' namespace (not EMF:
    # its log group extracts none).
    assert all("_aws" not in line for line in written if line["action"] == "metrics")
    sent = aws["cloudwatch"].list_metrics(Namespace="restdemo/workers")["Metrics"]
    assert {m["MetricName"] for m in sent} == (
        {"BootstrapFailures", "BootstrapGaveUp"} if replaced else {"BootstrapFailures"}
    )
    assert all(m["Dimensions"] == [{"Name": "Stack", "Value": "dev"}] for m in sent)


class Unreachable:
    """CloudWatch as a booting node may meet it: no route, no credentials yet, or throttled."""

    def put_metric_data(self, **request):
        raise ConnectionError("Could not connect to the endpoint URL: monitoring.eu-west-1.amazonaws.com")


def test_a_worker_gives_up_and_is_replaced_even_when_cloudwatch_does_not_answer(aws, capsys, tmp_path):
    agent = agent_on(Engine("inactive"), aws, role="worker")
    agent.cloudwatch = Unreachable()
    agent.environment = dataclasses.replace(
        agent.environment, bootstrap_timeout_seconds=0, node_state_dir=str(tmp_path)
    )
    assert agent.join_or_give_up() is False
    assert (tmp_path / "replace-me").exists()
    errors = lines(capsys, "metrics-error")
    assert errors and all(line["kind"] == "ConnectionError" for line in errors)


class KeptSecretsEngine:
    """The Engine calls serving secrets kept in AWS make, on a swarm of the services given."""

    def __init__(self, services):
        self.listed, self.stored, self.updates, self.removed = services, {}, [], []
        self.refuse = ""  # the engine's explanation when an update fails

    def services(self):
        return self.listed

    def store_secret(self, name, data, source):
        self.stored[name] = (data, source)
        return f"id-{name}"

    def stored_secrets(self):
        return [
            {"ID": f"id-{name}", "Spec": {"Name": name, "Labels": {SECRET_SOURCE_LABEL: source}}}
            for name, (_, source) in self.stored.items()
        ]

    def set_secret_references(self, service, references):
        if self.refuse:
            raise docker.errors.APIError("500", explanation=self.refuse)
        self.updates.append((service["ID"], references))
        service["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"] = references

    def remove_secret(self, secret_id):
        self.removed.append(secret_id)
        del self.stored[secret_id.removeprefix("id-")]
        return True


def test_a_value_that_cannot_be_read_leaves_the_service_as_it_is_and_never_shows_a_value(aws, capsys):
    """Kept as text where the label asks for one key of a JSON value: the read fails, said once with
    the source and why; the service keeps its references. Once the value has the key, it is stored
    under its hash and rolled out; read again unchanged, nothing more happens."""
    arn = aws["secretsmanager"].create_secret(Name="restdemo/db", SecretString="s3cret-plain")["ARN"]
    web = kept_web(f"{arn}#password", name="restdemo_db", target="db", mode=256)
    engine = KeptSecretsEngine([web])
    agent = dataclasses.replace(agent_on(engine, aws), secretsmanager=aws["secretsmanager"])

    agent._kept_secrets_pass()
    (failed,) = lines(capsys, "secret-read-failed")
    assert failed["source"] == f"{arn}#password"
    assert failed["message"] == "the value is not a JSON object, so it has no key password"
    assert (engine.stored, engine.updates) == ({}, [])

    aws["secretsmanager"].put_secret_value(SecretId=arn, SecretString='{"username": "app", "password": "s3cret"}')
    agent.secrets_read_at = {source: at - 10 for source, at in agent.secrets_read_at.items()}
    agent._kept_secrets_pass()
    physical = stored_name("restdemo_db", b"s3cret")
    assert engine.stored == {physical: (b"s3cret", f"{arn}#password")}
    assert engine.updates == [
        (
            "s1",
            [
                {
                    "File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 256},
                    "SecretID": f"id-{physical}",
                    "SecretName": physical,
                }
            ],
        )
    ]
    agent.secrets_read_at = {source: at - 10 for source, at in agent.secrets_read_at.items()}
    agent._kept_secrets_pass()
    assert len(engine.updates) == 1 and engine.removed == []
    assert "s3cret" not in capsys.readouterr().out

    # The service gone, its Docker secret goes too.
    engine.listed = []
    agent._kept_secrets_pass()
    assert (engine.removed, engine.stored) == ([f"id-{physical}"], {})


def test_the_kept_secrets_age_counts_from_the_last_good_read_and_a_new_leader_from_its_start(aws):
    arn = aws["secretsmanager"].create_secret(Name="restdemo/greeting", SecretString="hello")["ARN"]
    mount = {"name": "restdemo_greeting", "source": arn, "target": "g", "uid": "0", "gid": "0", "mode": 292}
    web = ecr_service("web")
    web["Spec"]["Labels"] = {AWS_SECRETS_LABEL: aws_secrets_label(180, [mount])}
    agent = dataclasses.replace(agent_on(Leader([web]), aws), secretsmanager=aws["secretsmanager"])
    assert agent.swarm_readings()["KeptSecretsAgeSeconds"] == 0  # never read: since it leads
    agent.leader_since -= 3600  # an hour leading, every read failed
    assert agent.swarm_readings()["KeptSecretsAgeSeconds"] >= 3600
    agent.secrets_delivered = {arn: time.monotonic() - 100}
    assert 100 <= agent.swarm_readings()["KeptSecretsAgeSeconds"] < 110
    assert "KeptSecretsAgeSeconds" not in agent_on(Leader([ecr_service("web")]), aws).swarm_readings()


def kept_web(source: str, **mount: object) -> dict:
    """Service s1, whose label mounts `source` (as `g`, unless `mount` says otherwise)."""
    mount = {"name": "restdemo_greeting", "source": source, "target": "g", "uid": "0", "gid": "0", "mode": 292} | mount
    return {
        "ID": "s1",
        "Version": {"Index": 7},
        "Spec": {
            "Name": "restdemo_web",
            "Labels": {AWS_SECRETS_LABEL: aws_secrets_label(10, [mount])},
            "TaskTemplate": {"ContainerSpec": {"Image": "web"}},
        },
    }


def next_pass(agent) -> None:
    """As if the refresh had passed since the last read."""
    agent.secrets_read_at = {source: at - 10 for source, at in agent.secrets_read_at.items()}
    agent._kept_secrets_pass()


def test_a_rotation_swarm_rolled_back_waits_a_backoff_or_a_new_value(aws, capsys):
    """The new value's tasks failed (or a task was killed on purpose) and swarm rolled the service
    back: the agent does not roll the same value out again every round but after a backoff (15
    minutes, doubled each time), says so, and the value is not delivered (the alarm's age grows); a
    newer value is rolled out at once."""
    secrets = aws["secretsmanager"]
    arn = secrets.create_secret(Name="restdemo/greeting", SecretString="one")["ARN"]
    web = kept_web(arn)
    engine = KeptSecretsEngine([web])
    agent = dataclasses.replace(agent_on(engine, aws), secretsmanager=secrets)
    agent._kept_secrets_pass()
    first = web["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
    secrets.put_secret_value(SecretId=arn, SecretString="two")
    next_pass(agent)
    assert len(engine.updates) == 2
    delivered = agent.secrets_delivered[arn]  # the spec named it, until swarm rolled it back
    web["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"] = first  # swarm's rollback
    web["UpdateStatus"] = {"State": "rollback_completed"}
    next_pass(agent)
    next_pass(agent)
    assert len(engine.updates) == 2
    (rolled_back,) = lines(capsys, "secrets-rolled-back")
    assert (rolled_back["service"], rolled_back["retry_after"]) == ("restdemo_web", 900)
    assert agent.secrets_delivered[arn] == delivered
    # 15 minutes on, the same value is tried once more (a failure that passed heals by itself) ...
    rejected = agent.secrets_rejected["s1"]
    agent.secrets_rejected["s1"] = dataclasses.replace(rejected, at=rejected.at - 901)
    next_pass(agent)
    assert len(engine.updates) == 3
    # ... and rolled back again, it waits twice as long.
    web["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"] = first
    next_pass(agent)
    (again,) = lines(capsys, "secrets-rolled-back")
    assert again["retry_after"] == 1800 and len(engine.updates) == 3
    secrets.put_secret_value(SecretId=arn, SecretString="three")
    next_pass(agent)
    assert len(engine.updates) == 4 and agent.secrets_delivered[arn] > delivered
    assert engine.updates[-1][1][0]["SecretName"] == stored_name("restdemo_greeting", b"three")


def test_a_service_being_rolled_out_is_left_to_its_rollout_and_keeps_its_new_value(aws):
    """A deploy's rollout under way: the agent waits for it (its rollback target stays the deploy's),
    and the new value's Docker secret, which no spec names yet, is not removed meanwhile."""
    secrets = aws["secretsmanager"]
    arn = secrets.create_secret(Name="restdemo/greeting", SecretString="one")["ARN"]
    web = kept_web(arn)
    engine = KeptSecretsEngine([web])
    agent = dataclasses.replace(agent_on(engine, aws), secretsmanager=secrets)
    agent._kept_secrets_pass()
    secrets.put_secret_value(SecretId=arn, SecretString="two")
    web["UpdateStatus"] = {"State": "updating"}
    next_pass(agent)
    assert len(engine.updates) == 1 and stored_name("restdemo_greeting", b"two") in engine.stored
    assert engine.removed == []
    web["UpdateStatus"] = {"State": "completed"}
    agent._kept_secrets_pass()
    assert len(engine.updates) == 2
    assert engine.removed == [f"id-{stored_name('restdemo_greeting', b'one')}"]


def test_an_update_the_engine_refuses_is_said_with_its_words_and_its_values_stored_again(aws, capsys):
    secrets = aws["secretsmanager"]
    arn = secrets.create_secret(Name="restdemo/greeting", SecretString="one")["ARN"]
    engine = KeptSecretsEngine([kept_web(arn)])
    agent = dataclasses.replace(agent_on(engine, aws), secretsmanager=secrets)
    engine.refuse = "secret not found: id-gone"
    agent._kept_secrets_pass()
    (failed,) = lines(capsys, "secret-rollout-failed")
    assert (failed["service"], failed["message"]) == ("restdemo_web", "secret not found: id-gone")
    assert agent.secrets_stored == {} and agent.secrets_read_at == {}
    engine.refuse = ""
    agent._kept_secrets_pass()  # read and stored again at once, then rolled out
    assert len(engine.updates) == 1


def test_the_leader_reports_the_volume_directories_it_failed_to_make_once_it_tried_any(aws):
    from restdemo_agent.volumes import VolumeDirectory

    agent = agent_on(Leader([ecr_service("web")]), aws)
    assert "VolumeDirectoriesFailing" not in agent.swarm_readings()  # no volume, or not tried yet
    notes, uploads = VolumeDirectory((), "notes", 1, 1), VolumeDirectory((), "uploads", 1, 1)
    agent.volumes_made = {notes: time.monotonic()}
    assert agent.swarm_readings()["VolumeDirectoriesFailing"] == 0
    agent.volumes_failed = {uploads: time.monotonic()}
    assert agent.swarm_readings()["VolumeDirectoriesFailing"] == 1


def test_a_value_that_stops_being_readable_is_no_longer_delivered(aws, capsys):
    """Read and rolled out, then the managers lose access to it: the services keep the value they have,
    and the age the alarm reads grows from the last good read."""
    secrets = aws["secretsmanager"]
    arn = secrets.create_secret(Name="restdemo/greeting", SecretString="one")["ARN"]
    engine = KeptSecretsEngine([kept_web(arn)])
    agent = dataclasses.replace(agent_on(engine, aws), secretsmanager=secrets)
    agent._kept_secrets_pass()
    delivered = agent.secrets_delivered[arn]
    secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    next_pass(agent)
    assert agent.secrets_delivered[arn] == delivered and len(engine.updates) == 1
    assert [line["source"] for line in lines(capsys, "secret-read-failed")] == [arn]


def test_a_rotated_database_secret_reaches_its_files_in_one_rollout_from_one_read(aws):
    """The database's files (ADR 0030) from RDS's master secret: the URL and the password rendered from
    one read of it, stored each under its hash, rolled out together; a rotation is one more update."""
    secrets = aws["secretsmanager"]
    arn = secrets.create_secret(Name="rds!db-0123", SecretString='{"username": "app", "password": "one"}')["ARN"]
    url = {"name": "restdemo_database_url", "target": "/run/secrets/database_url"}
    password = {"name": "restdemo_database_password", "target": "/run/secrets/database_password"}
    web = kept_web(arn, **url, template="postgresql://{username|url}:{password|url}@db:5432/app")
    mounts = json.loads(web["Spec"]["Labels"][AWS_SECRETS_LABEL])["mounts"]
    mounts.append(mounts[0] | password | {"template": "{password}"})
    web["Spec"]["Labels"][AWS_SECRETS_LABEL] = aws_secrets_label(10, mounts)
    engine = KeptSecretsEngine([web])
    reads = []
    secrets.meta.events.register("before-call.secrets-manager.GetSecretValue", lambda **_: reads.append(1))
    agent = dataclasses.replace(agent_on(engine, aws), secretsmanager=secrets)

    agent._kept_secrets_pass()
    assert sorted(value for value, _ in engine.stored.values()) == [b"one", b"postgresql://app:one@db:5432/app"]
    assert (len(engine.updates), len(engine.updates[0][1]), len(reads)) == (1, 2, 1)

    secrets.put_secret_value(SecretId=arn, SecretString='{"username": "app", "password": "t/wo"}')
    next_pass(agent)
    assert len(engine.updates) == 2 and len(reads) == 2
    files = {ref["File"]["Name"]: engine.stored[ref["SecretName"]][0] for ref in engine.updates[1][1]}
    assert files == {
        "/run/secrets/database_url": b"postgresql://app:t%2Fwo@db:5432/app",
        "/run/secrets/database_password": b"t/wo",
    }
    # The first values go once no spec names them.
    assert len(engine.removed) == 2
