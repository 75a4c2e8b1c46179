"""What the docker provider sends Docker for a `docker.Service`, from the inputs the program gave it.

pulumi-docker 5 wraps kreuzwerker/terraform-provider-docker (v4.x). Its create and update paths
call `createServiceSpec` (internal/provider/resource_docker_service_structures.go), which builds
the Engine API's ServiceSpec field by field; the functions below follow it one to one, for the
fields this program sets, including its quirks: strings pass through verbatim (a placement
preference becomes the SpreadDescriptor as written), durations go through Go's ParseDuration,
and unset blocks still send an empty struct. Pulumi's names are the provider's, camelCased, with
lists pluralised (`tests` is `test`, `networksAdvanceds` is `networks_advanced`).

The e2e tier (local stack) and the agent lab (AWS stacks) both apply specs made here.
"""

from __future__ import annotations

from typing import Any

from infra.config.durations import parse_duration


def parse_go_duration(text: str | None) -> int:
    """`time.ParseDuration`, whose error the provider discards: unset or invalid is 0."""
    try:
        return int(round(parse_duration(text or "") * 1e9))
    except ValueError:
        return 0


def create_container_spec(container: dict[str, Any], object_ids: dict[str, str] | None = None) -> dict[str, Any]:
    """createContainerSpec: image, command and args, labels, env (mapTypeMapValsToStringSlice),
    healthcheck, stop signal and grace, and the secrets and configs it mounts (their ids mapped, as
    the networks' are, to the objects made on the engine under test)."""
    health = container.get("healthcheck") or {}
    spec: dict[str, Any] = {
        "Image": container["image"],
        # The provider iterates a Go map (random order); swarm compares env as a list, so sort.
        "Env": sorted(f"{k}={v}" for k, v in (container.get("env") or {}).items() if k),
        # Always a struct: an absent block sends a zero HealthConfig (the image's own check then applies).
        "Healthcheck": {
            "Test": list(health.get("tests") or []),
            "Interval": parse_go_duration(health.get("interval", "0s")),
            "Timeout": parse_go_duration(health.get("timeout", "0s")),
            "StartPeriod": parse_go_duration(health.get("startPeriod", "0s")),
            "Retries": int(health.get("retries", 0)),
        },
        "StopGracePeriod": parse_go_duration(container.get("stopGracePeriod")),
    }
    if container.get("stopSignal"):
        spec["StopSignal"] = container["stopSignal"]
    if container.get("commands"):
        spec["Command"] = list(container["commands"])
    if container.get("args"):
        spec["Args"] = list(container["args"])
    if container.get("labels"):
        spec["Labels"] = {label["label"]: label["value"] for label in container["labels"]}
    object_ids = object_ids or {}
    for kind, id_key, name_key in (("secrets", "SecretID", "SecretName"), ("configs", "ConfigID", "ConfigName")):
        wire = "secret" if kind == "secrets" else "config"
        references = [
            {
                "File": {
                    "Name": ref["fileName"],
                    "UID": ref.get("fileUid", "0"),
                    "GID": ref.get("fileGid", "0"),
                    "Mode": int(ref.get("fileMode", 0o444)),
                },
                id_key: object_ids.get(ref[f"{wire}Id"], ref[f"{wire}Id"]),
                name_key: ref[f"{wire}Name"],
            }
            for ref in container.get(kind) or []
        ]
        if references:
            spec[kind.capitalize()] = references
    if container.get("user"):
        spec["User"] = container["user"]
    if container.get("mounts"):
        spec["Mounts"] = [create_mount(mount) for mount in container["mounts"]]
    return spec


def create_mount(mount: dict[str, Any]) -> dict[str, Any]:
    """A `mounts` block as createContainerSpec builds it: Type, Target, Source, ReadOnly; VolumeOptions
    (NoCopy, Labels from the label set, DriverConfig from driver_name and driver_options) when given."""
    spec: dict[str, Any] = {
        "Type": mount["type"],
        "Target": mount["target"],
        "Source": mount.get("source", ""),
        "ReadOnly": bool(mount.get("readOnly", False)),
    }
    options = mount.get("volumeOptions")
    if options:
        volume: dict[str, Any] = {
            "NoCopy": bool(options.get("noCopy", False)),
            "Labels": {label["label"]: label["value"] for label in options.get("labels") or []},
        }
        if "driverName" in options or "driverOptions" in options:
            volume["DriverConfig"] = {
                "Name": options.get("driverName", ""),
                "Options": dict(options.get("driverOptions") or {}),
            }
        spec["VolumeOptions"] = volume
    return spec


def create_restart_policy(policy: dict[str, Any] | None) -> dict[str, Any]:
    """createRestartPolicy: an empty policy when the block is absent."""
    if not policy:
        return {}
    return {
        "Condition": policy.get("condition", ""),
        "Delay": parse_go_duration(policy.get("delay")),
        "MaxAttempts": int(policy.get("maxAttempts", 0)),
        "Window": parse_go_duration(policy.get("window")),
    }


def string_set_to_placement_prefs(prefs: list[str]) -> list[dict[str, Any]]:
    """stringSetToPlacementPrefs: each string, verbatim, as a SpreadDescriptor (no `spread=` parsing)."""
    return [{"Spread": {"SpreadDescriptor": pref}} for pref in prefs]


def create_placement(placement: dict[str, Any] | None) -> dict[str, Any]:
    placement = placement or {}
    spec = {
        "Constraints": list(placement.get("constraints") or []),
        "Preferences": string_set_to_placement_prefs(placement.get("prefs") or []),
    }
    if placement.get("maxReplicas"):
        spec["MaxReplicas"] = int(placement["maxReplicas"])
    return spec


def create_service_advanced_networks(networks: list[dict[str, Any]], network_ids: dict[str, str]) -> list[dict]:
    """createServiceAdvancedNetworks: Target is `id` (else `name`); here the program's network resource
    id is mapped to the real network's id on the engine under test."""
    attachments = []
    for network in networks:
        target = network.get("id") or network["name"]
        attachment: dict[str, Any] = {"Target": network_ids.get(target, target)}
        if network.get("aliases"):
            attachment["Aliases"] = list(network["aliases"])
        attachments.append(attachment)
    return attachments


def create_resources(resources: dict[str, Any] | None) -> dict[str, Any]:
    """createResources: `limits` to Limits and `reservation` to Reservations, each NanoCPUs and
    MemoryBytes as the integers given (generic resources, which the program sets none of, aside)."""
    resources = resources or {}

    def amounts(block: dict[str, Any] | None) -> dict[str, int]:
        block = block or {}
        named = (("NanoCPUs", "nanoCpus"), ("MemoryBytes", "memoryBytes"))
        return {engine: int(block[wire]) for engine, wire in named if block.get(wire)}

    return {"Limits": amounts(resources.get("limits")), "Reservations": amounts(resources.get("reservation"))}


def create_task_spec(task: dict[str, Any], network_ids: dict[str, str]) -> dict[str, Any]:
    return {
        "ContainerSpec": create_container_spec(task["containerSpec"], network_ids),
        "Resources": create_resources(task.get("resources")),
        "RestartPolicy": create_restart_policy(task.get("restartPolicy")),
        "Placement": create_placement(task.get("placement")),
        "Networks": create_service_advanced_networks(task.get("networksAdvanceds") or [], network_ids),
    }


def create_update_or_rollback_config(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """createUpdateOrRollbackConfig (ParseDuration for delay/monitor, ParseFloat for the ratio)."""
    if not config:
        return None
    return {
        "Parallelism": int(config.get("parallelism", 1)),
        "Delay": parse_go_duration(config.get("delay", "0s")),
        "FailureAction": config.get("failureAction", "pause"),
        "Monitor": parse_go_duration(config.get("monitor", "5s")),
        "MaxFailureRatio": float(config.get("maxFailureRatio", "0.0")),
        "Order": config.get("order", "stop-first"),
    }


def create_service_mode(mode: dict[str, Any] | None) -> dict[str, Any]:
    """createServiceMode; an absent mode is sent empty and moby makes it Replicated{1}."""
    if not mode:
        return {}
    if mode.get("global"):
        return {"Global": {}}
    return {"Replicated": {"Replicas": int((mode.get("replicated") or {}).get("replicas", 1))}}


def create_service_endpoint_spec(endpoint: dict[str, Any] | None) -> dict[str, Any]:
    """createServiceEndpointSpec and portSetToServicePorts (always a struct, even with no block)."""
    endpoint = endpoint or {}
    spec: dict[str, Any] = {}
    if endpoint.get("mode"):
        spec["Mode"] = endpoint["mode"]
    ports = [
        {
            "Name": port.get("name", ""),
            "Protocol": port.get("protocol", "tcp"),
            "TargetPort": int(port["targetPort"]),
            "PublishedPort": int(port.get("publishedPort", 0)),
            "PublishMode": port.get("publishMode", "ingress"),
        }
        for port in endpoint.get("ports") or []
    ]
    if ports:
        spec["Ports"] = ports
    return spec


def create_service_spec(inputs: dict[str, Any], network_ids: dict[str, str]) -> dict[str, Any]:
    """createServiceSpec, as keyword arguments for docker's APIClient.create_service / update_service."""
    return {
        "name": inputs["name"],
        # createServiceLabels: the label set as a map (a service's own labels, not its containers').
        "labels": {label["label"]: label["value"] for label in inputs.get("labels") or []},
        "task_template": create_task_spec(inputs["taskSpec"], network_ids),
        "mode": create_service_mode(inputs.get("mode")),
        "update_config": create_update_or_rollback_config(inputs.get("updateConfig")),
        "rollback_config": create_update_or_rollback_config(inputs.get("rollbackConfig")),
        "endpoint_spec": create_service_endpoint_spec(inputs.get("endpointSpec")),
    }


def without_ingress(spec: dict[str, Any]) -> dict[str, Any]:
    """The one adaptation for machines without IPVS (docs/testing.md, "Why HAProxy stands in for the
    routing mesh"): the routing mesh cannot forward here, so DNS round robin behind the test suite's
    HAProxy instead."""
    return {**spec, "endpoint_spec": {"Mode": "dnsrr"}}
