"""agent/src/restdemo_agent/contract.py: the environment the program hands the agent."""

from __future__ import annotations

import pytest

from restdemo_agent.contract import AgentEnvironment
from tests.support.agent_env import WORKER_ENVIRONMENT

pytestmark = pytest.mark.unit


def test_environment_names_what_is_missing():
    with pytest.raises(ValueError, match="lacks RESTDEMO_STATE_TABLE"):
        AgentEnvironment.from_environ({k: v for k, v in WORKER_ENVIRONMENT.items() if k != "RESTDEMO_STATE_TABLE"})
    with pytest.raises(ValueError, match="RESTDEMO_SECRETS_KEY, RESTDEMO_TLS_CA_PARAMETER"):
        AgentEnvironment.from_environ({**WORKER_ENVIRONMENT, "RESTDEMO_ROLE": "manager"})
    with pytest.raises(ValueError, match="manager or worker"):
        AgentEnvironment.from_environ({**WORKER_ENVIRONMENT, "RESTDEMO_ROLE": "boss"})


def test_every_setting_reaches_the_agent_as_declared():
    """One declaration: what cloud-init writes, the agent reads back, every field (none left at its
    default), and an override left at its default is not written."""
    manager = AgentEnvironment(
        stack="prod",
        region="us-east-1",
        role="manager",
        state_table="restdemo-prod-state",
        ssm_prefix="/restdemo/prod",
        lifecycle_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/restdemo-prod-lifecycle",
        log_group="/restdemo/prod/swarm",
        registry="123456789012.dkr.ecr.us-east-1.amazonaws.com",
        readiness_port=44555,
        group_name="restdemo-prod-managers",
        prune_interval_seconds=3600,
        bootstrap_timeout_seconds=600,
        primary_stale_seconds=120,
        secrets_key="arn:aws:kms:us-east-1:123456789012:key/k",
        metrics_period_seconds=10,
        docker_root="/srv/docker",
        node_state_dir="/srv/restdemo",
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/restdemo-agent-prod:v1-abc",
        tls_ca_parameter="/restdemo/prod/tls/ca",
        tls_cert_parameter="/restdemo/prod/tls/cert",
        tls_key_parameter="/restdemo/prod/tls/key",
    )
    assert AgentEnvironment.from_environ(manager.to_environ()) == manager
    assert manager.tls_parameters() == {
        "ca": "/restdemo/prod/tls/ca",
        "cert": "/restdemo/prod/tls/cert",
        "key": "/restdemo/prod/tls/key",
    }
    assert list(WORKER_ENVIRONMENT) == [
        "RESTDEMO_STACK",
        "AWS_REGION",
        "RESTDEMO_ROLE",
        "RESTDEMO_STATE_TABLE",
        "RESTDEMO_SSM_PREFIX",
        "RESTDEMO_LIFECYCLE_QUEUE_URL",
        "RESTDEMO_LOG_GROUP",
        "RESTDEMO_REGISTRY",
        "RESTDEMO_READINESS_PORT",
        "RESTDEMO_GROUP_NAME",
        "RESTDEMO_PRUNE_INTERVAL",
        "RESTDEMO_BOOTSTRAP_TIMEOUT",
        "RESTDEMO_PRIMARY_STALE_AFTER",
        "RESTDEMO_AGENT_IMAGE",
    ]
    assert AgentEnvironment.from_environ(WORKER_ENVIRONMENT).tls_parameters() == {}
