"""The agent's side of the contract with the Pulumi program: the environment cloud-init writes.

infra/cloud_init.py NodeConfig.agent_environment() writes these names; change both at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

REQUIRED = (
    "RESTDEMO_STACK",
    "AWS_REGION",
    "RESTDEMO_ROLE",
    "RESTDEMO_STATE_TABLE",
    "RESTDEMO_SSM_PREFIX",
    "RESTDEMO_LIFECYCLE_QUEUE_URL",
    "RESTDEMO_LOG_GROUP",
    "RESTDEMO_REGISTRY",
)
MANAGER_ONLY = ("RESTDEMO_TLS_CA_PARAMETER", "RESTDEMO_TLS_CERT_PARAMETER", "RESTDEMO_TLS_KEY_PARAMETER")


@dataclass(frozen=True)
class AgentEnvironment:
    stack: str
    region: str
    role: str
    state_table: str
    ssm_prefix: str
    lifecycle_queue_url: str
    log_group: str
    registry: str
    readiness_port: int

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> AgentEnvironment:
        environ = dict(os.environ if environ is None else environ)
        missing = [name for name in REQUIRED if not environ.get(name)]
        role = environ.get("RESTDEMO_ROLE", "")
        if role not in ("manager", "worker"):
            missing.append("RESTDEMO_ROLE (manager or worker)")
        if role == "manager":
            missing += [name for name in MANAGER_ONLY if not environ.get(name)]
        if missing:
            raise ValueError(f"the agent's environment lacks {', '.join(dict.fromkeys(missing))}")
        return cls(
            stack=environ["RESTDEMO_STACK"],
            region=environ["AWS_REGION"],
            role=role,
            state_table=environ["RESTDEMO_STATE_TABLE"],
            ssm_prefix=environ["RESTDEMO_SSM_PREFIX"],
            lifecycle_queue_url=environ["RESTDEMO_LIFECYCLE_QUEUE_URL"],
            log_group=environ["RESTDEMO_LOG_GROUP"],
            registry=environ["RESTDEMO_REGISTRY"],
            readiness_port=int(environ.get("RESTDEMO_READINESS_PORT", "44554")),
        )
