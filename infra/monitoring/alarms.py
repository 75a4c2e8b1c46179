"""The stack's alarms as data: what each watches, when it fires, and what its page says to do.

Pure decisions, no calls: `alarm_specs` lists them for a stack, `alarm_args` turns one into the
inputs of an `aws.cloudwatch.MetricAlarm`. Every alarm notifies the topic when it fires and when
it is OK again, and its description names what broke, what to do, and the runbook's section.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from infra.config.capacity import workers_may_run_spot
from infra.config.database import max_connections
from infra.config.names import resource_name
from infra.config.settings import SettingsView
from restdemo_agent.contract import (
    AGENT_HEARTBEAT,
    BOOTSTRAP_GAVE_UP,
    CREDENTIALS_AGE,
    DISK_USED_PERCENT,
    KEPT_SECRETS_AGE,
    LEADER_SEEN,
    MANAGERS_REACHABLE,
    METRICS_DIMENSION,
    METRICS_NAMESPACE,
    METRICS_PERIOD_SECONDS,
    REPLICAS_DESIRED,
    REPLICAS_RUNNING,
    SERVICE_AT_MAX_REPLICAS,
    SERVICE_DIMENSION,
    SERVICE_REPLICAS_MISSING,
    UPDATE_ROLLED_BACK,
    VOLUME_DIRECTORIES_FAILING,
    WORKER_METRICS_NAMESPACE,
    WORKERS_SPOT_FALLBACK,
)

ONE_MINUTE = METRICS_PERIOD_SECONDS  # the agent writes its metrics once a minute
# The share of answers that may be 5xx (the ALB's own and the targets') before anyone is paged.
FIVE_XX_PERCENT = 5.0
# ... of at least this many answers in the minute.
MIN_ANSWERS = 10
# The slowest p99 answer time the service is allowed for five minutes (restdemo answers in ms).
P99_SECONDS = 1.0
DISK_PERCENT = 80.0
# The agent refreshes the swarm's registry credentials every 4 h; an ECR token lasts 12 h.
CREDENTIALS_HOURS = 6


@dataclass(frozen=True)
class AlarmSettings(SettingsView):
    """What the alarms read of the settings: the nodes each role should have, the service's name."""

    manager_count: int
    worker_count: int
    service_name: str
    aws_secrets: list[str]
    secret_refresh: float
    database_instance_class: str
    database_storage_gb: int
    worker_on_demand_base: int
    worker_on_demand_percent: int
    worker_max_count: int


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    stat: str  # Sum, Average, Minimum, Maximum, SampleCount, or a percentile such as p99
    dimensions: dict[str, pulumi.Input[str]]


@dataclass(frozen=True)
class AlarmSpec:
    key: str  # the name after restdemo-<stack>-
    broke: str  # the first sentence of the page: what broke
    action: str  # what to do
    runbook: str  # the section of docs/operations.md
    comparison: str
    threshold: float
    periods: int  # evaluation periods of `period` seconds
    datapoints: int  # of which breaching fire the alarm
    missing: str  # treatMissingData
    period: int = ONE_MINUTE
    metric: Metric | None = None
    # Metric math instead: an expression over `inputs` (their ids), e.g. "100 * m1 / m2".
    expression: str | None = None
    inputs: dict[str, Metric] = field(default_factory=dict)
    low_samples: str | None = None  # evaluateLowSampleCountPercentiles, for percentile alarms


@dataclass(frozen=True)
class Watched:
    """The dimensions the alarms watch, as AWS names them (arn suffixes, group names, the stack)."""

    stack: str
    web_balancer: pulumi.Input[str]
    web_target_group: pulumi.Input[str]
    admin_balancer: pulumi.Input[str]
    admin_target_group: pulumi.Input[str]
    groups: dict[str, pulumi.Input[str]]  # role -> auto scaling group name
    # A Compose stack's default route (the service web_target_group reaches), and its other routes:
    # each one's target group (arn suffix), by the service it reaches.
    default_route: str = ""
    web_routes: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    # A Compose stack's services: each one's name in the swarm, by its Compose name.
    services: dict[str, str] = field(default_factory=dict)
    # The volumes' EFS file system, when the app has volumes.
    file_system: pulumi.Input[str] | None = None
    # The database's RDS instance identifier, when the app has one.
    database: pulumi.Input[str] | None = None
    # The services whose replicas follow the load: each one's name in the swarm, by its Compose name
    # ("" for the single service).
    scaling: dict[str, str] = field(default_factory=dict)


def five_xx_share() -> str:
    """The 5xx share of a minute's answers (m1 the targets' 5xx, m2 the ALB's, m3 the requests), over
    the larger of the requests and the 5xx: the ALB's own 503s with no target to send to are not in
    RequestCount, so a total outage still reads 100 %. A minute with fewer than MIN_ANSWERS answers
    reads 0: one 5xx in each of three quiet minutes is no outage."""
    errors = "(FILL(m1, 0) + FILL(m2, 0))"
    answers = f"MAX([FILL(m3, 0), {errors}])"
    return f"IF({answers} >= {MIN_ANSWERS}, 100 * {errors} / {answers}, 0)"


def quorum(managers: int) -> int:
    return managers // 2 + 1


def alarm_specs(settings: AlarmSettings, watched: Watched) -> list[AlarmSpec]:
    web = {"LoadBalancer": watched.web_balancer}
    web_targets = {"TargetGroup": watched.web_target_group, "LoadBalancer": watched.web_balancer}
    alb = "AWS/ApplicationELB"
    specs = [
        AlarmSpec(
            key="web-5xx-share",
            broke=f"More than {FIVE_XX_PERCENT:g}% of the answers through the load balancer were 5xx "
            "(the service's own, or the load balancer's when no replica answered).",
            action="Look at the service's replicas and their logs; a rollout may be failing.",
            runbook="the-service-answers-5xx",
            comparison="GreaterThanThreshold",
            threshold=FIVE_XX_PERCENT,
            periods=5,
            datapoints=3,
            missing="notBreaching",  # no requests, no data: nothing failed
            expression=five_xx_share(),
            inputs={
                "m1": Metric(alb, "HTTPCode_Target_5XX_Count", "Sum", web),
                "m2": Metric(alb, "HTTPCode_ELB_5XX_Count", "Sum", web),
                "m3": Metric(alb, "RequestCount", "Sum", web),
            },
        ),
        unhealthy_hosts(
            "web-unhealthy-hosts",
            "A node has failed the load balancer's health check (healthCheckPath) for 5 minutes.",
            "Find the node (the target group's health); its engine or routing mesh may be down.",
            web_targets,
        ),
        AlarmSpec(
            key="web-latency-p99",
            broke=f"The slowest 1% of answers took longer than {P99_SECONDS:g} s for 5 minutes.",
            action="Look at the nodes' CPU and memory and the replicas' logs; scale out if it is load.",
            runbook="the-service-is-slow",
            comparison="GreaterThanThreshold",
            threshold=P99_SECONDS,
            periods=5,
            datapoints=5,
            missing="notBreaching",
            metric=Metric(alb, "TargetResponseTime", "p99", web),
            low_samples="ignore",  # the p99 of a handful of requests is just the slowest one
        ),
    ]
    specs += route_specs(watched)
    if watched.file_system is not None:
        specs += [volumes_io_limit(watched.file_system), volume_directory_failing(watched.stack)]
    if watched.database is not None:
        specs += database_specs(settings, watched.database)
    for role, group in watched.groups.items():
        on_group = {"AutoScalingGroupName": group}
        specs.append(
            AlarmSpec(
                key=f"{role}s-below-desired",
                broke=f"The {role}s' group has had fewer instances in service than desired for 10 minutes.",
                action="Read the group's activity history: launches failing (capacity, AMI, quota) or "
                "nodes that never join.",
                runbook="a-group-stays-below-its-desired-capacity",
                comparison="GreaterThanThreshold",
                threshold=0,
                periods=10,
                datapoints=10,
                missing="notBreaching",
                expression="m1 - m2",
                inputs={
                    "m1": Metric("AWS/AutoScaling", "GroupDesiredCapacity", "Maximum", on_group),
                    "m2": Metric("AWS/AutoScaling", "GroupInServiceInstances", "Minimum", on_group),
                },
            )
        )
    if workers_may_run_spot(settings):
        specs.append(spot_fallback(watched.stack))
    return specs + swarm_specs(settings, watched.stack) + service_specs(watched) + scaling_specs(watched)


def spot_fallback(stack: str) -> AlarmSpec:
    """The workers' group on-demand for want of spot, from the leader's line (restdemo_agent.spot_fallback):
    it says so while it lasts, and again when spot is back (OK)."""
    return AlarmSpec(
        key="workers-spot-fallback",
        broke="The workers' group could not launch spot capacity: the leader has it launch its missing workers "
        "on-demand.",
        action="Nothing is needed; spot is tried again an hour after the last failed launch (OK then means tried, "
        "not found). If it lasts, add instance types of the same size (workerInstanceTypes) or raise "
        "workerOnDemandBase.",
        runbook="the-workers-fall-back-to-on-demand",
        comparison="GreaterThanOrEqualToThreshold",
        threshold=1,
        periods=1,
        datapoints=1,
        # A leader that stops reporting has its own pages (swarm-no-leader, node-heartbeat-missing).
        missing="notBreaching",
        metric=Metric(METRICS_NAMESPACE, WORKERS_SPOT_FALLBACK, "Maximum", {METRICS_DIMENSION: stack}),
    )


def unhealthy_hosts(key: str, broke: str, action: str, targets: dict[str, pulumi.Input[str]]) -> AlarmSpec:
    """Nodes failing a target group's health check for 5 minutes."""
    return AlarmSpec(
        key=key,
        broke=broke,
        action=action,
        runbook="a-node-fails-the-load-balancers-health-check",
        comparison="GreaterThanThreshold",
        threshold=0,
        periods=5,
        datapoints=5,
        missing="notBreaching",
        metric=Metric("AWS/ApplicationELB", "UnHealthyHostCount", "Maximum", targets),
    )


def route_specs(watched: Watched) -> list[AlarmSpec]:
    """Each other route's own: its 5xx share (its replicas' 5xx over its requests: the ALB's own 5xx
    are the default's alarm) and its nodes failing its health check."""
    alb = "AWS/ApplicationELB"
    specs = []
    for service, target_group in sorted(watched.web_routes.items()):
        targets = {"TargetGroup": target_group, "LoadBalancer": watched.web_balancer}
        specs += [
            AlarmSpec(
                key=f"web-5xx-share-{service}",
                broke=f"More than {FIVE_XX_PERCENT:g}% of {service}'s answers through the load balancer were 5xx.",
                action=f"Look at {service}'s replicas and their logs; a rollout may be failing.",
                runbook="the-service-answers-5xx",
                comparison="GreaterThanThreshold",
                threshold=FIVE_XX_PERCENT,
                periods=5,
                datapoints=3,
                missing="notBreaching",
                expression=f"IF(FILL(m2, 0) >= {MIN_ANSWERS}, 100 * FILL(m1, 0) / FILL(m2, 1), 0)",
                inputs={
                    "m1": Metric(alb, "HTTPCode_Target_5XX_Count", "Sum", targets),
                    "m2": Metric(alb, "RequestCount", "Sum", targets),
                },
            ),
            unhealthy_hosts(
                f"web-unhealthy-hosts-{service}",
                f"A node has failed {service}'s health check for 5 minutes.",
                f"Find the node (the target group's health); {service}'s replicas or the routing mesh may be down.",
                targets,
            ),
        ]
    return specs


def replicas_below_desired(key: str, whose: str, service_name: str, **measure) -> AlarmSpec:
    """Fewer replicas than desired for 5 minutes, as `measure` (a metric, or an expression) reads it."""
    return AlarmSpec(
        key=key,
        broke=f"{whose} has run fewer replicas than desired for 5 minutes.",
        action=f"docker service ps {service_name}: tasks failing to start, no node to place them, or a lost node.",
        runbook="the-service-runs-fewer-replicas-than-desired",
        comparison="GreaterThanThreshold",
        threshold=0,
        periods=5,
        datapoints=5,
        missing="ignore",  # a lost minute of lines keeps the state: no OK mail, no second page
        **measure,
    )


# EFS's General Purpose mode has an I/O limit (AWS/EFS PercentIOLimit, "how close a file system is to
# the I/O limit of the General Purpose performance mode"); Elastic throughput has no burst credits.
IO_LIMIT_PERCENT = 90


def volumes_io_limit(file_system: pulumi.Input[str]) -> AlarmSpec:
    return AlarmSpec(
        key="volumes-io-limit",
        broke=f"The volumes' file system has run above {IO_LIMIT_PERCENT}% of its I/O limit for 15 minutes.",
        action="Find the service that reads and writes most (the tasks' logs, the dashboard's bytes); keep "
        "that traffic off the volumes (a database, a cache) or spread it out.",
        runbook="the-volumes-are-at-their-io-limit",
        comparison="GreaterThanThreshold",
        threshold=IO_LIMIT_PERCENT,
        periods=15,
        datapoints=15,
        missing="notBreaching",  # EFS reports nothing for an idle file system
        metric=Metric("AWS/EFS", "PercentIOLimit", "Maximum", {"FileSystemId": file_system}),
    )


def volume_directory_failing(stack: str) -> AlarmSpec:
    return AlarmSpec(
        key="volume-directory-failing",
        broke="The leader has failed for 5 minutes to make a volume's directory: tasks that mount it cannot start.",
        action="Read the leader agent's volume-directory-failed lines: the file system not reachable from its "
        "zone, something else in the directory's place.",
        runbook="a-volumes-directory-cannot-be-made",
        comparison="GreaterThanOrEqualToThreshold",
        threshold=1,
        periods=5,
        datapoints=5,
        missing="ignore",  # a new leader reports once it has tried; a lost minute keeps the state
        metric=Metric(METRICS_NAMESPACE, VOLUME_DIRECTORIES_FAILING, "Maximum", {METRICS_DIMENSION: stack}),
    )


# The database's pages: its CPU busy for 15 minutes, its storage below a tenth (RDS stops the instance
# when it is full), its connections near max_connections (new ones are refused), and the WAL that
# replication slots hold (ReplicationSlotDiskUsage) above a quarter of the storage: the replica lag an
# RDS for PostgreSQL instance can have (its Multi-AZ standby is synchronous and reports none; a slot
# whose consumer is behind or gone keeps WAL until the storage fills).
DATABASE_CPU_PERCENT = 80
DATABASE_FREE_STORAGE_SHARE = 0.1
# Of max_connections as the class's memory gives it: RDS's DBInstanceClassMemory is less (the OS's and
# RDS's own share, about a quarter on db.t4g.micro), so 60% of that is about 80% of the real limit.
DATABASE_CONNECTIONS_SHARE = 0.6
REPLICATION_SLOT_STORAGE_SHARE = 0.25


def database_specs(settings: AlarmSettings, identifier: pulumi.Input[str]) -> list[AlarmSpec]:
    on_instance = {"DBInstanceIdentifier": identifier}
    connections = int(max_connections(settings.database_instance_class) * DATABASE_CONNECTIONS_SHARE)
    free_bytes = int(settings.database_storage_gb * 2**30 * DATABASE_FREE_STORAGE_SHARE)
    slot_bytes = int(settings.database_storage_gb * 2**30 * REPLICATION_SLOT_STORAGE_SHARE)
    return [
        AlarmSpec(
            key="database-cpu",
            broke=f"The database has used more than {DATABASE_CPU_PERCENT}% of its CPU for 15 minutes.",
            action="Find the slow queries (pg_stat_statements, Performance Insights); raise "
            "databaseInstanceClass if it is load.",
            runbook="the-database-is-busy",
            comparison="GreaterThanThreshold",
            threshold=DATABASE_CPU_PERCENT,
            periods=15,
            datapoints=15,
            missing="ignore",
            metric=Metric("AWS/RDS", "CPUUtilization", "Average", on_instance),
        ),
        AlarmSpec(
            key="database-free-storage",
            broke=f"The database has less than {DATABASE_FREE_STORAGE_SHARE:.0%} of its storage free; "
            "full, RDS stops it.",
            action="Raise databaseStorageGb (storage only grows) and up; find what grew (tables, WAL held by a slot).",
            runbook="the-database-is-running-out-of-storage",
            comparison="LessThanThreshold",
            threshold=free_bytes,
            periods=5,
            datapoints=5,
            missing="ignore",
            metric=Metric("AWS/RDS", "FreeStorageSpace", "Minimum", on_instance),
        ),
        AlarmSpec(
            key="database-connections",
            broke=f"The database has held more than {connections} connections (about 80% of its max_connections) "
            "for 10 minutes; at the limit new ones are refused.",
            action="Look for a service leaking connections or too many replicas each with a pool; pool "
            "(PgBouncer) or raise databaseInstanceClass.",
            runbook="the-database-is-near-its-connection-limit",
            comparison="GreaterThanThreshold",
            threshold=connections,
            periods=10,
            datapoints=10,
            missing="ignore",
            metric=Metric("AWS/RDS", "DatabaseConnections", "Maximum", on_instance),
        ),
        AlarmSpec(
            key="database-replication-slot-lag",
            broke=f"Replication slots have held more than {REPLICATION_SLOT_STORAGE_SHARE:.0%} of the database's "
            "storage in WAL for 15 minutes: a slot's consumer is behind or gone, and the WAL fills the storage.",
            action="SELECT slot_name, active FROM pg_replication_slots; catch the consumer up, or drop the "
            "slot it abandoned.",
            runbook="a-replication-slot-holds-the-databases-wal",
            comparison="GreaterThanThreshold",
            threshold=slot_bytes,
            periods=15,
            datapoints=15,
            missing="notBreaching",  # no slot, no metric
            metric=Metric("AWS/RDS", "ReplicationSlotDiskUsage", "Maximum", on_instance),
        ),
    ]


def service_metric(stack: str, service: str, name: str) -> Metric:
    """A metric the leader writes on a service's own line (its name in the swarm), at its maximum."""
    return Metric(METRICS_NAMESPACE, name, "Maximum", {METRICS_DIMENSION: stack, SERVICE_DIMENSION: service})


def service_specs(watched: Watched) -> list[AlarmSpec]:
    """Each Compose service's replicas short of desired, from the leader's line for it: the stack's
    alarm sums the services, where one running an extra task in a rollout hides another's shortfall."""
    return [
        replicas_below_desired(
            f"replicas-below-desired-{service}",
            service,
            name,
            metric=service_metric(watched.stack, name, SERVICE_REPLICAS_MISSING),
        )
        for service, name in sorted(watched.services.items())
    ]


# A service at its maximum replicas with its load asking for more, this many minutes (#31).
HELD_AT_MAXIMUM_MINUTES = 15


def scaling_specs(watched: Watched) -> list[AlarmSpec]:
    """Each service whose replicas follow the load, held at its maximum for 15 minutes by the leader's
    reading (restdemo_agent.scaling.at_maximum): it needs a higher bound, or more nodes."""
    return [
        AlarmSpec(
            key="replicas-held-at-max" + (f"-{service}" if service else ""),
            broke=f"{name} has run its maximum replicas for {HELD_AT_MAXIMUM_MINUTES} minutes and its load asks "
            "for more.",
            action="Raise its maximum (maxReplicas, or x-restdemo.scale.max_replicas), or add workers if they are "
            "full; docker service ps shows where its tasks run.",
            runbook="a-service-is-held-at-its-maximum-replicas",
            comparison="GreaterThanOrEqualToThreshold",
            threshold=1,
            periods=HELD_AT_MAXIMUM_MINUTES,
            datapoints=HELD_AT_MAXIMUM_MINUTES,
            missing="ignore",  # a lost minute of lines keeps the state: no OK mail, no second page
            metric=service_metric(watched.stack, name, SERVICE_AT_MAX_REPLICAS),
        )
        for service, name in sorted(watched.scaling.items())
    ]


def swarm_specs(settings: AlarmSettings, stack: str) -> list[AlarmSpec]:
    """The swarm's own health, from the metrics the node agents write (restdemo_agent.metrics)."""

    def agent(name: str, stat: str, namespace: str = METRICS_NAMESPACE) -> Metric:
        return Metric(namespace, name, stat, {METRICS_DIMENSION: stack})

    def every_node(name: str, stat: str) -> dict[str, Metric]:
        """A node metric of the managers' (EMF in the swarm's log group) and of the workers' (their
        namespace, PutMetricData): the swarm-level metrics come from the managers only."""
        return {"m1": agent(name, stat), "m2": agent(name, stat, WORKER_METRICS_NAMESPACE)}

    needed = quorum(settings.manager_count)
    return [
        # From the managers' own view, not the admin NLB's HealthyHostCount: ELB reports its metrics
        # "only when requests are flowing through the load balancer" (none on an idle stack reached
        # through Session Manager), and its Minimum/Maximum are "the values ... reported by the
        # individual load balancer nodes", each seeing its own zone's targets with cross-zone load
        # balancing off (the NLB's default): one manager per zone reads 1 (Network Load Balancers
        # User Guide, "CloudWatch metrics for your Network Load Balancer"; "Cross-zone load balancing").
        AlarmSpec(
            key="managers-below-quorum",
            broke=f"The managers report fewer than {needed} of {settings.manager_count} managers reachable, or none "
            "of them reports: the swarm has lost its quorum, or every manager's agent is down.",
            action="Check the managers (docker node ls on one); with the instances alive and no leader, recover "
            "the quorum.",
            runbook="a-manager-has-no-quorum",
            comparison="LessThanThreshold",
            threshold=needed,
            periods=2,
            datapoints=2,
            missing="breaching",  # no manager reporting: no quorum anyone knows of
            # The best view any manager has: one cut off from the others sees fewer, not more.
            metric=agent(MANAGERS_REACHABLE, "Maximum"),
        ),
        AlarmSpec(
            key="swarm-no-leader",
            broke="No manager has seen a swarm leader for two minutes: the swarm has lost its quorum, or every "
            "manager's agent is down.",
            action="Check the managers (docker node ls on one); with their instances alive, recover the quorum.",
            runbook="a-manager-has-no-quorum",
            comparison="LessThanThreshold",
            threshold=1,
            periods=3,
            datapoints=2,  # one late or lost minute of lines does not page
            missing="breaching",  # no manager reporting is no leader known
            metric=agent(LEADER_SEEN, "Maximum"),
        ),
        replicas_below_desired(
            "replicas-below-desired",
            "The service",
            settings.service_name,
            expression="m1 - m2",
            inputs={"m1": agent(REPLICAS_DESIRED, "Maximum"), "m2": agent(REPLICAS_RUNNING, "Maximum")},
        ),
        AlarmSpec(
            key="service-rolled-back",
            broke="Swarm rolled the service's last update back: the new version did not turn healthy.",
            action="The old version still serves. Read the failed tasks' errors, fix, deploy again.",
            runbook="a-rollout-is-rolled-back",
            comparison="GreaterThanOrEqualToThreshold",
            threshold=1,
            periods=1,
            datapoints=1,
            missing="ignore",  # a lost minute of lines keeps the state: no OK mail, no second page
            metric=agent(UPDATE_ROLLED_BACK, "Maximum"),
        ),
        AlarmSpec(
            key="registry-credentials-stale",
            broke=f"The swarm's registry credentials are older than {CREDENTIALS_HOURS} hours: the leader's "
            "refreshes fail, and new tasks cannot pull once the 12-hour token expires.",
            action="Read the leader agent's errors (ECR login, permissions); restart it if it is stuck.",
            runbook="registry-credentials-are-not-refreshed",
            comparison="GreaterThanThreshold",
            threshold=CREDENTIALS_HOURS * 3600,
            periods=1,
            datapoints=1,
            missing="ignore",  # a lost minute of lines keeps the state: no OK mail, no second page
            metric=agent(CREDENTIALS_AGE, "Maximum"),
        ),
        *kept_secrets_stale(settings, agent),
        AlarmSpec(
            key="node-disk-high",
            broke=f"A node's Docker data root is more than {DISK_PERCENT:g}% full.",
            action="Prune images on it (docker system prune), or set pruneInterval; grow nodeVolumeGb.",
            runbook="a-nodes-disk-fills-up",
            comparison="GreaterThanThreshold",
            threshold=DISK_PERCENT,
            periods=2,
            datapoints=2,
            missing="ignore",  # a lost minute of lines keeps the state: no OK mail, no second page
            expression="MAX([m1, m2])",
            inputs=every_node(DISK_USED_PERCENT, "Maximum"),
        ),
        # Each role against its own count: a worker may write any heartbeat to the workers' namespace,
        # so a sum over both would let it hide a silent manager.
        AlarmSpec(
            key="node-heartbeat-missing",
            broke=f"Fewer than {settings.manager_count} manager agents, or fewer than {settings.worker_count} "
            "worker agents, have reported for 5 minutes: a node is dead, or its agent crashed or hangs.",
            action="Find the node whose agent is silent (its log stream); replace its instance if it hangs.",
            runbook="a-nodes-agent-stops-reporting",
            comparison="GreaterThanOrEqualToThreshold",
            threshold=1,
            periods=5,
            datapoints=5,
            missing="breaching",  # silence is exactly what this alarm is for
            # Parenthesised: CloudWatch's metric math documents no precedence between < and OR.
            expression=f"IF((FILL(m1, 0) < {settings.manager_count}) OR (FILL(m2, 0) < {settings.worker_count}), 1, 0)",
            inputs=every_node(AGENT_HEARTBEAT, "Sum"),
        ),
        AlarmSpec(
            key="node-bootstrap-gave-up",
            broke="A node gave up joining the swarm and asked to be replaced.",
            action="Read its bootstrap-retry lines: the cause repeats on every replacement until fixed.",
            runbook="a-node-cannot-join-the-swarm",
            comparison="GreaterThanOrEqualToThreshold",
            threshold=1,
            periods=1,
            datapoints=1,
            missing="notBreaching",
            expression="FILL(m1, 0) + FILL(m2, 0)",
            inputs=every_node(BOOTSTRAP_GAVE_UP, "Sum"),
        ),
    ]


def kept_secrets_stale_after(refresh: float) -> int:
    """Three missed reads, and at least 15 minutes: one throttled or slow read does not page."""
    return int(max(3 * refresh, 900))


def kept_secrets_stale(settings: AlarmSettings, agent) -> list[AlarmSpec]:
    """On a stack that keeps secrets in AWS: the leader has not read one of them for too long."""
    if not settings.aws_secrets:
        return []
    after = kept_secrets_stale_after(settings.secret_refresh)
    return [
        AlarmSpec(
            key="kept-secrets-stale",
            broke=f"A secret kept in AWS has not reached every service that mounts it for {after // 60} "
            "minutes: they keep the value they have.",
            action="Read the leader agent's secret-read-failed, secrets-rolled-back and secret-rollout-failed "
            "lines: access, a deleted secret, a missing #KEY, a value whose tasks fail, a service held paused.",
            runbook="a-secret-kept-in-aws-does-not-reach-the-services",
            comparison="GreaterThanThreshold",
            threshold=after,
            periods=1,
            datapoints=1,
            missing="ignore",  # a lost minute of lines keeps the state: no OK mail, no second page
            metric=agent(KEPT_SECRETS_AGE, "Maximum"),
        )
    ]


def alarm_name(stack: str, spec: AlarmSpec) -> str:
    return resource_name(stack, spec.key)


RUNBOOK = "docs/operations.md"


def runbook(section: str, runbook_url: str | None) -> str:
    """Where a page sends the operator: a link to the section (runbookUrl), or the section named, since a
    relative path is no link any mail client opens."""
    if runbook_url:
        return f"Runbook: {runbook_url}#{section}"
    return f"Runbook: {RUNBOOK}, section #{section} (set restdemo:runbookUrl for a link)"


def description(spec: AlarmSpec, runbook_url: str | None) -> str:
    return f"{spec.broke} {spec.action} {runbook(spec.runbook, runbook_url)}"


def _metric_stat(metric: Metric, period: int) -> dict:
    # The provider's metric_query.metric block is flat (tpa cloudwatch/metric_alarm.go).
    return {
        "namespace": metric.namespace,
        "metric_name": metric.name,
        "dimensions": metric.dimensions,
        "period": period,
        "stat": metric.stat,
    }


def alarm_args(stack: str, spec: AlarmSpec, topic_arn: pulumi.Input[str], runbook_url: str | None) -> dict:
    """The MetricAlarm inputs for one spec (snake_case, as the Python SDK takes them)."""
    args = {
        "name": alarm_name(stack, spec),
        "alarm_description": description(spec, runbook_url),
        "comparison_operator": spec.comparison,
        "threshold": spec.threshold,
        "evaluation_periods": spec.periods,
        "datapoints_to_alarm": spec.datapoints,
        "treat_missing_data": spec.missing,
        "alarm_actions": [topic_arn],
        "ok_actions": [topic_arn],
    }
    if spec.low_samples:
        args["evaluate_low_sample_count_percentiles"] = spec.low_samples
    if spec.metric is not None:
        metric = spec.metric
        statistic = {"extended_statistic": metric.stat} if metric.stat.startswith("p") else {"statistic": metric.stat}
        return (
            args
            | statistic
            | {
                "namespace": metric.namespace,
                "metric_name": metric.name,
                "dimensions": metric.dimensions,
                "period": spec.period,
            }
        )
    queries = [
        {"id": "e1", "expression": spec.expression, "label": spec.key, "return_data": True},
        *({"id": i, "metric": _metric_stat(m, spec.period), "return_data": False} for i, m in spec.inputs.items()),
    ]
    return args | {"metric_queries": queries}
