"""A worker's agent environment, as cloud-init writes it (infra/swarm/cloud_init.py)."""

from infra.swarm.cloud_init import NodeConfig

WORKER_NODE = NodeConfig(
    role="worker",
    stack="dev",
    region="eu-west-1",
    state_table="restdemo-dev-state",
    ssm_prefix="/restdemo/dev",
    lifecycle_queue_url="https://sqs.eu-west-1.amazonaws.com/123456789012/restdemo-dev-lifecycle",
    log_group="/restdemo/dev",
    registry="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    group_name="restdemo-dev-workers",
    agent_image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/restdemo-agent-dev:v1-abc@sha256:" + "0" * 64,
)
WORKER_ENVIRONMENT = WORKER_NODE.agent_environment()
