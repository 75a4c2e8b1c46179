"""Every optional feature of an AWS stack, alone and all together, on every AWS stack: the policy
pack, the fidelity tier and `make check` run over each, since the committed stack files set none
of them (a feature no test ran was how `domainName` came to fail the mandatory policy pack)."""

from __future__ import annotations

import functools
import os

from tests.support.aws_stack import AWS_STACKS
from tests.support.pulumi_program import ProgramRun, run_program, stack_config

CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0f0e0d0c-0000-4000-8000-000000000000"
# Your own service by settings (docs/your-app.md), with its image's own HEALTHCHECK.
OWN_SERVICE = {
    "restdemo:serviceName": "second-app",
    "restdemo:buildContext": "tests/e2e/second_app",
    "restdemo:buildTarget": "serve",
    "restdemo:containerPort": "9090",
    "restdemo:healthCheck": "[]",
    "restdemo:healthCheckPath": "/ready",
    "restdemo:buildArgs": '["LOG_FORMAT=json"]',
}
FEATURES: dict[str, dict[str, str]] = {
    "domain": {"restdemo:domainName": "app.example.com", "restdemo:hostedZoneId": "Z0123456789ABC"},
    "certificateArn": {"restdemo:certificateArn": CERTIFICATE, "restdemo:domainName": "app.example.com"},
    "alarmEmail": {"restdemo:alarmEmail": "oncall@example.com"},
    "alarmTopicArn": {"restdemo:alarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:oncall"},
    "publishedPort": {"restdemo:publishedPort": "9000"},
    "ownService": OWN_SERVICE,
    "runbookUrl": {"restdemo:runbookUrl": "https://github.com/example/restdemo/blob/main/docs/operations.md"},
    # The committed stacks run spot workers: their types, every one on-demand (no spot rule, no rebalancing).
    "workersOnDemand": {"restdemo:workerOnDemandPercent": "100"},
    # Graviton workers beside x86 managers: each group its architecture's image, both images for both.
    "graviton": {"restdemo:workerInstanceType": "t4g.medium", "restdemo:workerInstanceTypes": '["m7g.medium"]'},
    # Workers that scale on what the services reserve, from the stack's count up to 10.
    "workersScale": {"restdemo:workerMaxCount": "10", "restdemo:workerReservedTarget": "60"},
    # Replicas that follow the load, from the stack's count up to 12, set by the leader's agent.
    "replicasScale": {"restdemo:maxReplicas": "12", "restdemo:scaleCpuPercent": "50"},
}
ALL = "all together"
# A Compose app instead of the single service (docs/your-app.md): its own mode, so not among ALL's;
# and with a service reached by host name too (on a stack with domainName, on the certificate the
# program requests, with its alias record).
COMPOSE_VARIANT = "composeApp"
COMPOSE_HOSTS_VARIANT = "composeApp with host routes"
# The Compose app with its secret kept in AWS Secrets Manager (awsSecrets), read by the leader's agent.
COMPOSE_AWS_SECRETS_VARIANT = "composeApp with secrets in AWS"
GREETING_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:restdemo/greeting-Ab12Cd"
# The Compose app's database sized up and restored from a snapshot, in two zones: every database
# setting away from its default.
COMPOSE_DATABASE_VARIANT = "composeApp with its database restored"
DATABASE_SETTINGS = {
    "restdemo:databaseVersion": "17",
    "restdemo:databaseInstanceClass": "db.m7g.large",
    "restdemo:databaseStorageGb": "100",
    "restdemo:databaseBackupDays": "35",
    "restdemo:databaseMultiAz": "true",
    "restdemo:databaseSnapshot": "arn:aws:rds:eu-west-1:123456789012:snapshot:restdemo-before-migration",
}
COMPOSE_VARIANTS = (COMPOSE_VARIANT, COMPOSE_HOSTS_VARIANT, COMPOSE_AWS_SECRETS_VARIANT, COMPOSE_DATABASE_VARIANT)
VARIANTS = [*FEATURES, ALL, *COMPOSE_VARIANTS]
STACK_VARIANTS = [(stack, variant) for stack in AWS_STACKS for variant in VARIANTS]


def variant_config(stack: str, variant: str) -> dict[str, str]:
    """The stack file's config with one feature set, or all of them (a certificate of yours with the
    domain's zone: the alias record made, no certificate requested), or the tests' Compose app."""
    if variant == COMPOSE_VARIANT:
        return compose_app_config(stack=stack)
    if variant == COMPOSE_HOSTS_VARIANT:
        return compose_app_config(stack=stack, **{"restdemo:composeFile": [COMPOSE_FILE, COMPOSE_HOSTS_FILE]})
    if variant == COMPOSE_AWS_SECRETS_VARIANT:
        return aws_secrets_config(stack, GREETING_ARN)
    if variant == COMPOSE_DATABASE_VARIANT:
        return compose_app_config(stack=stack, **DATABASE_SETTINGS)
    features = FEATURES.values() if variant == ALL else [FEATURES[variant]]
    return {**stack_config(stack), **{k: v for feature in features for k, v in feature.items()}}


@functools.cache
def variant_run(stack: str, variant: str) -> ProgramRun:
    """The program under mocks for one variant, once per test session (read it, never change it)."""
    if variant in COMPOSE_VARIANTS:
        return run_compose_app(variant_config(stack, variant), {"API_IMAGE": api_image(stack)}, stack)
    return run_program(stack, variant_config(stack, variant))


# The tests' multi-service app from its Compose file on the local stack (docs/your-app.md): built and
# prebuilt images, a secret from the stack's secrets.
COMPOSE_APP = "local (compose app)"
COMPOSE_FILE = "tests/e2e/compose_app/compose.yaml"
COMPOSE_HOSTS_FILE = "tests/e2e/compose_app/hosts.yaml"
COMPOSE_API_IMAGE = "127.0.0.1:5000/tests/api:1"
# On AWS a registry the nodes reach (a loopback one is refused there).
AWS_API_IMAGE = "ghcr.io/example/api:1"


def api_image(stack: str) -> str:
    """What the Compose app's `${API_IMAGE}` is on `stack`."""
    return COMPOSE_API_IMAGE if stack == "local" else AWS_API_IMAGE


# The local database's password (the stack secret `database`); on AWS RDS keeps it.
DATABASE_PASSWORD = "local-database-p@ss"


def compose_app_config(greeting: str = "hello", stack: str = "local", **more: object) -> dict[str, object]:
    """A stack's file with the tests' Compose app, its secret (`restdemo:secrets`) and its database (on
    the local stack with its password there too), less the single service's replicas (the file says
    each service's)."""
    database = [f"database={DATABASE_PASSWORD}"] if stack == "local" else []
    return {
        **{k: v for k, v in stack_config(stack).items() if k != "restdemo:replicas"},
        "restdemo:composeFile": [COMPOSE_FILE],
        "restdemo:secrets": [f"greeting={greeting}", *database],
        "restdemo:database": "postgres",
        "restdemo:healthCheckPath": "/ready",
        **more,
    }


def aws_secrets_config(stack: str, arn: str, refresh: str = "3m") -> dict[str, object]:
    """The tests' Compose app on an AWS stack with its secret `greeting` kept in AWS, at `arn`."""
    config = compose_app_config(stack=stack, **{"restdemo:awsSecrets": [f"greeting={arn}"]})
    config["restdemo:secretRefresh"] = refresh
    del config["restdemo:secrets"]
    return config


def run_compose_app(config: dict[str, object], environment: dict[str, str], stack: str = "local") -> ProgramRun:
    """The program for a Compose stack, with `environment` (what its `${VAR}`s read) set meanwhile."""
    before = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        return run_program(stack, config, secret_keys=["restdemo:secrets"])
    finally:
        for name, value in before.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


@functools.cache
def compose_app_run() -> ProgramRun:
    return run_compose_app(compose_app_config(), {"API_IMAGE": COMPOSE_API_IMAGE})
