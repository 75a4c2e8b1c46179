"""The agent's Docker side: this node's engine, and through it (on managers) the swarm."""

from __future__ import annotations

import copy
import socket
import time

import docker
from docker.errors import APIError, NotFound

from restdemo_agent.contract import LABEL_INSTANCE_ID, LABEL_UNIDENTIFIED, SECRET_SOURCE_LABEL, SWARM_MANAGEMENT_PORT
from restdemo_agent.plan import Node, labelled_spec, quarantined_spec, unlabelled_spec
from restdemo_agent.scaling import SERVICE_ID_LABEL, Sample

# Run in the helper container: the directory made once, its owner and mode set every time, through a
# descriptor opened without following a symlink (one put in its place is refused, never followed).
MAKE_DIRECTORY = """
import os, sys
name, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
path = os.path.join("/volumes", name)
try:
    os.mkdir(path, 0o750)
except FileExistsError:
    pass
try:
    directory = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
except OSError:
    sys.exit(f"{name} is not a directory on the file system")
os.fchown(directory, uid, gid)
os.fchmod(directory, 0o750)
"""
HELPER_LABEL = "restdemo.helper"
HELPER_TIMEOUT_SECONDS = 60


class Engine:
    def __init__(self, client: docker.DockerClient):
        self.client = client

    def swarm(self) -> dict:
        return self.client.info().get("Swarm", {})

    def swarm_state_or_none(self) -> str | None:
        """`docker info`'s LocalNodeState (inactive, pending, active, error, locked); None when the
        engine does not answer."""
        try:
            return self.swarm().get("LocalNodeState", "")
        except Exception:  # docker-py raises its own and requests' errors: any of them is "no answer"
            return None

    def member(self) -> bool:
        return self.swarm().get("LocalNodeState") in ("active", "pending")

    def node_id(self) -> str:
        return self.swarm().get("NodeID", "")

    def is_manager(self) -> bool:
        return bool(self.swarm().get("ControlAvailable"))

    def init(self, address: str) -> dict[str, str]:
        """`docker swarm init`; the join tokens, by role."""
        self.client.swarm.init(advertise_addr=address, listen_addr=f"{address}:{SWARM_MANAGEMENT_PORT}")
        return self.join_tokens()

    def force_new_cluster(self, address: str) -> None:
        """`docker swarm init --force-new-cluster` on this manager: a one-manager raft from its own
        log, with the same cluster, services, networks, secrets and nodes."""
        # The low-level call: docker-py's swarm.init() reads the swarm back at once, before the
        # new cluster has elected this manager ("The swarm does not have a leader").
        self.client.api.init_swarm(
            advertise_addr=address, listen_addr=f"{address}:{SWARM_MANAGEMENT_PORT}", force_new_cluster=True
        )

    def make_directory(self, image: str, parent_options: dict[str, str], name: str, uid: int, gid: int) -> None:
        """`name` made under the volume whose local-driver options are `parent_options` (the NFS export's
        root), owned by uid:gid, mode 0750: by a throwaway container of `image` (which has python3), the
        mount done by this engine as for any task. No shell: the values are its arguments. Bounded: a
        file system that hangs (NFS mounts are `hard`) costs HELPER_TIMEOUT_SECONDS, and the container
        and its volume are removed whatever happened."""
        volume = self.client.volumes.create(driver="local", driver_opts=parent_options, labels={HELPER_LABEL: "1"})
        container = None
        try:
            if not self._has_image(image):  # the agent's own image is on its node; pulled if not
                self.client.images.pull(image)
            container = self.client.containers.create(
                image,
                entrypoint=["python3", "-c", MAKE_DIRECTORY, name, str(uid), str(gid)],
                volumes={volume.name: {"bind": "/volumes", "mode": "rw"}},
                network_mode="none",
                user="0:0",
                cap_drop=["ALL"],
                cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER"],
                read_only=True,
                labels={HELPER_LABEL: "1"},
            )
            container.start()
            try:
                status = container.wait(timeout=HELPER_TIMEOUT_SECONDS)["StatusCode"]
            except Exception:  # requests' ReadTimeout: the file system does not answer
                container.kill()
                raise TimeoutError(f"the file system did not answer in {HELPER_TIMEOUT_SECONDS} s") from None
            if status != 0:
                output = container.logs(stdout=False, stderr=True).decode(errors="replace").strip().splitlines()
                raise RuntimeError((output or [f"exit status {status}"])[-1][:300])
        finally:
            if container is not None:
                container.remove(force=True)
            volume.remove(force=True)

    def _has_image(self, image: str) -> bool:
        try:
            self.client.images.get(image)
            return True
        except NotFound:
            return False

    def remove_helpers(self) -> None:
        """Helpers an agent left (killed mid-way): their containers, then their volumes."""
        for container in self.client.containers.list(all=True, filters={"label": HELPER_LABEL}):
            container.remove(force=True)
        for volume in self.client.volumes.list(filters={"label": HELPER_LABEL}):
            volume.remove(force=True)

    def leader(self) -> Node | None:
        """The swarm's leader as this manager sees it; None while it has none (listing nodes needs one)."""
        try:
            return next((n for n in self.nodes() if n.leader), None)
        except APIError:
            return None

    def join_tokens(self) -> dict[str, str]:
        self.client.swarm.reload()
        tokens = self.client.swarm.attrs["JoinTokens"]
        return {"worker": tokens["Worker"], "manager": tokens["Manager"]}

    def join(self, manager_address: str, token: str, address: str) -> None:
        """`docker swarm join`. dockerd gives up waiting after 20 s but keeps trying in the background
        (state `pending`); such a node is left, so the next attempt starts afresh."""
        try:
            self.client.swarm.join(
                remote_addrs=[f"{manager_address}:{SWARM_MANAGEMENT_PORT}"],
                join_token=token,
                advertise_addr=address,
                listen_addr=f"{address}:{SWARM_MANAGEMENT_PORT}",
            )
        except APIError:
            if self.swarm().get("LocalNodeState") == "active":
                return  # it got through after all
            if self.swarm().get("LocalNodeState") == "pending":
                self.leave(force=True)
            raise

    def leave(self, force: bool = False) -> None:
        self.client.swarm.leave(force=force)

    def manager_answers(self, address: str, timeout: float = 3.0) -> bool:
        """Does a swarm manager listen at `address` (the swarm port, 2377)?"""
        try:
            with socket.create_connection((address, SWARM_MANAGEMENT_PORT), timeout=timeout):
                return True
        except OSError:
            return False

    def swarm_error(self) -> str:
        """What dockerd says is wrong with the swarm (on a manager: no leader, no quorum)."""
        return self.swarm().get("Error", "")

    def remote_managers(self) -> list[dict]:
        return self.swarm().get("RemoteManagers") or []

    def send_registry_auth(self, service: dict, header: str) -> None:
        """Update a service with its own spec and a new X-Registry-Auth: swarm stores the credentials
        for its nodes' pulls, the tasks keep running (docker-py cannot pass the header on update)."""
        api = self.client.api
        api._post_json(
            api._url("/services/{0}/update", service["ID"]),
            data=service["Spec"],
            params={"version": service["Version"]["Index"]},
            headers={"X-Registry-Auth": header},
        ).raise_for_status()

    def store_secret(self, name: str, data: bytes, source: str) -> str:
        """The id of the Docker secret `name` holding `data` (named by its hash): made, labelled with
        where it came from, unless the agent made it already (another leader). One of that name that is
        not the agent's is never taken for it."""
        api = self.client.api
        try:
            return api.create_secret(name, data, labels={SECRET_SOURCE_LABEL: source})["ID"]
        except APIError as exc:
            found = [
                s
                for s in api.secrets(filters={"name": name})
                if s["Spec"]["Name"] == name and SECRET_SOURCE_LABEL in (s["Spec"].get("Labels") or {})
            ]
            if exc.status_code != 409 or not found:
                raise
            return found[0]["ID"]

    def stored_secrets(self) -> list[dict]:
        """The Docker secrets the agent made of values kept in AWS."""
        return self.client.api.secrets(filters={"label": SECRET_SOURCE_LABEL})

    def remove_secret(self, secret_id: str) -> bool:
        """False while a service's spec still names it, or it is gone already."""
        try:
            self.client.api.remove_secret(secret_id)
            return True
        except APIError:
            return False

    def set_secret_references(self, service: dict, references: list[dict]) -> None:
        """Update a service with its own spec but these secret references: a rolling update, as its
        update config says; its registry credentials kept (the daemon keeps them when none are sent)."""
        spec = copy.deepcopy(service["Spec"])
        spec["TaskTemplate"]["ContainerSpec"]["Secrets"] = references
        self._update(service, spec)

    def scale(self, service: dict, replicas: int) -> None:
        """`docker service scale`: its own spec with another count (no task restarts), at the version
        read, so an `up` or another leader's change in between makes swarm refuse it."""
        spec = copy.deepcopy(service["Spec"])
        spec["Mode"]["Replicated"]["Replicas"] = replicas
        self._update(service, spec)

    def _update(self, service: dict, spec: dict) -> None:
        api = self.client.api
        # The engine's own words on failure ("secret not found", "update out of sequence").
        api._raise_for_status(
            api._post_json(
                api._url("/services/{0}/update", service["ID"]),
                data=spec,
                params={"version": service["Version"]["Index"]},
            )
        )

    def task_cpu(self) -> dict[str, Sample]:
        """This node's running swarm task containers' CPU time so far (one-shot stats: read at once),
        by container; one gone between the list and its stats is left out."""
        found: dict[str, Sample] = {}
        api = self.client.api
        for container in api.containers(filters={"label": SERVICE_ID_LABEL, "status": "running"}):
            try:
                stats = api.stats(container["Id"], stream=False, one_shot=True)
            except NotFound:
                continue
            found[container["Id"]] = Sample(
                container["Labels"][SERVICE_ID_LABEL], int(stats["cpu_stats"]["cpu_usage"]["total_usage"]), time.time()
            )
        return found

    def service_version(self, service_id: str) -> int:
        return self.client.api.inspect_service(service_id)["Version"]["Index"]

    def services(self) -> list[dict]:
        return self.client.api.services()

    def prune(self) -> dict[str, int]:
        """Stopped containers and every image no container uses; what went."""
        containers = self.client.containers.prune()
        images = self.client.images.prune(filters={"dangling": False})
        return {
            "containers": _count(containers, "ContainersDeleted"),
            "images": _count(images, "ImagesDeleted"),
            "bytes": images.get("SpaceReclaimed", 0),
        }

    def nodes(self) -> list[Node]:
        return [to_node(n.attrs) for n in self.client.nodes.list()]

    def update_node(self, node_id: str, *, attempts: int = 5, **changes) -> None:
        """Change a node's spec (Availability, Role, Labels added), re-reading it on a version conflict;
        raises when every attempt conflicted, so no caller carries on as if it had changed."""
        added_labels = changes.pop("Labels", {})
        self.edit_node(
            node_id,
            lambda spec: {**spec, **changes, "Labels": {**(spec.get("Labels") or {}), **added_labels}},
            attempts=attempts,
        )

    def edit_node(self, node_id: str, edit, *, attempts: int = 5) -> bool:
        """Update a node's spec to `edit(spec)`, decided on the spec as read each attempt; `edit` returns
        None to leave it. Returns whether it changed; raises when every attempt conflicted."""
        for _ in range(attempts):
            node = self.client.nodes.get(node_id)
            changed = edit(node.attrs["Spec"])
            if changed is None:
                return False
            try:
                node.update(changed)
                return True
            except APIError as exc:
                if "update out of sequence" not in str(exc):
                    raise
        raise RuntimeError(f"node {node_id} changed under every one of {attempts} updates; not updated")

    def label_node(self, node_id: str, labels: dict[str, str]) -> None:
        """Set a node's identity labels (plan.identities), releasing it if it was quarantined."""
        self.edit_node(node_id, lambda spec: labelled_spec(spec, labels))

    def quarantine(self, node_id: str) -> bool:
        """Drain a worker no manager could identify, and say why (plan.to_quarantine); not one that
        another manager has identified meanwhile. Returns whether it drained it."""
        return self.edit_node(node_id, quarantined_spec)

    def release(self, node_id: str) -> None:
        """A labelled node still quarantined (two managers crossed): active again, its label gone."""
        self.edit_node(node_id, lambda spec: labelled_spec(spec, {}))

    def unlabel(self, node_id: str) -> None:
        """Strip an identity AWS does not confirm, and quarantine the node until it is identified again."""
        self.edit_node(node_id, unlabelled_spec)

    def demote_and_remove(self, node: Node) -> None:
        """A dead manager out of the swarm: demoted first, as swarm requires of a raft member; one no
        longer in the raft (after --force-new-cluster) cannot be demoted and is removed as it is."""
        try:
            self.update_node(node.id, Role="worker")
        except APIError as exc:
            if "raft memberlist" not in str(exc):
                raise
        self.remove_node(node.id)

    def remove_node(self, node_id: str) -> None:
        """Remove a node from the swarm; one already gone (another manager removed it) is no error."""
        try:
            self.client.api.remove_node(node_id, force=True)
        except NotFound:
            pass

    def tasks_on(self, node_id: str) -> list[dict]:
        return self.client.api.tasks(filters={"node": node_id, "desired-state": "running"})

    def replicas(self) -> dict[str, int]:
        """Replicated services and the replicas each wants."""
        wanted = {}
        for service in self.client.services.list():
            mode = service.attrs["Spec"].get("Mode", {})
            if "Replicated" in mode:
                wanted[service.id] = mode["Replicated"].get("Replicas", 0)
        return wanted

    def node_descriptions(self) -> list[dict]:
        """Every node as the API gives it (its resources, spec and labels)."""
        return [n.attrs for n in self.client.nodes.list()]

    def tasks(self) -> list[dict]:
        """Every task meant to run, placed or not."""
        return self.client.api.tasks(filters={"desired-state": "running"})

    def running(self) -> dict[str, int]:
        """Tasks running, by service id."""
        counts: dict[str, int] = {}
        for task in self.client.api.tasks(filters={"desired-state": "running"}):
            if task["Status"]["State"] == "running":
                counts[task["ServiceID"]] = counts.get(task["ServiceID"], 0) + 1
        return counts

    def running_elsewhere(self, node_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.client.api.tasks(filters={"desired-state": "running"}):
            if task.get("NodeID") != node_id and task["Status"]["State"] == "running":
                counts[task["ServiceID"]] = counts.get(task["ServiceID"], 0) + 1
        return counts


def to_node(attrs: dict) -> Node:
    manager = attrs.get("ManagerStatus") or {}
    return Node(
        id=attrs["ID"],
        role=attrs["Spec"]["Role"],
        state=attrs["Status"]["State"],
        availability=attrs["Spec"]["Availability"],
        # The node label only: an engine label is whatever root on that node wrote.
        instance_id=(attrs["Spec"].get("Labels") or {}).get(LABEL_INSTANCE_ID),
        leader=bool(manager.get("Leader")),
        # A manager with no status is not in the raft (the old managers after --force-new-cluster).
        reachable=manager.get("Reachability", "reachable" if attrs["Spec"]["Role"] == "worker" else "") == "reachable",
        address=(attrs.get("Status") or {}).get("Addr", ""),
        quarantined=LABEL_UNIDENTIFIED in (attrs["Spec"].get("Labels") or {}),
    )


def _count(answer: dict, key: str) -> int:
    return len(answer.get(key) or [])
