"""A worker's agent environment, as cloud-init writes it (infra/swarm/cloud_init.py)."""

from dataclasses import replace

from infra.swarm.cloud_init import NodeConfig
from restdemo_agent.contract import AgentEnvironment

WORKER_NODE = NodeConfig(
    agent=AgentEnvironment(
        role="worker",
        stack="dev",
        region="eu-west-1",
        state_table="restdemo-dev-state",
        ssm_prefix="/restdemo/dev",
        lifecycle_queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/restdemo-dev-lifecycle",
        log_group="/restdemo/dev",
        registry="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        group_name="restdemo-dev-workers",
        image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/restdemo-agent-dev:v1-abc@sha256:" + "0" * 64,
    ),
    log_group="/restdemo/dev",
)
WORKER_ENVIRONMENT = WORKER_NODE.agent.to_environ()


def worker_node_with(**agent: object) -> NodeConfig:
    """WORKER_NODE with some of its agent's settings changed (a manager's role, another region)."""
    return replace(WORKER_NODE, agent=replace(WORKER_NODE.agent, **agent))
