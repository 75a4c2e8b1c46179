"""agent/src/restdemo_agent/contract.py: the environment the program hands the agent."""

from __future__ import annotations

import pytest

from restdemo_agent.contract import AgentEnvironment
from tests.support.agent_env import WORKER_ENVIRONMENT

pytestmark = pytest.mark.unit


def test_environment_names_what_is_missing():
    with pytest.raises(ValueError, match="lacks RESTDEMO_STATE_TABLE"):
        AgentEnvironment.from_environ({k: v for k, v in WORKER_ENVIRONMENT.items() if k != "RESTDEMO_STATE_TABLE"})
    with pytest.raises(ValueError, match="RESTDEMO_TLS_CA_PARAMETER.*RESTDEMO_SECRETS_KEY"):
        AgentEnvironment.from_environ({**WORKER_ENVIRONMENT, "RESTDEMO_ROLE": "manager"})
    with pytest.raises(ValueError, match="manager or worker"):
        AgentEnvironment.from_environ({**WORKER_ENVIRONMENT, "RESTDEMO_ROLE": "boss"})
