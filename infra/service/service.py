"""SwarmService: the replicated service (restdemo, or yours: serviceName) on a swarm, exactly as docs/ARCHITECTURE.md
"SwarmService" says, through a docker provider for that swarm's engine.

Every field the daemon would otherwise default is set explicitly, in the daemon's own
spelling, so a second preview shows no changes. The registry login that goes with the service
(the provider's `registry_auth`; never `docker.Service.auth`, which would replace the service
whenever the password changes) is a pull-only role's: swarm stores it for every node that runs a
replica (infra/image/pull.py).
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from infra.config.compose import ComposeApp, ComposeService, Mount, Rollout, Source
from infra.config.database import AWS_URL_OPTIONS, DATABASE_USER, LOCAL_SERVICE, database_mounts, part_templates
from infra.config.docker_endpoint import DockerEndpoint
from infra.config.durations import docker_duration
from infra.config.image_contract import HealthCheck, image_healthcheck
from infra.config.names import content_name, swarm_object_name
from infra.config.settings import Settings, SettingsView
from infra.service.volumes import UnitVolume, VolumeStore, volume_mounts
from restdemo_agent.contract import (
    AWS_SECRETS_LABEL,
    LABEL_ZONE,
    SCALE_CPU_LABEL,
    SCALE_IN_COOLDOWN_LABEL,
    SCALE_MAX_LABEL,
    SCALE_MIN_LABEL,
    SCALE_OUT_COOLDOWN_LABEL,
    WORKER_CONSTRAINTS,
    aws_secrets_label,
    render_template,
)

CONVERGE_POLL = "7s"


def spread_over(node_label: str) -> str:
    """A placement preference as the docker provider takes it: the bare SpreadDescriptor.

    The provider copies each `prefs` string verbatim into swarm's SpreadOver.SpreadDescriptor
    (kreuzwerker/terraform-provider-docker, structures_service.go stringSetToPlacementPrefs);
    swarmkit ignores a descriptor that does not start with `node.labels.` or `engine.labels.`.
    The CLI's `spread=` prefix belongs to `docker service create --placement-pref` only.
    """
    return f"node.labels.{node_label}"


# A Compose service that gives no update_config or rollback_config: the stack's settings throughout.
STACK_ROLLOUT = Rollout()


def update_config(settings: Settings, given: Rollout = STACK_ROLLOUT) -> docker.ServiceUpdateConfigArgs:
    """Rolling update: one batch at a time, new task healthy before the old one stops, roll back on
    failure; what a Compose service's `update_config` gives instead."""
    return docker.ServiceUpdateConfigArgs(
        parallelism=_given(given.parallelism, settings.update_parallelism),
        delay=docker_duration(_given(given.delay, settings.update_delay)),
        order=given.order or "start-first",
        failure_action=given.failure_action or "rollback",
        monitor=docker_duration(_given(given.monitor, settings.update_monitor)),
        max_failure_ratio=str(_given(given.max_failure_ratio, 0)),
    )


def rollback_config(settings: Settings, given: Rollout = STACK_ROLLOUT) -> docker.ServiceRollbackConfigArgs:
    """Rolling back is urgent: no delay, but still start-first and watched."""
    return docker.ServiceRollbackConfigArgs(
        parallelism=_given(given.parallelism, settings.update_parallelism),
        delay=docker_duration(_given(given.delay, 0)),
        order=given.order or "start-first",
        failure_action=given.failure_action or "pause",
        monitor=docker_duration(_given(given.monitor, settings.update_monitor)),
        max_failure_ratio=str(_given(given.max_failure_ratio, 0)),
    )


def _given(value, default):
    return default if value is None else value


MIB = 1024 * 1024
NANO = 1_000_000_000


def resources(settings: Settings, service: ComposeService | None = None) -> docker.ServiceTaskSpecResourcesArgs:
    """Reservations place a replica only where it fits; limits keep a busy or leaking one from
    starving the node's engine (and on a manager, raft): over its memory limit the task is killed.
    A Compose service's own figures where it gives them, the stack's otherwise."""
    memory_limit = (service and service.memory_limit) or settings.service_memory_limit_mb * MIB
    memory_reservation = (service and service.memory_reservation) or settings.service_memory_reservation_mb * MIB
    cpu_limit = (service and service.cpu_limit) or settings.service_cpu_limit
    cpu_reservation = (service and service.cpu_reservation) or settings.service_cpu_reservation
    return docker.ServiceTaskSpecResourcesArgs(
        limits=docker.ServiceTaskSpecResourcesLimitsArgs(memory_bytes=memory_limit, nano_cpus=round(cpu_limit * NANO)),
        reservation=docker.ServiceTaskSpecResourcesReservationArgs(
            memory_bytes=min(memory_reservation, memory_limit), nano_cpus=round(min(cpu_reservation, cpu_limit) * NANO)
        ),
    )


# Workers an AWS stack needs before its service keeps off the managers: with a lone worker, its loss
# would leave no node to run the service until the group replaced it.
WORKERS_TO_KEEP_OFF_MANAGERS = 2


def placement(
    settings: Settings,
    prefs: list[str] | None = None,
    constraints: list[str] | None = None,
    max_replicas: int | None = None,
) -> docker.ServiceTaskSpecPlacementArgs | None:
    """Where every service's tasks go, decided here only. On AWS spread over the availability zones
    (the `availability_zone` node label a manager sets from AWS), so a zone's loss leaves replicas in
    the others, and with two workers or more on workers only, so the managers keep their CPU and
    memory to raft and the swarm's API, and only on workers a manager identified from AWS (the
    `role` node label, which no node can set on itself): an engine joined with the worker token runs
    no replica, not even in the seconds before it is drained. A Compose service's own preferences and
    constraints come after."""
    aws = settings.platform == "aws"
    prefs = [*([spread_over(LABEL_ZONE)] if aws else []), *(prefs or [])]
    off_managers = aws and settings.worker_count >= WORKERS_TO_KEEP_OFF_MANAGERS
    constraints = [
        *(WORKER_CONSTRAINTS if off_managers else []),
        *(constraints or []),
    ]
    if not (prefs or constraints or max_replicas):
        return None
    return docker.ServiceTaskSpecPlacementArgs(
        prefs=prefs or None, constraints=constraints or None, max_replicas=max_replicas or None
    )


def healthcheck(check: HealthCheck | None) -> docker.ServiceTaskSpecContainerSpecHealthcheckArgs:
    """Always stated: the command at its timings, or (None) the image's own HEALTHCHECK, an empty
    test. Left out, the provider would keep the previous check (the block is Optional+Computed: a
    service moving to the image's check would go on running the old one)."""
    if check is None:
        return docker.ServiceTaskSpecContainerSpecHealthcheckArgs(tests=[])
    return docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
        tests=check.test,
        interval=docker_duration(check.interval),
        timeout=docker_duration(check.timeout),
        retries=check.retries,
        start_period=docker_duration(check.start_period),
    )


def environment(settings: Settings) -> dict[str, str]:
    """The tasks' environment: serviceEnvironment, and VER, the version the service reports."""
    return dict(entry.split("=", 1) for entry in settings.service_environment) | {"VER": settings.version}


@dataclass(frozen=True)
class PublishedPort:
    target: int
    published: int
    protocol: str = "tcp"
    name: str | None = None


@dataclass(frozen=True)
class ServiceUnit:
    """One swarm service as the program deploys it: the stack's single service (`single_service`),
    or one of its Compose file's (`compose_service`), every choice made."""

    resource: str  # its resource name
    name: str  # its name in the swarm
    image: pulumi.Input[str]
    replicas: int
    env: dict[str, str]
    healthcheck: HealthCheck | None  # None: the image's own
    ports: list[PublishedPort]
    update: docker.ServiceUpdateConfigArgs
    rollback: docker.ServiceRollbackConfigArgs
    resources: docker.ServiceTaskSpecResourcesArgs
    placement: docker.ServiceTaskSpecPlacementArgs | None
    stop_grace_period: float
    restart: docker.ServiceTaskSpecRestartPolicyArgs = field(
        default_factory=lambda: docker.ServiceTaskSpecRestartPolicyArgs(
            condition="any", delay="5s", max_attempts=0, window="0s"
        )
    )
    entrypoint: list[str] | None = None
    args: list[str] | None = None
    # network (its Compose name; `default` the stack's own) -> its names there beside the service's
    networks: dict[str, list[str]] = field(default_factory=lambda: {DEFAULT_NETWORK: []})
    aliases: bool = False  # the service's Compose name resolves on its networks
    secrets: list[Mount] = field(default_factory=list)
    configs: list[Mount] = field(default_factory=list)
    labels: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    container_labels: dict[str, str] = field(default_factory=dict)
    short_name: str = ""
    # A prebuilt image by tag: pinned to the digest its registry gives at deploy (`pinned`).
    prebuilt: bool = False
    volumes: list[UnitVolume] = field(default_factory=list)
    user: str | None = None
    stop_signal: str = "SIGTERM"
    # Its secrets are kept in AWS: the leader's agent writes its secret references (labels[AWS_SECRETS_LABEL]),
    # which the program leaves to it (ADR 0029).
    secrets_from_aws: bool = False
    # Its replicas follow the load: `replicas` is the fewest, the labels hold the bounds, and the count
    # is the leader's agent's after the service is made (ADR 0034). On AWS only: the local stack runs no
    # agent, so there the program keeps the count (the labels stay, read by nothing).
    follows_load: bool = False


DEFAULT_NETWORK = "default"
# The service's secret references, as Pulumi's property path names them.
SECRET_REFERENCES = "taskSpec.containerSpec.secrets"
# Its replica count, likewise.
REPLICA_COUNT = "mode.replicated.replicas"


def scale_labels(fewest: int, most: int, cpu_percent: int, out_cooldown: float, in_cooldown: float) -> dict[str, str]:
    """The bounds the leader's agent scales a service within (restdemo_agent.scaling reads them)."""
    if not most:
        return {}
    return {
        SCALE_MIN_LABEL: str(fewest),
        SCALE_MAX_LABEL: str(most),
        SCALE_CPU_LABEL: str(cpu_percent),
        SCALE_OUT_COOLDOWN_LABEL: f"{out_cooldown:g}",
        SCALE_IN_COOLDOWN_LABEL: f"{in_cooldown:g}",
    }


def single_service(name: str, settings: Settings, image_ref: pulumi.Input[str]) -> ServiceUnit:
    """The stack's one service from its flat settings (restdemo's by default)."""
    return ServiceUnit(
        resource=name,
        name=settings.service_name,
        image=image_ref,
        replicas=settings.replicas,
        env=environment(settings),
        healthcheck=settings.container_healthcheck(),
        ports=[PublishedPort(settings.container_port, settings.published_port, name="http")],
        update=update_config(settings),
        rollback=rollback_config(settings),
        resources=resources(settings),
        placement=placement(settings),
        stop_grace_period=settings.stop_grace_period,
        labels=scale_labels(
            settings.replicas,
            settings.max_replicas,
            settings.scale_cpu_percent,
            settings.scale_out_cooldown,
            settings.scale_in_cooldown,
        ),
        follows_load=bool(settings.max_replicas) and settings.platform == "aws",
    )


@dataclass(frozen=True)
class KeptDatabase:
    """Where the leader's agent finds the database's credentials on AWS (RDS's master secret) and the
    address its files give."""

    secret_arn: pulumi.Input[str]
    host: pulumi.Input[str]
    port: pulumi.Input[int]


def secret_mounts(service: ComposeService, database_key: str | None) -> list[Mount]:
    """The secret files a service mounts: the database's mount as its six files (ADR 0030)."""
    return [part for m in service.secrets for part in (database_mounts(m) if m.source == database_key else [m])]


def compose_service(
    name: str,
    settings: Settings,
    app: ComposeApp,
    service: ComposeService,
    image_ref: pulumi.Input[str] | None,
    database: KeptDatabase | None = None,
) -> ServiceUnit:
    """A Compose service, as `docker stack deploy <serviceName>` would make it (docker/cli
    cli/compose/convert: `<stack>_<service>`, reachable by its short name on its networks), with the
    stack's settings where the file gives nothing (rollout timings, resources, stop grace); on AWS its
    secrets kept in AWS (the database's among them, from `database`) by the label the leader's agent
    reads instead of references."""
    from_aws = bool({m.source for m in service.secrets} & settings.aws_kept(app))
    scale = service.scale
    scaling = (
        scale_labels(
            service.replicas,
            scale.max_replicas,
            _given(scale.cpu_percent, settings.scale_cpu_percent),
            _given(scale.out_cooldown, settings.scale_out_cooldown),
            _given(scale.in_cooldown, settings.scale_in_cooldown),
        )
        if scale
        else {}
    )
    return ServiceUnit(
        resource=f"{name}-{service.name}",
        name=swarm_object_name(settings.service_name, service.name),
        short_name=service.name,
        # A built image's reference; a prebuilt one's as the file names it, pinned by the component.
        image=image_ref if image_ref is not None else service.image,
        prebuilt=image_ref is None,
        replicas=service.replicas,
        env=service.environment,
        healthcheck=compose_healthcheck(service),
        ports=[PublishedPort(p.target, p.published, p.protocol) for p in service.ports],
        update=update_config(settings, service.update),
        rollback=rollback_config(settings, service.rollback),
        resources=resources(settings, service),
        placement=placement(settings, service.preferences, service.constraints, service.max_replicas_per_node),
        stop_grace_period=_given(service.stop_grace_period, settings.stop_grace_period),
        restart=docker.ServiceTaskSpecRestartPolicyArgs(
            condition=service.restart_condition,
            delay=docker_duration(_given(service.restart_delay, 5.0)),
            max_attempts=_given(service.restart_max_attempts, 0),
            window=docker_duration(_given(service.restart_window, 0.0)),
        ),
        entrypoint=service.entrypoint,
        args=service.command,
        networks=service.networks,
        aliases=True,
        secrets=[] if from_aws else secret_mounts(service, settings.database_key(app)),
        configs=service.configs,
        labels=service.service_labels
        | scaling
        | ({AWS_SECRETS_LABEL: aws_secrets(settings, app, service, database)} if from_aws else {}),
        container_labels=service.labels,
        volumes=[
            UnitVolume(mount=mount, owner=app.volume_owner(mount.source), labels=app.volumes[mount.source])
            for mount in service.volumes
        ],
        user=service.user,
        secrets_from_aws=from_aws,
        follows_load=bool(scale) and settings.platform == "aws",
    )


def aws_secrets(
    settings: Settings, app: ComposeApp, service: ComposeService, database: KeptDatabase | None = None
) -> pulumi.Input[str]:
    """The label that tells the leader's agent which secrets the service mounts from AWS, and how: the
    Docker secrets' name before the value's hash (`<serviceName>_<key>`, as the program names its own),
    the ARN, where the file goes and whose it is; the database's files each with its template over
    RDS's master secret (known once the instance is)."""
    arns = settings.aws_secret_arns()
    database_key = settings.database_key(app)

    def entry(mount: Mount, source: str, template: str | None = None) -> dict:
        found = {"name": swarm_object_name(settings.service_name, mount.source), "source": source}
        found |= {"target": mount.target, "uid": mount.uid, "gid": mount.gid, "mode": mount.mode}
        return found | ({"template": template} if template is not None else {})

    def label(secret_arn: str = "", host: str = "", port: int = 0) -> str:
        templates = part_templates(host, port, options=AWS_URL_OPTIONS)
        mounts = [
            entry(part, secret_arn, templates[part.source.rsplit("_", 1)[1]])
            if m.source == database_key
            else entry(m, arns[app.secrets[m.source].name])
            for m in service.secrets
            for part in (database_mounts(m) if m.source == database_key else [m])
        ]
        return aws_secrets_label(round(settings.secret_refresh), mounts)

    if database is None or not any(m.source == database_key for m in service.secrets):
        return label()
    return pulumi.Output.all(secret_arn=database.secret_arn, host=database.host, port=database.port).apply(
        lambda v: label(v["secret_arn"], v["host"], v["port"])
    )


def compose_healthcheck(service: ComposeService) -> HealthCheck:
    """The Compose file's check at Docker's defaults for what it leaves out (30s, 30s, 0s, 3 retries),
    or a built image's own HEALTHCHECK as its Dockerfile writes it (the settings require one of them)."""
    check = service.healthcheck
    if check is None or not check.test:
        assert service.build, "validated: a prebuilt image's service has a healthcheck"
        found = image_healthcheck((service.build.context / service.build.dockerfile).read_text(), service.build.target)
        assert found, "validated: the image has a HEALTHCHECK"
        return found
    return HealthCheck(
        test=check.test,
        interval=_given(check.interval, 30.0),
        timeout=_given(check.timeout, 30.0),
        start_period=_given(check.start_period, 0.0),
        retries=_given(check.retries, 3),
    )


def pinned(image: str, provider: docker.Provider, parent: pulumi.Resource) -> pulumi.Output[str]:
    """A prebuilt image by the digest its registry gives at deploy (`docker.get_registry_image`, through
    the swarm's provider and its registry logins): every replica runs the same image, and a tag moved
    later changes nothing until the next `up`. An image already pinned is kept as it is."""
    if "@sha256:" in image:
        return pulumi.Output.from_input(image)
    found = docker.get_registry_image_output(
        name=image, opts=pulumi.InvokeOutputOptions(provider=provider, parent=parent)
    )
    return found.sha256_digest.apply(lambda digest: f"{image}@{digest}")


def task_spec(
    unit: ServiceUnit,
    networks: dict[str, pulumi.Input[str]],
    stored: dict[str, dict[str, StoredObject]],
    app: str = "",
    store: VolumeStore | None = None,
) -> docker.ServiceTaskSpecArgs:
    """The task's spec; its named volumes `<app>_<volume>` in `store`."""
    return docker.ServiceTaskSpecArgs(
        container_spec=docker.ServiceTaskSpecContainerSpecArgs(
            image=unit.image,
            env=unit.env,
            commands=unit.entrypoint,
            args=unit.args,
            labels=[
                docker.ServiceTaskSpecContainerSpecLabelArgs(label=k, value=v) for k, v in unit.container_labels.items()
            ]
            or None,
            healthcheck=healthcheck(unit.healthcheck),
            stop_signal=unit.stop_signal,
            stop_grace_period=docker_duration(unit.stop_grace_period),
            secrets=mounted(docker.ServiceTaskSpecContainerSpecSecretArgs, "secret", unit.secrets, stored["secrets"]),
            configs=mounted(docker.ServiceTaskSpecContainerSpecConfigArgs, "config", unit.configs, stored["configs"]),
            mounts=volume_mounts(app, unit.volumes, store or VolumeStore()),
            user=unit.user,
        ),
        restart_policy=unit.restart,
        resources=unit.resources,
        placement=unit.placement,
        networks_advanceds=[
            docker.ServiceTaskSpecNetworksAdvancedArgs(
                id=networks[network], aliases=[unit.short_name, *aliases] if unit.aliases else None
            )
            for network, aliases in unit.networks.items()
        ],
    )


def mounted(args: type, kind: str, mounts: list[Mount], stored: dict[str, StoredObject]) -> list | None:
    """A task's secrets or configs (`kind`), as the provider takes them: the object, where it is mounted."""
    return [
        args(
            **{f"{kind}_id": stored[m.source].id, f"{kind}_name": stored[m.source].name},
            file_name=m.target,
            file_uid=m.uid,
            file_gid=m.gid,
            file_mode=m.mode,
        )
        for m in mounts
    ] or None


@dataclass(frozen=True)
class StoredObject:
    """A Docker secret or config the program made: its id and its name (which carries its content's hash)."""

    id: pulumi.Input[str]
    name: pulumi.Input[str]


def content_of(stack_secrets: list[str], source: Source) -> bytes:
    """What a Compose secret or config holds: a file's bytes, or the stack's secret (`restdemo:secrets`,
    `name=value` entries) by its name."""
    if source.file:
        return source.file.read_bytes()
    values = {name: value for name, _, value in (entry.partition("=") for entry in stack_secrets)}
    return values[source.name].encode()


def stored_contents(
    stack_secrets: list[str],
    app: ComposeApp,
    kept: set[str] | frozenset[str] = frozenset(),
    database_key: str | None = None,
) -> dict[str, dict[str, bytes]]:
    """What each secret and config the services mount holds (only those: a build's are not stored; nor
    those `kept` in AWS, which the leader's agent reads); the local database's files (`database_key`:
    its secret's key in the file, whose stack secret is its password) for it and its services."""
    used = {kind: {m.source for s in app.services for m in getattr(s, kind)} for kind in ("secrets", "configs")}
    used["secrets"] -= kept
    contents = {
        kind: {
            key: content_of(stack_secrets, source)
            for key, source in getattr(app, kind).items()
            if key in used[kind] and key != database_key
        }
        for kind in ("secrets", "configs")
    }
    if database_key is not None and database_key not in kept:
        password = content_of(stack_secrets, app.secrets[database_key]).decode()
        credentials = {"username": DATABASE_USER, "password": password}
        contents["secrets"] |= {
            f"{database_key}_{part}": render_template(template, credentials).encode()
            for part, template in part_templates(LOCAL_SERVICE).items()
        }
    return contents


@dataclass(frozen=True)
class SwarmServiceSettings(SettingsView):
    """What the services' component reads of the settings: the platform and the app's name (for the
    names and the networks' options), and how long a rollout may take."""

    platform: str
    service_name: str
    converge_timeout: float


def network_name(settings: SwarmServiceSettings) -> str:
    """On AWS a new name whenever the network's definition changes (every argument is ForceNew): the
    new network is created, the service moved to it, then the old one removed. `-encrypted` was the
    encrypted, attachable one; `-internal` is encrypted and not attachable."""
    return f"{settings.service_name}-internal" if settings.platform == "aws" else settings.service_name


def network_attachable(settings: SwarmServiceSettings) -> bool:
    """Only on a laptop may any container join the service's network (`docker run --network`, to
    debug). On AWS only the service's own tasks join it: any other container reaches the replicas
    through the published port, as a client does (root on a node that runs a replica is not held by
    this: ADR 0026)."""
    return settings.platform == "local"


def network_options(settings: SwarmServiceSettings) -> dict[str, str] | None:
    """On AWS the service's overlay is encrypted (`--opt encrypted`: IPsec ESP between nodes, which
    the nodes' security group admits from each other only); a laptop's single node needs none."""
    return {"encrypted": ""} if settings.platform == "aws" else None


class SwarmService(pulumi.ComponentResource):
    """The stack's services on a swarm, their overlay networks, secrets and configs, and the docker
    provider for that swarm.

    Takes:
        name: the component's resource name, and the prefix of the provider's and networks' (`<name>-swarm`, ...).
        settings: its slice of the settings (platform and serviceName, for the names and the networks'
            options; the converge timeout).
        services: what to deploy (`ServiceUnit`s: `single_service`, or one `compose_service` per Compose service).
        endpoint: where the swarm's Docker API is, its TLS material and the pull-only registry login (`DockerEndpoint`).
        networks: the Compose file's networks (name -> internal) besides the stack's own, `default`.
        contents: the secrets' and configs' contents by kind and name (`stored_contents`); kept as secrets.
        volumes: where the services' named volumes are (`VolumeStore`: each node's disk unless given).
        needs: what each service waits for besides (the managers' permission to read the database's secret).
        opts: resource options.

    Gives:
        service_name: the first service's name in the swarm (`serviceName` for the single one).
        service_names: every service's, by its resource name.
        images: every service's image as it runs (pinned by digest), by its Compose name.
        replicas: how many replicas the first runs.
        network_name: the stack's own overlay network's name.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: SwarmServiceSettings,
        services: list[ServiceUnit],
        endpoint: DockerEndpoint,
        networks: dict[str, bool] | None = None,
        contents: dict[str, dict[str, bytes]] | None = None,
        volumes: VolumeStore | None = None,
        needs: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:service:SwarmService", name, None, opts)
        provider = self._swarm_provider(name, endpoint)
        made = {DEFAULT_NETWORK: self._overlay_network(name, settings, provider)}
        for network, internal in (networks or {}).items():
            made[network] = self._overlay_network(f"{name}-network-{network}", settings, provider, network, internal)
        stored = self._stored(name, settings, contents or {}, provider)
        deployed = [
            self._service(
                unit, settings, {k: v.id for k, v in made.items()}, stored, provider, volumes or VolumeStore(), needs
            )
            for unit in services
        ]
        self.service_name = deployed[0].name
        self.service_id = deployed[0].id
        self.service_names = {unit.resource: service.name for unit, service in zip(services, deployed, strict=True)}
        # Each service's image as it runs, by its Compose name (the single service's by its resource name).
        self.images = {
            unit.short_name or unit.resource: service.task_spec.container_spec.image
            for unit, service in zip(services, deployed, strict=True)
        }
        self.replicas = pulumi.Output.from_input(services[0].replicas)
        self.network_name = made[DEFAULT_NETWORK].name
        self.register_outputs(
            {"service_name": self.service_name, "service_id": self.service_id, "replicas": self.replicas}
        )

    def _swarm_provider(self, name: str, endpoint: DockerEndpoint) -> docker.Provider:
        return docker.Provider(
            f"{name}-swarm",
            host=endpoint.host,
            ca_material=endpoint.ca_pem,
            cert_material=endpoint.cert_pem,
            key_material=endpoint.key_pem,
            registry_auth=[*([endpoint.registry_auth] if endpoint.registry_auth else []), *endpoint.logins] or None,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _overlay_network(
        self,
        name: str,
        settings: SwarmServiceSettings,
        provider: docker.Provider,
        compose: str | None = None,
        internal: bool = False,
    ) -> docker.Network:
        return docker.Network(
            f"{name}-network" if compose is None else name,
            # A Compose network's definition is in its name (every argument is ForceNew): made anew
            # under another name, the services moved to it, the old one removed after.
            name=network_name(settings)
            if compose is None
            else swarm_object_name(settings.service_name, compose) + ("_internal" if internal else ""),
            driver="overlay",
            internal=internal or None,
            attachable=network_attachable(settings),
            options=network_options(settings),
            # Options are ForceNew and read back with what the driver adds (vxlanid_list): compared
            # with ours, every `up` would replace the network. They are set at creation only.
            opts=pulumi.ResourceOptions(parent=self, provider=provider, ignore_changes=["options"]),
        )

    def _stored(
        self,
        name: str,
        settings: SwarmServiceSettings,
        contents: dict[str, dict[str, bytes]],
        provider: docker.Provider,
    ) -> dict[str, dict[str, StoredObject]]:
        """A Docker secret or config per content, named (and keyed in the state) by its hash: a new value
        is a new resource, made before the services move to it; the old one, gone from the program, is
        deleted at the end of an `up` that moved them, and kept by one that failed (swarm rolled the
        service back to it), so the next `up` finds it still there."""
        stored: dict[str, dict[str, StoredObject]] = {"secrets": {}, "configs": {}}
        for kind, resource in (("secrets", docker.Secret), ("configs", docker.ServiceConfig)):
            for key, content in contents.get(kind, {}).items():
                physical = content_name(settings.service_name, key, content)
                data = base64.b64encode(content).decode()
                made = resource(
                    f"{name}-{kind[:-1]}-{key}-{physical.rsplit('_', 1)[1]}",
                    name=physical,
                    # A config is not secret to swarm (docker config inspect shows it), nor in the state.
                    data=pulumi.Output.secret(data) if kind == "secrets" else data,
                    opts=pulumi.ResourceOptions(parent=self, provider=provider),
                )
                stored[kind][key] = StoredObject(made.id, made.name)
        return stored

    def _service(
        self,
        unit: ServiceUnit,
        settings: SwarmServiceSettings,
        networks: dict[str, pulumi.Input[str]],
        stored: dict[str, dict[str, StoredObject]],
        provider: docker.Provider,
        volumes: VolumeStore,
        needs: list[pulumi.Resource] | None,
    ) -> docker.Service:
        if unit.prebuilt:
            unit = dataclasses.replace(unit, image=pinned(str(unit.image), provider, self))
        return docker.Service(
            unit.resource,
            name=unit.name,
            task_spec=task_spec(unit, networks, stored, settings.service_name, volumes),
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=unit.replicas)),
            update_config=unit.update,
            rollback_config=unit.rollback,
            labels=[docker.ServiceLabelArgs(label=k, value=v) for k, v in unit.labels.items()] or None,
            endpoint_spec=docker.ServiceEndpointSpecArgs(
                mode="vip",
                ports=[
                    docker.ServiceEndpointSpecPortArgs(
                        name=port.name,
                        protocol=port.protocol,
                        target_port=port.target,
                        published_port=port.published,
                        publish_mode="ingress",
                    )
                    for port in unit.ports
                ]
                or None,
            ),
            # `pulumi up` waits until every replica runs the new spec, and fails when it does not.
            # After a rollback that failure still records the new spec as deployed: the provider's
            # update returns "service rollback completed" without reading the service back
            # (kreuzwerker/terraform-provider-docker resourceDockerServiceUpdateRefreshFunc); the
            # SDK hands back the planned state with the error (terraform-plugin-sdk v2 Resource.Apply,
            # ResourceData.State, no d.Partial); the bridge returns it as a partial failure whose
            # outputs the engine keeps (pulumi-terraform-bridge Update; pulumi engine
            # OnResourceStepPost keeps the old inputs, the new outputs). The next plain `up` diffs
            # against those outputs and sees nothing to do: hence `up --refresh` (scripts/stack.sh,
            # the deploy workflow), whose read brings back the rolled-back image, so it tries again.
            converge_config=docker.ServiceConvergeConfigArgs(
                delay=CONVERGE_POLL, timeout=docker_duration(settings.converge_timeout)
            ),
            # A service whose secrets are kept in AWS has its references written by the leader's agent:
            # an `up` keeps what the read before it found (`up --refresh`), never the program's own (ADR 0029).
            # One whose replicas follow the load has its count set by that agent too (ADR 0034).
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=provider,
                ignore_changes=[
                    *([SECRET_REFERENCES] if unit.secrets_from_aws else []),
                    *([REPLICA_COUNT] if unit.follows_load else []),
                ]
                or None,
                depends_on=needs,
            ),
        )
