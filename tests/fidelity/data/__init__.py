"""The fidelity tier's rules as data: one module per AWS service or provider, each citing its
sources next to every rule (tpa: terraform-provider-aws internal/service/...; tpd:
kreuzwerker/terraform-provider-docker internal/provider/...). Here they are assembled into the
tables tests/fidelity/test_fidelity.py runs; the rule kinds and the checks are in tests/fidelity/rules.py.
"""

from __future__ import annotations

from tests.fidelity.data import (
    acm,
    autoscaling,
    cloudwatch,
    docker,
    docker_build,
    dynamodb,
    ec2,
    ecr,
    efs,
    elbv2,
    events,
    iam,
    kms,
    logs,
    rds,
    sns,
    sqs,
    ssm,
)

# Each table keeps the order it had as one list, so test ids and failure lists come out as before.
FIELDS = [
    *ec2.FIELDS,
    *autoscaling.FIELDS,
    *ec2.LAUNCH_TEMPLATE_FIELDS,
    *elbv2.FIELDS,
    *sqs.FIELDS,
    *dynamodb.FIELDS,
    *logs.FIELDS,
    *ssm.PARAMETER_FIELDS,
    *iam.FIELDS,
    *kms.FIELDS,
    *ssm.DOCUMENT_FIELDS,
    *docker.FIELDS,
    *ecr.FIELDS,
    *docker_build.FIELDS,
    *cloudwatch.FIELDS,
    *sns.FIELDS,
    *events.FIELDS,
    *acm.FIELDS,
    *efs.FIELDS,
    *rds.FIELDS,
]
FORCE_NEW = [
    *autoscaling.FORCE_NEW,
    *sqs.FORCE_NEW,
    *dynamodb.FORCE_NEW,
    *logs.FORCE_NEW,
    *ssm.FORCE_NEW,
    *ecr.FORCE_NEW,
    *docker.FORCE_NEW,
    *cloudwatch.FORCE_NEW,
    *sns.FORCE_NEW,
    *events.FORCE_NEW,
    *rds.FORCE_NEW,
]
TWO_PLACES = [*autoscaling.TWO_PLACES, *ec2.TWO_PLACES]
READ_BACK_WIDER = [*docker.READ_BACK_WIDER]
WRITTEN_ON_THE_SWARM = [*docker.WRITTEN_ON_THE_SWARM]
NEEDS = [*ec2.NEEDS, *autoscaling.NEEDS, *rds.NEEDS]
