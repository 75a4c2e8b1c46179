"""The program: read the stack's settings once, compose the components, export the outputs."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_docker as docker
from pulumi.runtime.config import CONFIG, is_config_secret

from infra.admin.endpoint import AdminEndpoint, AdminSettings
from infra.admin.tunnel import tunnel_host, wait_for_tunnel
from infra.config.compose import ComposeApp, route_priority
from infra.config.docker_endpoint import DockerEndpoint, registry_login_for, registry_of
from infra.config.names import AGENT_REPOSITORY, swarm_object_name
from infra.config.settings import Settings, parse_settings
from infra.data.database import Database, DatabaseSettings
from infra.data.file_system import VolumeFileSystem, VolumeFileSystemSettings
from infra.image.build_context import context_files
from infra.image.image import AGENT_TARGET, Image, ImageSettings
from infra.image.pull import PullCredentials, PullSettings, puller_role_name
from infra.image.registry import Registry, RegistrySettings
from infra.monitoring.alarms import Watched
from infra.monitoring.monitoring import Monitoring, MonitoringSettings
from infra.network.certificate import CertificateSettings, DomainCertificate
from infra.network.load_balancer import LoadBalancer, LoadBalancerSettings, WebRoute, serves_https
from infra.network.network import Network, NetworkSettings
from infra.service.database import local_database_unit
from infra.service.service import (
    KeptDatabase,
    ServiceUnit,
    SwarmService,
    SwarmServiceSettings,
    compose_service,
    content_of,
    single_service,
    stored_contents,
)
from infra.service.volumes import VolumeStore
from infra.swarm.iam import node_role_name
from infra.swarm.secrets_key import SecretsKey, SecretsKeySettings
from infra.swarm.state import manager_shell
from infra.swarm.swarm import Swarm, SwarmSettings
from restdemo_agent.contract import ROLES, ssm_prefix

REPO = Path(__file__).resolve().parents[1]
AGENT_DIR = REPO / "agent"


def load_settings() -> Settings:
    """The only place that reads the stack's config: all of it, so a misspelt key is caught."""
    config = dict(CONFIG.get())
    return parse_settings(config, frozenset(k for k in config if is_config_secret(k)))


def revision_of(directory: Path, repo: Path = REPO, dockerfile: Path | None = None) -> str:
    """The last commit that touched the build context in `directory` (its Dockerfile and the files
    its .dockerignore lets in): the same source gives the same revision (and tag), and a README
    edit none. "unknown" in a shallow clone, where that commit may be missing (git would name the
    newest), or for a context outside the repository."""
    dockerfile = dockerfile or directory / "Dockerfile"

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        if git("rev-parse", "--is-shallow-repository") == "true":
            return "unknown"
        files = [dockerfile, *(directory / f for f in context_files(directory, dockerfile))]
        return git("log", "-1", "--format=%H", "--", *(str(f.relative_to(repo)) for f in files)) or "unknown"
    except (OSError, ValueError, subprocess.CalledProcessError):
        return "unknown"


def node_roles(settings: Settings) -> list[str]:
    """The roles that may pull the stack's images and never write one (by name: they are made after
    the registries): the swarm nodes' and the pull-only role whose login swarm stores. A node taken
    over must not write what the next deploy runs."""
    if settings.platform != "aws":
        return []
    stack = pulumi.get_stack()
    roles = [node_role_name(stack, settings.aws_region, role) for role in ROLES]
    return [f"arn:aws:iam::*:role/{name}" for name in [*roles, puller_role_name(stack, settings.aws_region)]]


@dataclass
class Deployment:
    """What the program deploys on the swarm, however described (the flat settings' single service, or
    a Compose file's): where its images are, its services, its
    routes through the load balancer, networks, stored secrets and configs, and registry logins."""

    registries: list[Registry]
    units: list[ServiceUnit]
    outputs: dict[str, pulumi.Input]
    routes: list[WebRoute] | None = None
    networks: dict[str, bool] = field(default_factory=dict)
    contents: dict[str, dict[str, bytes]] = field(default_factory=dict)
    logins: tuple[docker.ProviderRegistryAuthArgs, ...] = ()
    service_names: dict[str, str] = field(default_factory=dict)  # a Compose stack's: in the swarm, by Compose name
    volumes: list[str] = field(default_factory=list)  # a Compose stack's named volumes
    app: ComposeApp | None = None  # a Compose stack's file, and its built images by service
    built: dict[str, pulumi.Input[str]] = field(default_factory=dict)


def main() -> dict[str, pulumi.Input]:
    settings = load_settings()
    deployment = compose_deployment(settings, settings.app) if settings.app else single_deployment(settings)
    outputs = dict(deployment.outputs)
    if settings.platform == "local":
        service = swarm_service(settings, deployment, DockerEndpoint(host=settings.docker_host))
        outputs |= local_urls(settings, deployment) | {"dockerHost": settings.docker_host}
    else:
        service, cluster_outputs = aws_cluster(settings, deployment)
        outputs |= cluster_outputs
    outputs |= {
        "serviceName": service.service_name,
        "replicas": service.replicas,
        # What make up and make status ask at `url` (scripts/answers.sh).
        "healthCheckPath": settings.health_check_path,
    }
    if settings.app:
        outputs |= {"services": service.service_names, "images": service.images}
    for name, value in outputs.items():
        pulumi.export(name, value)
    return outputs


def single_deployment(settings: Settings) -> Deployment:
    """The flat settings' one service (restdemo's by default), its image in the stack's registry."""
    registry = Registry(
        "registry",
        settings=RegistrySettings.of(settings),
        repository=settings.service_name,
        pull_only=node_roles(settings),
    )
    image = Image(
        "restdemo",
        settings=ImageSettings.of(settings),
        registry=registry,
        context=settings.context_path,
        dockerfile=settings.dockerfile_path,
        target=settings.image_target,
        revision=revision_of(settings.context_path, dockerfile=settings.dockerfile_path),
    )
    return Deployment(
        registries=[registry],
        units=[single_service("restdemo", settings, image.ref)],
        outputs={"image": image.ref, "repository": registry.repository},
    )


def compose_deployment(settings: Settings, app: ComposeApp) -> Deployment:
    """The Compose file's services: each built one's image pushed (locally to the stack's registry, on
    AWS to an ECR repository of its own), each prebuilt one pinned by its registry's digest at deploy."""
    local = settings.platform == "local"
    shared = (
        Registry("registry", settings=RegistrySettings.of(settings), repository=settings.service_name)
        if local
        else None
    )
    registries, refs = [], {}
    for service in app.services:
        if not service.build:
            continue
        name = swarm_object_name(settings.service_name, service.name)
        registry = shared or Registry(
            f"registry-{service.name}",
            settings=RegistrySettings.of(settings),
            repository=name,
            pull_only=node_roles(settings),
        )
        dockerfile = service.build.context / service.build.dockerfile
        refs[service.name] = Image(
            f"image-{service.name}",
            settings=ImageSettings.of(settings),
            registry=registry,
            repository=registry.repository_named(name) if shared else None,
            context=service.build.context,
            dockerfile=dockerfile,
            target=service.build.target,
            revision=revision_of(service.build.context, dockerfile=dockerfile),
            stack_args=service.build.args,
            secrets={
                build_id: pulumi.Output.secret(content_of(settings.secrets, app.secrets[source]).decode())
                for build_id, source in service.build.secrets.items()
            },
        ).ref
        registries.append(registry)
    return Deployment(
        registries=[shared] if shared else registries,
        units=compose_units(settings, app, refs),
        outputs={},
        routes=[
            WebRoute(
                key=service.name,
                port=service.ports[0].published,
                health_check_path=service.route.health_check_path or settings.health_check_path,
                hosts=service.route.hosts,
                path=service.route.path,
                priority=route_priority(service.name, service.route),
            )
            for service in app.services
            if service.ports
        ],
        networks=app.networks,
        volumes=sorted(app.volumes),
        contents=stored_contents(settings.secrets, app, settings.aws_kept(app), settings.database_key(app)),
        logins=prebuilt_logins(settings, app),
        service_names={
            service.name: swarm_object_name(settings.service_name, service.name) for service in app.services
        },
        app=app,
        built=refs,
    )


def compose_units(
    settings: Settings, app: ComposeApp, built: dict[str, pulumi.Input[str]], database: KeptDatabase | None = None
) -> list[ServiceUnit]:
    """The Compose file's services (on AWS those that mount the database with where RDS keeps it), and on
    the local stack its database's."""
    units = [
        compose_service("restdemo", settings, app, service, built.get(service.name), database)
        for service in app.services
    ]
    database_key = settings.database_key(app)
    if database_key and settings.platform == "local":
        units.append(local_database_unit("restdemo", settings, app, database_key))
    return units


def swarm_service(
    settings: Settings,
    deployment: Deployment,
    endpoint: DockerEndpoint,
    volumes: VolumeStore | None = None,
    needs: list[pulumi.Resource] | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> SwarmService:
    return SwarmService(
        "restdemo",
        settings=SwarmServiceSettings.of(settings),
        services=deployment.units,
        endpoint=dataclasses.replace(endpoint, logins=deployment.logins),
        networks=deployment.networks,
        contents=deployment.contents,
        volumes=volumes,
        needs=needs,
        opts=opts,
    )


def local_urls(settings: Settings, deployment: Deployment) -> dict[str, pulumi.Input]:
    """`url`: publishedPort on this machine; for a Compose stack the first service by name that publishes
    a port, and `urls` each one's, on the routing mesh."""
    if deployment.routes is None:
        return {"url": f"http://localhost:{settings.published_port}"}
    urls = {route.key: f"http://localhost:{route.port}" for route in deployment.routes}
    return {"url": next(iter(urls.values()), ""), "urls": urls}


def route_urls(base: pulumi.Output[str], routes: list[WebRoute], https: bool) -> dict[str, pulumi.Input[str]]:
    """Where each route answers: the load balancer's url (the default), below it (a path), or its host."""
    scheme = "https" if https else "http"
    return {
        route.key: f"{scheme}://{route.hosts[0]}"
        if route.hosts
        else base.apply(lambda url, path=route.path or "": url + path)
        for route in routes
    }


def prebuilt_logins(settings: Settings, app: ComposeApp) -> tuple[docker.ProviderRegistryAuthArgs, ...]:
    """The provider's registry_auth entries for the registries the prebuilt images come from."""
    logins = {
        server: tuple(login.split(":", 1))
        for server, _, login in (entry.partition("=") for entry in settings.registry_logins)
    }
    servers = sorted({registry_of(s.image) for s in app.services if s.image and not s.build})
    return tuple(entry for server in servers if (entry := registry_login_for(server, logins)))


def docker_api_host(settings: Settings, admin: AdminEndpoint, swarm: Swarm) -> pulumi.Output[str]:
    """Where the docker provider reaches the managers: the admin NLB, or the Session Manager tunnel,
    waited for (in an update, once the managers exist) so the provider's first call finds it."""
    if settings.admin_access == "load-balancer":
        return admin.host
    if pulumi.runtime.is_dry_run():
        return swarm.managers.name.apply(lambda _: tunnel_host())
    # In a thread: a blocking wait inside apply would stall every other registration meanwhile.
    return swarm.managers.name.apply(lambda _: asyncio.to_thread(wait_for_tunnel))


def aws_cluster(settings: Settings, deployment: Deployment) -> tuple[SwarmService, dict[str, pulumi.Input]]:
    """The Docker-for-AWS-style swarm, and the services on it through the admin endpoint."""
    network = Network("network", settings=NetworkSettings.of(settings))
    # Your own certificate (certificateArn) when you give one; else one for your domain.
    certificate = (
        DomainCertificate(
            "domain",
            settings=CertificateSettings.of(settings),
            hosts=sorted({h for route in deployment.routes or [] for h in route.hosts}),
        )
        if settings.domain_name and not settings.certificate_arn
        else None
    )
    web = LoadBalancer(
        "web",
        settings=LoadBalancerSettings.of(settings),
        network=network,
        certificate_arn=certificate.certificate_arn if certificate else None,
        routes=deployment.routes,
    )
    secrets_key = SecretsKey("secrets", settings=SecretsKeySettings.of(settings))
    admin = AdminEndpoint(
        "admin",
        settings=AdminSettings.of(settings),
        network=network,
        ssm_prefix=ssm_prefix(pulumi.get_stack()),
        secrets_key_id=secrets_key.key_id,
    )
    agent_registry = Registry(
        "agent-registry",
        settings=RegistrySettings.of(settings),
        repository=AGENT_REPOSITORY,
        pull_only=node_roles(settings),
    )
    repository_arns = [*(registry.arn for registry in deployment.registries), agent_registry.arn]
    # One ECR per account and region: any repository's server is the nodes' (the agent's, with no build).
    registry_server = (deployment.registries or [agent_registry])[0].server
    agent = Image(
        "agent",
        settings=ImageSettings.of(settings),
        registry=agent_registry,
        context=AGENT_DIR,
        dockerfile=AGENT_DIR / "Dockerfile",
        target=AGENT_TARGET,
        revision=revision_of(AGENT_DIR),
    )
    swarm = Swarm(
        "swarm",
        settings=SwarmSettings.of(settings),
        network=network,
        web=web,
        admin=admin,
        secrets_key=secrets_key,
        registry_server=registry_server,
        repository_arns=repository_arns,
        agent_image=agent.ref,
    )
    pull = PullCredentials(
        "pull", settings=PullSettings.of(settings), repository_arns=repository_arns, server=registry_server
    )
    # The volumes on EFS, when the app has any: a task mounts one once its zone's mount target exists.
    file_system = (
        VolumeFileSystem(
            "volumes",
            settings=VolumeFileSystemSettings.of(settings),
            network=network,
            node_security_group_id=swarm.node_security_group_id,
            kms_key_arn=secrets_key.arn,
        )
        if deployment.volumes
        else None
    )
    # The database on RDS, when the app has one: the services that mount it are known once it is.
    database = (
        Database(
            "database",
            settings=DatabaseSettings.of(settings),
            network=network,
            node_security_group_id=swarm.node_security_group_id,
            kms_key_arn=secrets_key.arn,
            reader_role=swarm.managers.role_name,
        )
        if deployment.app and settings.database_key(deployment.app)
        else None
    )
    if database:
        kept = KeptDatabase(secret_arn=database.secret_arn, host=database.address, port=database.port)
        deployment = dataclasses.replace(
            deployment, units=compose_units(settings, deployment.app, deployment.built, kept)
        )
    monitoring = Monitoring(
        "monitoring",
        settings=MonitoringSettings.of(settings),
        watched=Watched(
            stack=pulumi.get_stack(),
            web_balancer=web.arn_suffix,
            web_target_group=web.target_group_arn_suffix,
            admin_balancer=admin.arn_suffix,
            admin_target_group=admin.target_group_arn_suffix,
            groups={"manager": swarm.managers.name, "worker": swarm.workers.name},
            default_route=web.default_route,
            web_routes=web.route_target_groups,
            services=deployment.service_names,
            file_system=file_system.file_system_id if file_system else None,
            database=database.identifier if database else None,
            scaling={unit.short_name: unit.name for unit in deployment.units if unit.follows_load},
        ),
    )
    docker_host = docker_api_host(settings, admin, swarm)
    service = swarm_service(
        settings,
        deployment,
        # A pull-only role's login: swarm hands it to every node that runs a replica.
        dataclasses.replace(admin.docker, host=docker_host, registry_auth=pull.registry_auth),
        VolumeStore(nfs_address=file_system.dns_name) if file_system else None,
        # The managers' group is created only once its managers are ready: the swarm exists.
        needs=[database.reader] if database else None,
        opts=pulumi.ResourceOptions(depends_on=[swarm.managers, *(file_system.mount_targets if file_system else [])]),
    )
    routes = (
        {"urls": route_urls(web.url, deployment.routes, serves_https(LoadBalancerSettings.of(settings)))}
        if deployment.routes
        else {}
    )
    return service, routes | {
        "url": web.url,
        # What your DNS points at for domainName when Route 53 does not hold its zone.
        "loadBalancerDnsName": web.dns_name,
        "adminEndpoint": admin.host,
        # Where the Docker API answers for this stack's adminAccess (`make status` uses it).
        "dockerHost": docker_host,
        # For `docker --tlsverify -H <adminEndpoint>`: the key is a secret output (--show-secrets).
        "adminCa": admin.docker.ca_pem,
        "adminClientCert": admin.docker.cert_pem,
        "adminClientKey": admin.docker.key_pem,
        "agentImage": agent.ref,
        "agentRepository": agent_registry.repository,
        "logGroup": swarm.log_group_name,
        # Where the alarms page, and the stack's dashboard in the CloudWatch console.
        "alarmTopic": monitoring.topic_arn,
        "dashboardUrl": monitoring.dashboard_url,
        "adminCertificateExpires": admin.certificate_expires,
        # When the CA that signs now expires: rotate before (docs/operations.md, Certificates).
        "adminCaExpires": admin.ca_expires,
        # Sessions through the stack's own document, which logs them to the stack's log group.
        "managerShell": pulumi.Output.all(group=swarm.managers.name, document=swarm.session_document).apply(
            lambda v: manager_shell(settings.aws_region, v["document"], v["group"])
        ),
    }
