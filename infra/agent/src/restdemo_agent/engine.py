"""The agent's Docker side: this node's engine, and through it (on managers) the swarm."""

from __future__ import annotations

import docker
from docker.errors import APIError

from restdemo_agent.contract import NODE_LABELS
from restdemo_agent.plan import Node


class Engine:
    def __init__(self, client: docker.DockerClient):
        self.client = client

    def swarm(self) -> dict:
        return self.client.info().get("Swarm", {})

    def member(self) -> bool:
        return self.swarm().get("LocalNodeState") in ("active", "pending")

    def node_id(self) -> str:
        return self.swarm().get("NodeID", "")

    def is_manager(self) -> bool:
        return bool(self.swarm().get("ControlAvailable"))

    def init(self, address: str) -> dict[str, str]:
        """`docker swarm init`; the join tokens, by role."""
        self.client.swarm.init(advertise_addr=address, listen_addr=f"{address}:2377")
        return self.join_tokens()

    def join_tokens(self) -> dict[str, str]:
        self.client.swarm.reload()
        tokens = self.client.swarm.attrs["JoinTokens"]
        return {"worker": tokens["Worker"], "manager": tokens["Manager"]}

    def join(self, manager_address: str, token: str, address: str) -> None:
        self.client.swarm.join(
            remote_addrs=[f"{manager_address}:2377"],
            join_token=token,
            advertise_addr=address,
            listen_addr=f"{address}:2377",
        )

    def leave(self) -> None:
        self.client.swarm.leave(force=False)

    def nodes(self) -> list[Node]:
        return [to_node(n.attrs) for n in self.client.nodes.list()]

    def update_node(self, node_id: str, **changes) -> None:
        """Change a node's spec (Availability, Role, Labels), retrying on a stale version."""
        for _ in range(5):
            node = self.client.nodes.get(node_id)
            spec = node.attrs["Spec"]
            labels = {**spec.get("Labels", {}), **changes.pop("Labels", {})}
            try:
                node.update({**spec, **changes, "Labels": labels})
                return
            except APIError as exc:
                if "update out of sequence" not in str(exc):
                    raise

    def copy_engine_labels(self) -> list[str]:
        """Nodes label their engine at boot (availability zone, instance id, role); managers copy
        those into node labels, which placement preferences spread over. Returns the nodes labelled."""
        labelled = []
        for node in self.client.nodes.list():
            engine = node.attrs.get("Description", {}).get("Engine", {}).get("Labels", {}) or {}
            wanted = {k: engine[k] for k in NODE_LABELS if k in engine}
            if wanted and any(node.attrs["Spec"].get("Labels", {}).get(k) != v for k, v in wanted.items()):
                self.update_node(node.id, Labels=wanted)
                labelled.append(node.id)
        return labelled

    def remove_node(self, node_id: str) -> None:
        self.client.api.remove_node(node_id, force=True)

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
        instance_id=(attrs["Spec"].get("Labels") or {}).get("instance_id")
        or ((attrs.get("Description", {}).get("Engine", {}).get("Labels")) or {}).get("instance_id"),
        leader=bool(manager.get("Leader")),
        reachable=manager.get("Reachability", "reachable") == "reachable",
    )
