"""SwarmService: the replicated service (restdemo, or yours: serviceName) on a swarm, exactly as docs/ARCHITECTURE.md
"SwarmService" says, through a docker provider for that swarm's engine.

Every field the daemon would otherwise default is set explicitly, in the daemon's own
spelling, so a second preview shows no changes. The registry login that goes with the service
(the provider's `registry_auth`; never `docker.Service.auth`, which would replace the service
whenever the password changes) is a pull-only role's: swarm stores it for every node that runs a
replica (infra/image/pull.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.config.durations import docker_duration
from infra.config.settings import Settings
from restdemo_agent.contract import LABEL_ROLE

CONVERGE_POLL = "7s"


def spread_over(node_label: str) -> str:
    """A placement preference as the docker provider takes it: the bare SpreadDescriptor.

    The provider copies each `prefs` string verbatim into swarm's SpreadOver.SpreadDescriptor
    (kreuzwerker/terraform-provider-docker, structures_service.go stringSetToPlacementPrefs);
    swarmkit ignores a descriptor that does not start with `node.labels.` or `engine.labels.`.
    The CLI's `spread=` prefix belongs to `docker service create --placement-pref` only.
    """
    return f"node.labels.{node_label}"


@dataclass(frozen=True)
class DockerEndpoint:
    """Where the swarm's Docker API is; TLS material for a remote (AWS) swarm."""

    host: pulumi.Input[str]
    ca_pem: pulumi.Input[str] | None = None
    cert_pem: pulumi.Input[str] | None = None
    key_pem: pulumi.Input[str] | None = None
    # The login the provider sends with the service (`--with-registry-auth`): swarm stores it for its
    # nodes' pulls. A pull-only one (`PullCredentials`); never in docker.Service.auth (see above).
    registry_auth: docker.ProviderRegistryAuthArgs | None = None


def update_config(settings: Settings) -> docker.ServiceUpdateConfigArgs:
    """Rolling update: one batch at a time, new task healthy before the old one stops, roll back on failure."""
    return docker.ServiceUpdateConfigArgs(
        parallelism=settings.update_parallelism,
        delay=docker_duration(settings.update_delay),
        order="start-first",
        failure_action="rollback",
        monitor=docker_duration(settings.update_monitor),
        max_failure_ratio="0",
    )


def rollback_config(settings: Settings) -> docker.ServiceRollbackConfigArgs:
    """Rolling back is urgent: no delay, but still start-first and watched."""
    return docker.ServiceRollbackConfigArgs(
        parallelism=settings.update_parallelism,
        delay="0s",
        order="start-first",
        failure_action="pause",
        monitor=docker_duration(settings.update_monitor),
        max_failure_ratio="0",
    )


MIB = 1024 * 1024
NANO = 1_000_000_000


def resources(settings: Settings) -> docker.ServiceTaskSpecResourcesArgs:
    """Reservations place a replica only where it fits; limits keep a busy or leaking one from
    starving the node's engine (and on a manager, raft): over its memory limit the task is killed."""
    return docker.ServiceTaskSpecResourcesArgs(
        limits=docker.ServiceTaskSpecResourcesLimitsArgs(
            memory_bytes=settings.service_memory_limit_mb * MIB, nano_cpus=round(settings.service_cpu_limit * NANO)
        ),
        reservation=docker.ServiceTaskSpecResourcesReservationArgs(
            memory_bytes=settings.service_memory_reservation_mb * MIB,
            nano_cpus=round(settings.service_cpu_reservation * NANO),
        ),
    )


# Workers an AWS stack needs before its service keeps off the managers: with a lone worker, its loss
# would leave no node to run the service until the group replaced it.
WORKERS_TO_KEEP_OFF_MANAGERS = 2


def placement(settings: Settings, prefs: list[str]) -> docker.ServiceTaskSpecPlacementArgs | None:
    """Spread as `prefs` say; on an AWS stack with two workers or more, on workers only, so the
    managers keep their CPU and memory to raft and the swarm's API, and only on workers a manager
    identified from AWS (the `role` node label, which no node can set on itself): an engine joined
    with the worker token runs no replica, not even in the seconds before it is drained."""
    off_managers = settings.platform == "aws" and settings.worker_count >= WORKERS_TO_KEEP_OFF_MANAGERS
    constraints = ["node.role==worker", f"node.labels.{LABEL_ROLE}==worker"] if off_managers else []
    if not (prefs or constraints):
        return None
    return docker.ServiceTaskSpecPlacementArgs(prefs=prefs or None, constraints=constraints or None)


def healthcheck(settings: Settings) -> docker.ServiceTaskSpecContainerSpecHealthcheckArgs:
    """Always stated: the command at the contract's timings, or the image's own HEALTHCHECK as its
    Dockerfile writes it. Left out, the provider would keep the previous check (the block is
    Optional+Computed: a service moving to the image's check would go on running the old one)."""
    check = settings.container_healthcheck()
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


def task_spec(
    settings: Settings, image_ref: pulumi.Input[str], network_id: pulumi.Input[str], placement_prefs: list[str]
) -> docker.ServiceTaskSpecArgs:
    return docker.ServiceTaskSpecArgs(
        container_spec=docker.ServiceTaskSpecContainerSpecArgs(
            image=image_ref,
            env=environment(settings),
            healthcheck=healthcheck(settings),
            stop_signal="SIGTERM",
            stop_grace_period=docker_duration(settings.stop_grace_period),
        ),
        restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
            condition="any", delay="5s", max_attempts=0, window="0s"
        ),
        resources=resources(settings),
        placement=placement(settings, placement_prefs),
        networks_advanceds=[docker.ServiceTaskSpecNetworksAdvancedArgs(id=network_id)],
    )


def network_name(settings: Settings) -> str:
    """On AWS a new name whenever the network's definition changes (every argument is ForceNew): the
    new network is created, the service moved to it, then the old one removed. `-encrypted` was the
    encrypted, attachable one; `-internal` is encrypted and not attachable."""
    return f"{settings.service_name}-internal" if settings.platform == "aws" else settings.service_name


def network_attachable(settings: Settings) -> bool:
    """Only on a laptop may any container join the service's network (`docker run --network`, to
    debug). On AWS only the service's own tasks join it: any other container reaches the replicas
    through the published port, as a client does (root on a node that runs a replica is not held by
    this: ADR 0026)."""
    return settings.platform == "local"


def network_options(settings: Settings) -> dict[str, str] | None:
    """On AWS the service's overlay is encrypted (`--opt encrypted`: IPsec ESP between nodes, which
    the nodes' security group admits from each other only); a laptop's single node needs none."""
    return {"encrypted": ""} if settings.platform == "aws" else None


class SwarmService(pulumi.ComponentResource):
    """The replicated service on a swarm, its overlay network, and the docker provider for that swarm.

    Takes:
        name: the service's resource name, and the prefix of the provider's and network's (`<name>-swarm`, ...).
        settings: the stack's settings (platform, version, replicas, the image contract: name, ports, health
            check, environment; update and converge timings).
        image_ref: the image the service runs, pinned by digest.
        endpoint: where the swarm's Docker API is, its TLS material and the pull-only registry login (`DockerEndpoint`).
        placement_prefs: spread descriptors for the tasks' placement (`spread_over`); none by default.
        opts: resource options.

    Gives:
        service_name: the service's name (`serviceName`, restdemo by default).
        service_id: the service's id.
        replicas: how many replicas it runs (`settings.replicas`).
        network_name: the overlay network's name.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: Settings,
        image_ref: pulumi.Input[str],
        endpoint: DockerEndpoint,
        placement_prefs: list[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:service:SwarmService", name, None, opts)
        provider = self._swarm_provider(name, endpoint)
        network = self._overlay_network(name, settings, provider)
        service = self._service(name, settings, image_ref, placement_prefs or [], network, provider)
        self.service_name = service.name
        self.service_id = service.id
        self.replicas = pulumi.Output.from_input(settings.replicas)
        self.network_name = network.name
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
            registry_auth=[endpoint.registry_auth] if endpoint.registry_auth else None,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _overlay_network(self, name: str, settings: Settings, provider: docker.Provider) -> docker.Network:
        return docker.Network(
            f"{name}-network",
            name=network_name(settings),
            driver="overlay",
            attachable=network_attachable(settings),
            options=network_options(settings),
            # Options are ForceNew and read back with what the driver adds (vxlanid_list): compared
            # with ours, every `up` would replace the network. They are set at creation only.
            opts=pulumi.ResourceOptions(parent=self, provider=provider, ignore_changes=["options"]),
        )

    def _service(
        self,
        name: str,
        settings: Settings,
        image_ref: pulumi.Input[str],
        placement_prefs: list[str],
        network: docker.Network,
        provider: docker.Provider,
    ) -> docker.Service:
        return docker.Service(
            name,
            name=settings.service_name,
            task_spec=task_spec(settings, image_ref, network.id, placement_prefs),
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=settings.replicas)),
            update_config=update_config(settings),
            rollback_config=rollback_config(settings),
            endpoint_spec=docker.ServiceEndpointSpecArgs(
                mode="vip",
                ports=[
                    docker.ServiceEndpointSpecPortArgs(
                        name="http",
                        protocol="tcp",
                        target_port=settings.container_port,
                        published_port=settings.published_port,
                        publish_mode="ingress",
                    )
                ],
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
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
