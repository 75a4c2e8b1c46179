"""The e2e harness: a real swarm, a real local registry, HAProxy in front, and the local
stack's image and service as the program defines them (captured under Pulumi mocks).

Used by the e2e tier (tests/e2e) and by the rollout benchmark (scripts/bench.py).
"""

from __future__ import annotations

import base64
import os
import string
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors
import docker.types
import requests

from tests.e2e.engine_spec import create_service_spec, without_ingress
from tests.support.docker_engine import base_image_args, build_image
from tests.support.net import free_port, wait_until
from tests.support.pulumi_program import ProgramRun, run_program, stack_config

HERE = Path(__file__).parent
LOCAL_HAPROXY = "restdemo-base/haproxy:bookworm"
# The id the mocks give the program's overlay network, which the service's spec refers to.
NETWORK_ID = "restdemo-network-id"


@dataclass(frozen=True)
class Backend:
    """What the load balancer needs of the service: its name (tasks.<name> on the overlay, which has
    the same name), the port its containers listen on, and the path that answers 200 when ready."""

    service: str = "restdemo"
    port: int = 8000
    path: str = "/health"

    @classmethod
    def of(cls, run: ProgramRun) -> Backend:
        """As the captured program says: its service's name, target port and healthCheckPath output."""
        inputs = run.one("docker:index/service:Service").inputs
        (port,) = inputs["endpointSpec"]["ports"]
        return cls(inputs["name"], port["targetPort"], run.outputs["healthCheckPath"])

    def haproxy_config(self) -> bytes:
        template = string.Template((HERE / "haproxy.cfg").read_text())
        return template.substitute(service=self.service, port=self.port, path=self.path).encode()


@contextmanager
def swarm_mode(client):
    """This engine in swarm mode; left again afterwards if we put it there."""
    initialised = client.info()["Swarm"]["LocalNodeState"] != "active"
    if initialised:
        client.swarm.init(advertise_addr="127.0.0.1")
    try:
        yield client
    finally:
        if initialised:
            client.swarm.leave(force=True)


@contextmanager
def local_registry(binary: str, root: Path, bind: str = "127.0.0.1"):
    """Debian's docker-registry on 127.0.0.1 (an insecure registry by default on loopback)."""
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n"
        f"http:\n  addr: {bind}:{port}\n"
    )
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"http://{address}/v2/", timeout=1).status_code == 200, 15, what="registry up")
        yield address
    finally:
        process.terminate()
        process.wait(10)


def capture(registry: str, client, **settings: str) -> ProgramRun:
    """The local stack's program under mocks, pointed at the harness's registry and base images."""
    config = {**stack_config("local"), "restdemo:registryAddress": registry}
    bases = base_image_args(client)
    if "BUILD_BASE" in bases:
        config["restdemo:buildBase"] = bases["BUILD_BASE"]
    if "RUNTIME_BASE" in bases:
        config["restdemo:runtimeBase"] = bases["RUNTIME_BASE"]
    config.update({f"restdemo:{k}": v for k, v in settings.items()})
    return run_program("local", config)


def build_and_push(client, image_inputs: dict) -> str:
    """Build and push as the captured docker_build.Image says (context, Dockerfile, target, build
    arguments, its one tag); the reference pinned to the pushed digest, as the provider's `ref`."""
    (name,) = image_inputs["tags"]
    build_image(
        Path(os.getcwd()) / image_inputs["context"]["location"],
        name,
        target=image_inputs.get("target"),
        build_args=image_inputs["buildArgs"],
        dockerfile=Path(os.getcwd()) / image_inputs["dockerfile"]["location"],
    )
    return push(client, name)


def pinned_reference(image_name: str, repo_digest: str) -> str:
    """repo:tag + repo@sha256:x -> repo:tag@sha256:x, as docker-build's `ref` output."""
    return f"{image_name}@{repo_digest.rpartition('@')[2]}"


def push(client, name: str) -> str:
    repository, _, tag = name.rpartition(":")
    for line in client.images.push(repository, tag=tag, stream=True, decode=True):
        if "error" in line:
            raise RuntimeError(f"push of {name} failed: {line['error']}")
    digests = client.images.get(name).attrs["RepoDigests"]
    repo_digest = next(d for d in digests if d.startswith(repository + "@"))
    return pinned_reference(name, repo_digest)


def repository_of(reference: str) -> str:
    return reference.partition("@")[0].rpartition(":")[0]


@dataclass
class Deployment:
    client: object
    registry: str
    network_ids: dict[str, str]
    backend: Backend = field(default_factory=Backend)
    service_id: str = ""
    lb_url: str = ""
    cleanup: list = field(default_factory=list)

    @property
    def service(self):
        return self.client.services.get(self.service_id)

    def apply(self, run: ProgramRun, image_ref: str, constraints: list[str] | None = None) -> None:
        """Create or update the service from the captured program's docker.Service (held to nodes that
        meet `constraints`, as an AWS stack's is to its workers)."""
        inputs = run.one("docker:index/service:Service").inputs
        captured_image = inputs["taskSpec"]["containerSpec"]["image"]
        # The program runs image.ref (repository:tag@digest); the mock's digest is not a real one,
        # so the image pushed for real takes its place, from the same repository.
        assert repository_of(captured_image) == repository_of(image_ref)
        inputs = {
            **inputs,
            "taskSpec": {
                **inputs["taskSpec"],
                "containerSpec": {**inputs["taskSpec"]["containerSpec"], "image": image_ref},
                **({"placement": {"constraints": constraints}} if constraints else {}),
            },
        }
        if NETWORK_ID not in self.network_ids:  # the program's docker.Network, created first
            network = self.client.networks.create(self.backend.service, driver="overlay", attachable=True)
            self.network_ids[NETWORK_ID] = network.id
        spec = without_ingress(create_service_spec(inputs, self.network_ids))
        api = self.client.api
        if not self.service_id:
            self.service_id = api.create_service(**spec)["ID"]
        else:
            service = api.inspect_service(self.service_id)
            api.update_service(self.service_id, version=service["Version"]["Index"], **spec)

    def refresh(self) -> list[str]:
        """What `pulumi up --refresh` does first, as the docker provider's Read functions do it
        (kreuzwerker/terraform-provider-docker resourceDockerServiceRead, resourceDockerNetworkRead):
        a service or network the engine no longer has leaves the state, so `apply` creates it
        again. Returns what left."""
        gone = []
        if self.service_id and not self.client.api.services(filters={"id": self.service_id}):
            self.service_id = ""
            gone.append("service")
        for key, network_id in list(self.network_ids.items()):
            if not self.client.api.networks(ids=[network_id]):
                del self.network_ids[key]
                gone.append("network")
        return gone

    def running_tasks(self) -> list[dict]:
        return [t for t in self.service.tasks({"desired-state": "running"}) if t["Status"]["State"] == "running"]

    def converged_on(self, image_ref: str) -> bool:
        replicas = self.service.attrs["Spec"]["Mode"]["Replicated"]["Replicas"]
        tasks = self.running_tasks()
        state = (self.service.attrs.get("UpdateStatus") or {}).get("State", "completed")
        return (
            len(tasks) == replicas
            and all(t["Spec"]["ContainerSpec"]["Image"] == image_ref for t in tasks)
            and state in ("completed", "rollback_completed")
        )

    def servers_up(self) -> int:
        """Replicas the load balancer has found and checked healthy."""
        csv = requests.get(f"{self.lb_url}/haproxy-stats;csv", timeout=2).text.splitlines()
        header = csv[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in csv[1:]]
        return sum(
            1
            for r in rows
            if r["pxname"] == self.backend.service and r["svname"].startswith("task") and r["status"] == "UP"
        )

    def wait_rolled_back(self, timeout: float = 300) -> None:
        """Until swarm has rolled a failed update back."""
        wait_until(
            lambda: (self.service.attrs.get("UpdateStatus") or {}).get("State") == "rollback_completed",
            timeout,
            interval=0.5,
            what="swarm rolled back",
        )

    def wait_converged(self, image_ref: str, timeout: float = 300) -> float:
        started = time.monotonic()
        wait_until(
            lambda: self.converged_on(image_ref), timeout, interval=0.5, what=f"service converged on {image_ref}"
        )
        return time.monotonic() - started


def start_load_balancer(
    client,
    network_id: str,
    *,
    backend: Backend | None = None,
    image: str | None = None,
    host: str = "127.0.0.1",
    constraints: list[str] | None = None,
) -> tuple[str, object, object]:
    """HAProxy as a swarm service on the overlay network, published in host mode on `host`."""
    urls, service, config = load_balancer(
        client,
        network_id,
        (backend or Backend()).haproxy_config(),
        [80],
        image=image,
        host=host,
        constraints=constraints,
    )
    return urls[80], service, config


def routes_config(routes: dict[int, Backend]) -> bytes:
    """haproxy.cfg for several services: a frontend on each port in `routes`, to that service's replicas."""
    template = (HERE / "haproxy.cfg").read_text()
    head = template.partition("frontend http")[0]
    backend = "backend $service" + template.partition("\nbackend $service")[2]
    sections = [head]
    for listen, route in routes.items():
        sections.append(
            f"frontend {route.service}\n    bind :{listen}\n    stats enable\n    stats uri /haproxy-stats\n"
            f"    default_backend {route.service}\n\n"
        )
        sections.append(string.Template(backend).substitute(service=route.service, port=route.port, path=route.path))
    return "".join(sections).encode()


def load_balancer(
    client,
    network_id: str,
    data: bytes,
    listens: list[int],
    *,
    image: str | None = None,
    host: str = "127.0.0.1",
    constraints: list[str] | None = None,
) -> tuple[dict[int, str], object, object]:
    """HAProxy with `data` as its config, each port it listens on published in host mode on `host`."""
    image = (
        image
        or os.environ.get("RESTDEMO_HAPROXY_IMAGE")
        or (LOCAL_HAPROXY if client.images.list(name=LOCAL_HAPROXY) else "haproxy:2.8")
    )
    config = client.configs.create(name=f"restdemo-lb-{uuid.uuid4().hex[:8]}", data=data)
    published = {listen: free_port() for listen in listens}
    service = client.services.create(
        image,
        name=f"restdemo-lb-{uuid.uuid4().hex[:8]}" if listens != [80] else "restdemo-lb",
        networks=[network_id],
        constraints=constraints,
        endpoint_spec=docker.types.EndpointSpec(
            mode="dnsrr", ports={port: (listen, "tcp", "host") for listen, port in published.items()}
        ),
        configs=[docker.types.ConfigReference(config.id, config.name, filename="/usr/local/etc/haproxy/haproxy.cfg")],
    )
    return {listen: f"http://{host}:{port}" for listen, port in published.items()}, service, config


def removed(resource) -> bool:
    """Remove a network or config; False while tasks that are shutting down still use it."""
    try:
        resource.remove()
        return True
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError:  # still in use by tasks that are shutting down
        return False


@contextmanager
def deployed(client, registry: str, backend: Backend | None = None, **load_balancer):
    """The overlay network, the load balancer, and (once applied) the service; removed afterwards."""
    backend = backend or Backend()
    network = client.networks.create(backend.service, driver="overlay", attachable=True)
    deployment = Deployment(client, registry, {NETWORK_ID: network.id}, backend)
    lb_url, lb_service, lb_config = start_load_balancer(client, network.id, backend=backend, **load_balancer)
    deployment.lb_url = lb_url
    try:
        yield deployment
    finally:
        for service in (deployment.service if deployment.service_id else None, lb_service):
            if service is not None:
                service.remove()
        wait_until(lambda: removed(network), 90, interval=1, what="the overlay network removed")
        lb_config.remove()


@dataclass
class LoadResult:
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    hostnames: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return self.ok + len(self.failures)


@contextmanager
def steady_load(url: str, rate: float = 20.0, path: str = "/health"):
    """GET `path` at `rate` per second over fresh connections until the block ends; the answers'
    JSON names the version and hostname that answered."""
    result = LoadResult()
    stop = threading.Event()

    def run():
        interval = 1.0 / rate
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                response = requests.get(f"{url}{path}", timeout=5, headers={"Connection": "close"})
                if response.status_code == 200:
                    body = response.json()
                    result.ok += 1
                    result.versions[body["version"]] = result.versions.get(body["version"], 0) + 1
                    result.hostnames.add(body["hostname"])
                else:
                    result.failures.append(f"HTTP {response.status_code}")
            except requests.RequestException as exc:
                result.failures.append(repr(exc))
            next_at += interval
            stop.wait(max(0.0, next_at - time.monotonic()))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join(10)


SERVICE = "docker:index/service:Service"
SECRET = "docker:index/secret:Secret"
NETWORK = "docker:index/network:Network"


@dataclass
class AppDeployment:
    """A Compose app as the program defines it (its docker.Service, docker.Network and docker.Secret
    resources, captured under mocks) applied to a real swarm in `pulumi up`'s order: networks and new
    secrets, then the services, each waited on as the provider's converge does, then the secrets the
    program no longer has removed, last."""

    client: object
    ids: dict[str, str] = field(default_factory=dict)  # the program's resource ids -> the engine's
    services: dict[str, str] = field(default_factory=dict)  # a service's name -> its id
    made: list = field(default_factory=list)
    volumes: set[str] = field(default_factory=set)  # the named volumes the services mount

    def apply(self, run: ProgramRun, images: dict[str, str], timeout: float = 300) -> None:
        for network in run.of_type(NETWORK):
            if f"{network.name}-id" not in self.ids:
                made = self.client.networks.create(network.inputs["name"], driver="overlay", attachable=True)
                self.ids[f"{network.name}-id"] = made.id
                self.made.append(made)
        for secret in run.of_type(SECRET):
            if f"{secret.name}-id" not in self.ids:
                data = base64.b64decode(secret.inputs["data"])
                self.ids[f"{secret.name}-id"] = self.client.secrets.create(name=secret.inputs["name"], data=data).id
        api = self.client.api
        for service in run.of_type(SERVICE):
            inputs = service.inputs
            container = inputs["taskSpec"]["containerSpec"]
            image = images[repository_of(container["image"])]
            inputs = {**inputs, "taskSpec": {**inputs["taskSpec"], "containerSpec": {**container, "image": image}}}
            spec = without_ingress(create_service_spec(inputs, self.ids))
            mounted = {m["Source"] for m in spec["task_template"]["ContainerSpec"].get("Mounts", [])}
            if spec["name"] in self.services:
                found = api.inspect_service(self.services[spec["name"]])
                api.update_service(found["ID"], version=found["Version"]["Index"], **spec)
            else:
                for volume in mounted - self.volumes:  # one an earlier run of the tests left
                    self._remove_volume(volume)
                self.services[spec["name"]] = api.create_service(**spec)["ID"]
            self.volumes |= mounted
        for name in self.services:
            wait_until(lambda name=name: self.converged(name), timeout, interval=0.5, what=f"{name} converged")
        kept = {f"{secret.name}-id" for secret in run.of_type(SECRET)}
        for key in [k for k in self.ids if "-secret-" in k and k not in kept]:
            self.client.secrets.get(self.ids.pop(key)).remove()

    def _remove_volume(self, name: str) -> bool:
        """Remove a named volume; False while a task that is shutting down still has it."""
        try:
            self.client.volumes.get(name).remove()
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError:
            return False

    def _secret_removed(self, secret_id: str) -> bool:
        try:
            return removed(self.client.secrets.get(secret_id))
        except docker.errors.NotFound:
            return True

    def tasks(self, name: str) -> list[dict]:
        service = self.client.services.get(self.services[name])
        return [t for t in service.tasks({"desired-state": "running"}) if t["Status"]["State"] == "running"]

    def converged(self, name: str) -> bool:
        """Every replica runs the service's current task spec, and no update is in flight."""
        service = self.client.services.get(self.services[name])
        spec = service.attrs["Spec"]
        state = (service.attrs.get("UpdateStatus") or {}).get("State", "completed")
        tasks = self.tasks(name)
        return (
            state in ("completed", "rollback_completed")
            and len(tasks) == spec["Mode"]["Replicated"]["Replicas"]
            and all(t["Spec"]["ContainerSpec"] == spec["TaskTemplate"]["ContainerSpec"] for t in tasks)
        )

    def remove(self) -> None:
        for service_id in self.services.values():
            self.client.services.get(service_id).remove()
        for key, object_id in self.ids.items():
            if "-secret-" in key:
                wait_until(lambda i=object_id: self._secret_removed(i), 90, interval=1, what="the secret removed")
        for network in self.made:
            wait_until(lambda n=network: removed(n), 90, interval=1, what="the overlay network removed")
        for volume in self.volumes:
            wait_until(lambda v=volume: self._remove_volume(v), 90, interval=1, what=f"the volume {volume} removed")
