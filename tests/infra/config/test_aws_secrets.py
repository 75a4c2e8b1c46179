"""restdemo:awsSecrets and restdemo:secretRefresh: a Compose file's external secrets kept in AWS, read by
the leader's agent (ADR 0029); every mistake one line, all of them in one run, before anything is made."""

from __future__ import annotations

import pytest

from infra.config.settings import parse_settings
from tests.infra.config.test_compose import compose_in, settings_error, write
from tests.support.pulumi_program import stack_config, wire_config
from tests.support.stack_variants import GREETING_ARN, aws_secrets_config

pytestmark = pytest.mark.unit

PARAMETER_ARN = "arn:aws:ssm:eu-west-1:123456789012:parameter/shop/greeting"


@pytest.fixture(autouse=True)
def api_image(monkeypatch):
    monkeypatch.setenv("API_IMAGE", "ghcr.io/example/api:1")


def test_a_compose_secret_kept_in_aws_is_known_by_name():
    settings = parse_settings(wire_config(aws_secrets_config("dev", GREETING_ARN)))
    assert settings.aws_secret_arns() == {"greeting": GREETING_ARN}
    # And the database's, whose credentials RDS keeps.
    assert settings.aws_kept(settings.app) == {"greeting", "database"}
    assert settings.secret_refresh == 180.0
    for arn in (PARAMETER_ARN, f"{GREETING_ARN}#password", f"{PARAMETER_ARN}#token"):
        assert parse_settings(wire_config(aws_secrets_config("dev", arn))).aws_secret_arns() == {"greeting": arn}


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:restdemo/greeting",  # no 6-character suffix
        "arn:aws:secretsmanager:eu-west-1:1234:secret:restdemo/greeting-Ab12Cd",
        "arn:aws:s3:::bucket/greeting",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/shop/greeting#",
        "greeting",
    ],
)
def test_what_is_no_full_arn_of_a_secret_or_parameter_is_refused(arn):
    assert [line.strip() for line in settings_error(wire_config(aws_secrets_config("dev", arn)))] == [
        f'restdemo:awsSecrets = ["greeting={arn}"]: '
        "entry 1 is not NAME=ARN: a NAME of letters, digits, '.', '_' and '-', and the full ARN "
        "of a Secrets Manager secret (arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>) or of "
        "an SSM parameter (arn:aws:ssm:<region>:<account>:parameter/<name>), with #KEY for one key of a JSON value"
    ]


def test_every_mismatch_with_the_compose_file_is_named_in_one_run(tmp_path):
    (tmp_path / "app").mkdir()
    write(tmp_path / "app", "Dockerfile", 'FROM scratch\nEXPOSE 80\nHEALTHCHECK CMD ["/ok"]\n')
    compose = compose_in(
        tmp_path,
        """\
        services:
          web:
            build: {context: ./app, secrets: [token]}
            ports: ["8080:80"]
            secrets: [greeting, tls]
        secrets:
          greeting: {external: true}
          token: {external: true}
          tls: {file: ./app/Dockerfile}
        """,
    )
    config = {
        **stack_config("dev"),
        "restdemo:composeFile": [str(compose)],
        "restdemo:awsSecrets": [
            f"greeting={GREETING_ARN}",
            f"token={PARAMETER_ARN}",
            f"stray={GREETING_ARN.replace('greeting', 'stray')}",
            f"other={PARAMETER_ARN.replace('eu-west-1', 'us-east-1')}",
        ],
        "restdemo:secrets": ["stray=value"],
    }
    config.pop("restdemo:replicas", None)
    lines = [line.strip() for line in settings_error(wire_config(config), frozenset({"restdemo:secrets"}))]
    assert lines == [
        "restdemo:awsSecrets: stray is no external secret of the Compose file; remove it",
        "restdemo:awsSecrets: stray is in restdemo:secrets too; keep it in one of them",
        "restdemo:awsSecrets: other is no external secret of the Compose file; remove it",
        "restdemo:awsSecrets: other is in us-east-1, not the stack's aws:region eu-west-1, where the managers read it",
        "restdemo:composeFile: services.web.secrets: greeting kept in AWS (restdemo:awsSecrets), tls not; a service "
        "takes all its secrets from AWS or none (its node agent writes all of its references: docs/adr/0029)",
        "restdemo:composeFile: services.web.build.secrets: token is kept in AWS, which the program never reads; a "
        "build takes secrets from files or restdemo:secrets",
    ]


def test_the_local_stack_and_the_single_service_take_no_secret_from_aws():
    local = {
        **wire_config(aws_secrets_config("dev", GREETING_ARN)),
        "restdemo:platform": "local",
        "restdemo:secrets": '["database=local"]',
    }
    assert "restdemo:awsSecrets applies to AWS stacks only (platform aws): the local stack ignores it; remove it" in [
        line.strip() for line in settings_error(local)
    ]
    single = {**wire_config(stack_config("dev")), "restdemo:awsSecrets": f'["greeting={GREETING_ARN}"]'}
    assert [line.strip() for line in settings_error(single)] == [
        "restdemo:awsSecrets names a Compose file's external secrets; the single service mounts none (set "
        "restdemo:composeFile)"
    ]


@pytest.mark.parametrize("refresh", ["5s", "2h"])
def test_the_refresh_is_bounded(refresh):
    config = wire_config(aws_secrets_config("dev", GREETING_ARN, refresh=refresh))
    assert [line.strip() for line in settings_error(config)] == [
        f'restdemo:secretRefresh = "{refresh}": must be from 10s to 3600s (10s to 1h)'
    ]


def test_the_stacks_own_parameters_are_never_a_services_secret():
    token = "arn:aws:ssm:eu-west-1:123456789012:parameter/restdemo/dev/join-token/manager"
    assert [line.strip() for line in settings_error(wire_config(aws_secrets_config("dev", token)))] == [
        f'restdemo:awsSecrets = ["greeting={token}"]: entry 1: /restdemo/ is the stack\'s own parameters (join '
        "tokens, the Docker API's key), never a service's secret; keep the app's under another path"
    ]


# The tests' Compose app's services that publish a port: each a web route, its target group in the
# managers' policy.
ROUTES = 2


def test_the_secrets_must_fit_the_managers_role_policy():
    """IAM allows a role 10,240 characters of inline policy: the ARNs, each secret's named twice, each
    route's target group once, get at most KEPT_SECRETS_POLICY_BUDGET of them (tests/infra/swarm/
    test_iam.py: a full budget fits)."""
    arns = [f"{GREETING_ARN[:-7]}-{i:03d}-Ab12Cd" for i in range(40)]
    config = aws_secrets_config("dev", GREETING_ARN)
    config["restdemo:awsSecrets"] += [f"extra{i}={arn}" for i, arn in enumerate(arns)]
    lines = [line.strip() for line in settings_error(wire_config(config))]
    assert lines[-1] == (
        f"restdemo:awsSecrets and the {ROUTES} web routes: their ARNs take {6880 + ROUTES * 121} characters of the "
        "managers' role policy, over the 4550 it leaves them (IAM's limit is 10240); keep several values in one "
        "JSON secret and name each with #KEY, or route fewer services"
    )
    # The same secret's keys count once.
    from infra.config.settings import kept_secrets_policy_size

    assert kept_secrets_policy_size([GREETING_ARN, f"{GREETING_ARN}#a", f"{GREETING_ARN}#b"]) == 2 * (
        len(GREETING_ARN) + 3
    )
