"""agent/src/restdemo_agent/secrets.py: which secrets kept in AWS the services mount, the Docker secret
each value is stored as, the references each service must have, and which of the agent's go."""

from __future__ import annotations

import json

import pytest

from restdemo_agent.contract import AWS_SECRETS_LABEL, SECRET_SOURCE_LABEL, aws_secrets_label, parameter_name
from restdemo_agent.secrets import (
    KeptMount,
    KeptService,
    Rejected,
    backoff,
    differs,
    due_sources,
    kept_services,
    mounted_value,
    references,
    rejected_lately,
    split_source,
    stored_name,
    unused,
    value_of,
)

pytestmark = pytest.mark.unit

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:restdemo/greeting-Ab12Cd"
PARAMETER = "arn:aws:ssm:eu-west-1:123456789012:parameter/shop/api-key"
GREETING = {"name": "restdemo_greeting", "source": ARN, "target": "/run/secrets/greeting", "uid": "0", "gid": "0"}


def labelled(mounts: list[dict], refresh: int = 180, service_id: str = "s1", name: str = "restdemo_web") -> dict:
    return {
        "ID": service_id,
        "Spec": {"Name": name, "Labels": {AWS_SECRETS_LABEL: aws_secrets_label(refresh, mounts)}},
    }


def test_the_programs_label_is_read_back_as_it_was_written():
    (found,), refused = kept_services([labelled([GREETING | {"mode": 0o444}]), {"ID": "s2", "Spec": {"Name": "x"}}])
    assert refused == {}
    assert found == KeptService(
        "s1", "restdemo_web", 180, (KeptMount("restdemo_greeting", ARN, "/run/secrets/greeting", "0", "0", 0o444),)
    )


@pytest.mark.parametrize(
    "label,why",
    [
        ("not json", "Expecting value"),
        (json.dumps({"refresh": 5, "mounts": []}), "refresh 5 is not 10 to 3600 seconds"),
        (aws_secrets_label(180, []), "no mounts"),
        (aws_secrets_label(180, [GREETING | {"mode": 292, "source": "arn:aws:s3:::bucket"}]), "no Secrets Manager"),
        (aws_secrets_label(180, [GREETING | {"mode": 292, "name": "../x"}]), "no Docker secret name"),
        (aws_secrets_label(180, [GREETING | {"mode": 292, "uid": "root"}]), "uid and gid must be numeric"),
        (aws_secrets_label(180, [GREETING | {"mode": 0o4755}]), "mode must be 0 to 0o777"),
        (aws_secrets_label(180, [GREETING | {"mode": True}]), "mode must be 0 to 0o777"),
        (aws_secrets_label(180, [GREETING]), "'mode'"),
        # The stack's own parameters, which the managers' role reads: never a service's.
        (
            aws_secrets_label(180, [GREETING | {"mode": 292, "source": PARAMETER.replace("shop", "restdemo/dev/tls")}]),
            "of the app's",
        ),
        ("[" * 10_000, "maximum recursion"),
        (aws_secrets_label(180, [GREETING | {"mode": 292, "target": "x" * 20_000}]), "over 16384 characters"),
    ],
)
def test_a_label_the_program_does_not_write_leaves_the_service_as_it_is(label, why):
    service = {"ID": "s1", "Spec": {"Name": "restdemo_web", "Labels": {AWS_SECRETS_LABEL: label}}}
    found, refused = kept_services([service])
    assert found == [] and why in refused["restdemo_web"]


def due_names(*args) -> dict[str, str]:
    return {value_key: mount.name for value_key, mount in due_sources(*args).items()}


def test_a_value_is_read_when_never_read_or_once_its_shortest_refresh_passed():
    often = KeptService("s1", "a", 30, (KeptMount("restdemo_greeting", ARN, "/g", "0", "0", 0o444),))
    seldom = KeptService("s2", "b", 600, (KeptMount("restdemo_greeting", ARN, "/g", "0", "0", 0o444),))
    other = KeptService("s3", "c", 600, (KeptMount("restdemo_key", PARAMETER, "/k", "0", "0", 0o400),))
    assert due_names([often, seldom, other], {}, {}, 1000.0) == {ARN: "restdemo_greeting", PARAMETER: "restdemo_key"}
    read = {ARN: 980.0, PARAMETER: 980.0}
    assert due_names([often, seldom, other], read, {}, 1000.0) == {}
    assert due_names([often, seldom, other], read, {}, 1010.0) == {ARN: "restdemo_greeting"}
    assert due_names([seldom, other], read, {}, 1010.0) == {}
    # A failed read is tried again 30 s later, whatever the refresh.
    assert due_names([seldom, other], read, {PARAMETER: 980.0}, 1009.0) == {}
    assert due_names([seldom, other], read, {PARAMETER: 980.0}, 1010.0) == {PARAMETER: "restdemo_key"}


def test_a_value_or_one_key_of_a_json_one():
    assert value_of("hello", None) == b"hello"
    assert value_of(b"\x00\x01", None) == b"\x00\x01"
    assert value_of('{"username": "app", "password": "s3cret", "port": 5432}', "password") == b"s3cret"
    assert value_of('{"port": 5432}', "port") == b"5432"


@pytest.mark.parametrize(
    "raw,key,message",
    [
        ("s3cret", "password", "the value is not a JSON object, so it has no key password"),
        ('{"username": "app"}', "password", "the value has no key password"),
        ('["password"]', "password", "the value has no key password"),
        ('{"password": {"nested": 1}}', "password", "the value's password is not a non-empty string or a whole number"),
        ('{"password": true}', "password", "the value's password is not a non-empty string or a whole number"),
        ('{"password": ""}', "password", "the value's password is not a non-empty string or a whole number"),
        ('{"password": 1e999}', "password", "the value's password is not a non-empty string or a whole number"),
        ("[" * 100_000, "password", "the value is not a JSON object, so it has no key password"),
        ("", None, "the value is empty, which swarm keeps no secret of"),
    ],
)
def test_a_missing_key_is_named_and_the_value_never_shown(raw, key, message):
    with pytest.raises(ValueError) as raised:
        value_of(raw, key)
    assert str(raised.value) == message and "s3cret" not in str(raised.value)


def test_sources_and_parameter_names():
    assert split_source(ARN + "#password") == (ARN, "password")
    assert split_source(ARN) == (ARN, None)
    assert parameter_name(PARAMETER) == "/shop/api-key"
    assert parameter_name("arn:aws:ssm:eu-west-1:123456789012:parameter/key#part") == "key"


def test_a_value_is_stored_under_a_hash_of_it_apart_from_the_programs_own():
    """Named as the program names its secrets (same length, so the same Compose names fit), but never
    the same object: a secret moved from restdemo:secrets to AWS with its value stays two objects,
    the program's to delete, the agent's to keep."""
    from infra.config.names import content_name

    name = stored_name("restdemo_greeting", b"hello")
    assert len(name) == len(content_name("restdemo", "greeting", b"hello"))
    assert name != content_name("restdemo", "greeting", b"hello") and name.startswith("restdemo_greeting_")
    assert name != stored_name("restdemo_greeting", b"hello again")


def test_references_point_at_the_stored_values_and_wait_for_each():
    service = KeptService(
        "s1", "web", 180, (KeptMount("restdemo_greeting", ARN, "/run/secrets/greeting", "0", "0", 292),)
    )
    assert references(service, {}) is None
    wanted = references(service, {ARN: ("id1", "restdemo_greeting_abc")})
    # A source not read now keeps the reference the service has to its file.
    assert references(service, {}, wanted) == wanted
    assert wanted == [
        {
            "File": {"Name": "/run/secrets/greeting", "UID": "0", "GID": "0", "Mode": 292},
            "SecretID": "id1",
            "SecretName": "restdemo_greeting_abc",
        }
    ]
    assert not differs(list(reversed(wanted)), wanted)
    assert differs(None, wanted)
    assert differs([{**wanted[0], "SecretName": "restdemo_greeting_old"}], wanted)
    assert differs([{**wanted[0], "File": {**wanted[0]["File"], "Mode": 0o400}}], wanted)


def secret(secret_id: str, ours: bool = True) -> dict:
    return {"ID": secret_id, "Spec": {"Name": secret_id, "Labels": {SECRET_SOURCE_LABEL: ARN} if ours else {}}}


def using(secret_ids: list[str], previous: list[str] = (), state: str | None = None) -> dict:
    def spec(ids):
        return {"TaskTemplate": {"ContainerSpec": {"Secrets": [{"SecretID": i} for i in ids]}}}

    return {"Spec": spec(secret_ids), "PreviousSpec": spec(previous), "UpdateStatus": {"State": state} if state else {}}


def test_only_the_agents_secrets_no_spec_refers_to_go():
    secrets = [secret("old"), secret("new"), secret("programs", ours=False)]
    assert unused(secrets, [using(["new"], previous=["old"], state="completed")]) == ["old"]
    assert unused(secrets, [using(["new"])]) == ["old"]
    assert unused(secrets, []) == ["new", "old"]
    # Each mounted source's current value stays, named by a spec yet or not (a service held in an update).
    assert unused(secrets, [], keep={"new"}) == ["old"]


@pytest.mark.parametrize("state", ["updating", "paused", "rollback_started", "rollback_paused"])
def test_a_secret_a_rollout_or_rollback_may_go_back_to_is_kept(state):
    assert unused([secret("old"), secret("new")], [using(["new"], previous=["old"], state=state)]) == []


def test_a_rolled_back_set_waits_a_backoff_that_doubles_up_to_four_hours():
    assert [backoff(times) for times in (1, 2, 3, 4, 5, 9)] == [900, 1800, 3600, 7200, 14400, 14400]
    rejected = Rejected(("a",), 1000.0, 2)
    assert rejected_lately(rejected, ("a",), 2799.0)
    assert not rejected_lately(rejected, ("a",), 2800.0)
    assert not rejected_lately(rejected, ("b",), 1001.0)  # a new value goes at once
    assert not rejected_lately(None, ("a",), 1001.0)


MASTER = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0f1e2d3c-4b5a-6978-8091-a2b3c4d5e6f7-Xy12Zw"
URL_TEMPLATE = "postgresql://{username|url}:{password|url}@db.internal:5432/app"


def templated(target: str, template: str) -> dict:
    return {
        "name": "restdemo_database_url",
        "source": MASTER,
        "target": target,
        "uid": "0",
        "gid": "0",
        "mode": 292,
    } | {"template": template}


def test_a_database_file_is_rendered_from_the_master_secrets_keys_the_url_quoted():
    """The database's files (ADR 0030): RDS's master secret is JSON with `username` and `password`; the URL
    takes them percent-encoded, its own file as they are; host, port and name are the template's text."""
    (service,), refused = kept_services(
        [
            labelled(
                [templated("/run/secrets/database_url", URL_TEMPLATE), templated("/run/secrets/database_host", "db")]
            )
        ]
    )
    assert refused == {}
    url, host = service.mounts
    master = json.dumps({"username": "app", "password": "p@ss:w/rd%"})
    assert mounted_value(master, url) == b"postgresql://app:p%40ss%3Aw%2Frd%25@db.internal:5432/app"
    assert mounted_value(master, host) == b"db"
    assert mounted_value(master, KeptMount("n", MASTER + "#password", "/t", "0", "0", 292)) == b"p@ss:w/rd%"
    # Two files of one source are two values, each read, stored and delivered on its own.
    assert url.value_key != host.value_key and url.value_key.startswith(MASTER)
    assert set(due_sources([service], {}, {}, 0.0)) == {url.value_key, host.value_key}
    assert references(service, {url.value_key: ("u", "url_1"), host.value_key: ("h", "host_1")}) == [
        {
            "File": {"Name": "/run/secrets/database_url", "UID": "0", "GID": "0", "Mode": 292},
            "SecretID": "u",
            "SecretName": "url_1",
        },
        {
            "File": {"Name": "/run/secrets/database_host", "UID": "0", "GID": "0", "Mode": 292},
            "SecretID": "h",
            "SecretName": "host_1",
        },
    ]


@pytest.mark.parametrize(
    "raw,message",
    [
        ("p@ss", "the value is not a JSON object, which a template reads"),
        ('["username"]', "the value is not a JSON object, which a template reads"),
        ('{"username": "app"}', "the value has no key password (a non-empty string or a whole number)"),
        ('{"username": "app", "password": ""}', "the value has no key password (a non-empty string or a whole number)"),
    ],
)
def test_a_template_whose_keys_the_value_lacks_is_named_never_shown(raw, message):
    with pytest.raises(ValueError) as raised:
        mounted_value(raw, KeptMount("n", MASTER, "/t", "0", "0", 292, URL_TEMPLATE))
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "entry,why",
    [
        (templated("/t", "{password"), "braces are {KEY} or {KEY|url} only"),
        (templated("/t", "{password|base64}"), "braces are {KEY} or {KEY|url} only"),
        (templated("/t", ""), "a template is 1 to 1024 characters"),
        (templated("/t", "x" * 1025), "a template is 1 to 1024 characters"),
        (templated("/t", "{password}") | {"source": MASTER + "#password"}, "a template reads the whole JSON value"),
    ],
)
def test_a_template_the_program_does_not_write_is_refused(entry, why):
    found, refused = kept_services([labelled([entry])])
    assert found == [] and why in refused["restdemo_web"]
