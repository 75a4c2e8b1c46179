"""The swarm through kreuzwerker's docker provider: services and networks, with the names,
enums and read-back forms it and swarmkit behind it apply.

Sources: kreuzwerker/terraform-provider-docker (tpd) internal/provider and moby/swarmkit.
"""

from __future__ import annotations

from typing import Any

from infra.config.durations import docker_duration, parse_duration
from restdemo_agent.contract import AWS_SECRETS_LABEL
from tests.fidelity.rules import (
    Between,
    Field,
    ForceNew,
    Json,
    OneOf,
    Pattern,
    ReadBack,
    ReadBackWider,
    Satisfies,
    WrittenOnTheSwarm,
)

SERVICE = "docker:index/service:Service"


def _short_duration(value: Any) -> str:
    return docker_duration(parse_duration(str(value)))


def _one_decimal(value: Any) -> str:
    number = float(value)
    return str(value) if round(number, 1) == number else f"{number:.1f}"


def _swarm_nano_cpus(value: Any) -> str | None:
    return None if value == 0 or value >= 1e6 else "invalid cpu value: must be at least 0.001 (1e6 nano CPUs)"


def _swarm_memory_bytes(value: Any) -> str | None:
    return None if value == 0 or value >= 4 * 1024 * 1024 else "invalid memory value: must be at least 4MiB"


def _health_test(value: Any) -> str | None:
    """moby daemon/health.go getProbe: CMD runs the rest as a program, CMD-SHELL its one string in
    a shell, NONE none; any other first word gives no probe, and the task never turns healthy. An
    empty test takes the image's own (moby daemon/commit.go merge: a user's Healthcheck with no Test
    gets the image's Test and each timing it leaves at zero)."""
    kind = value[0] if value else ""
    if not value or kind == "CMD" and len(value) >= 2 or kind == "CMD-SHELL" and len(value) == 2 or value == ["NONE"]:
        return None
    return "not CMD with a program, CMD-SHELL with one command, or NONE: the engine runs no probe"


# moby daemon/daemon_unix.go verifyPlatformContainerResources: linuxMinMemory, "Minimum memory limit
# allowed is 6MB", when the task's container is created (swarm accepted the spec, every task fails).
CONTAINER_MIN_MEMORY = 6 * 1024 * 1024
SWARM_RESOURCES = "swarmkit manager/controlapi/service.go validateResources (limits and reservations)"
DOCKER_DURATION = ReadBack(_short_duration, "tpd resource_docker_service_structures.go shortDur")
# swarmkit manager/controlapi/common.go validateAnnotations: isValidDNSName, at most 63 characters.
SWARM_NAME = Pattern(r"[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*", 63)


# swarmkit manager/controlapi/common.go validateConfigOrSecretAnnotations: at most 64 characters of
# letters, digits, -, _ and ., starting and ending with a letter or digit.
STORED_NAME = Pattern(r"[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?", 64)
STORED_NAME_SOURCE = "swarmkit manager/controlapi/common.go validateConfigOrSecretAnnotations"
# tpd resource_docker_secret.go and resource_docker_config.go: data ValidateFunc validateStringIsBase64Encoded
# (base64.StdEncoding.DecodeString).
BASE64 = Pattern(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _loopback_over_http(entries: Any) -> str | None:
    """tpd data_source_docker_registry_image.go asks `ServerAddress + /v2/...`; an entry's address without
    a scheme becomes https:// (normalizeRegistryAddress), which a loopback registry (plain HTTP, as
    Docker reaches it) does not answer."""
    for entry in entries:
        host = entry["address"].split("://")[-1].rpartition(":")[0] or entry["address"]
        if host in ("127.0.0.1", "localhost") and not entry["address"].startswith("http://"):
            return f"{entry['address']}: a loopback registry answers plain HTTP; the provider would ask https://"
    return None


FIELDS = [
    Field(
        "pulumi:providers:docker",
        "registryAuth",
        Json(_loopback_over_http),
        "tpd normalizeRegistryAddress, getImageDigest",
        '[{"address": "127.0.0.1:5000", "authDisabled": true}]',
    ),
    Field("docker:index/secret:Secret", "name", STORED_NAME, STORED_NAME_SOURCE, "restdemo_greeting_" + "0" * 50),
    Field("docker:index/secret:Secret", "data", BASE64, "tpd validateStringIsBase64Encoded", "hello"),
    Field(SERVICE, "name", SWARM_NAME, "swarmkit manager/controlapi/common.go validateAnnotations", "restdemo.web"),
    Field(
        "docker:index/network:Network",
        "name",
        SWARM_NAME,
        "swarmkit manager/controlapi/network.go validateNetworkSpec",
        "-restdemo",
    ),
    Field(
        SERVICE,
        "taskSpec.placement.prefs[]",
        Pattern(r"(?i:node\.labels\.|engine\.labels\.).+"),
        "swarmkit manager/scheduler/nodeset.go (*nodeSet).tree skips other descriptors; "
        "tpd stringSetToPlacementPrefs passes the string verbatim",
        "spread=node.labels.availability_zone",
    ),
    *(
        Field(SERVICE, f"taskSpec.resources.{part}.nanoCpus", Satisfies(_swarm_nano_cpus), SWARM_RESOURCES, 1000)
        for part in ("limits", "reservation")
    ),
    *(
        Field(SERVICE, f"taskSpec.resources.{part}.memoryBytes", Satisfies(_swarm_memory_bytes), SWARM_RESOURCES, 1024)
        for part in ("limits", "reservation")
    ),
    Field(
        SERVICE,
        "taskSpec.resources.limits.memoryBytes",
        Between(CONTAINER_MIN_MEMORY, 2**63 - 1),
        "moby daemon/daemon_unix.go verifyPlatformContainerResources linuxMinMemory",
        5 * 1024 * 1024,
    ),
    Field(
        SERVICE,
        "taskSpec.containerSpec.healthcheck.tests",
        Satisfies(_health_test),
        "moby daemon/health.go getProbe (CMD, CMD-SHELL, NONE); daemon/commit.go merge ([])",
        ["restdemo-cli", "show", "health"],
    ),
    Field(
        SERVICE,
        "taskSpec.containerSpec.env{keys}",
        Pattern(r"[^=]+"),
        "tpd mapTypeMapValsToStringSlice sends key=value; the engine splits each entry at its first =",
        "GREETING=hello",
    ),
    Field(
        SERVICE,
        "endpointSpec.ports[].targetPort",
        Between(1, 65535),
        "moby api/types/swarm PortConfig.TargetPort: a TCP port",
        0,
    ),
    Field(
        SERVICE,
        "taskSpec.placement.constraints[]",
        Pattern(r"[\w.\-]+\s*(==|!=)\s*\S+"),
        "swarmkit manager/constraint/constraint.go Parse: key, == or !=, value",
        "node.role=worker",
    ),
    Field(
        SERVICE,
        "updateConfig.failureAction",
        OneOf(("pause", "continue", "rollback")),
        "tpd resource_docker_service.go ^(pause|continue|rollback)$",
        "abort",
    ),
    Field(
        SERVICE,
        "updateConfig.order",
        OneOf(("stop-first", "start-first")),
        "tpd resource_docker_service.go ^(stop-first|start-first)$",
        "first-start",
    ),
    Field(
        SERVICE,
        "rollbackConfig.failureAction",
        OneOf(("pause", "continue")),
        "tpd resource_docker_service.go rollback_config (pause|continue)",
        "rollback",
    ),
    Field(
        SERVICE, "rollbackConfig.order", OneOf(("stop-first", "start-first")), "tpd resource_docker_service.go", "stop"
    ),
    Field(
        SERVICE,
        "taskSpec.restartPolicy.condition",
        OneOf(("none", "on-failure", "any")),
        "tpd resource_docker_service.go ^(none|on-failure|any)$",
        "always",
    ),
    Field(
        SERVICE, "endpointSpec.mode", OneOf(("vip", "dnsrr")), "tpd resource_docker_service.go ^(vip|dnsrr)$", "ipvs"
    ),
    Field(
        SERVICE,
        "endpointSpec.ports[].protocol",
        OneOf(("tcp", "udp", "sctp")),
        "tpd resource_docker_service.go ^(tcp|udp|sctp)$",
        "http",
    ),
    Field(
        SERVICE,
        "endpointSpec.ports[].publishMode",
        OneOf(("host", "ingress")),
        "tpd resource_docker_service.go ^(host|ingress)$",
        "mesh",
    ),
    Field(
        SERVICE,
        "updateConfig.maxFailureRatio",
        ReadBack(_one_decimal, "tpd FormatFloat(..., 'f', 1, 64)"),
        "tpd flattenServiceUpdateOrRollbackConfig",
        "0.25",
    ),
    *(
        Field(SERVICE, path, DOCKER_DURATION, "tpd flatten* functions read durations back through shortDur", "1m0s")
        for path in (
            "updateConfig.delay",
            "updateConfig.monitor",
            "rollbackConfig.delay",
            "rollbackConfig.monitor",
            "taskSpec.containerSpec.stopGracePeriod",
            "taskSpec.containerSpec.healthcheck.interval",
            "taskSpec.containerSpec.healthcheck.timeout",
            "taskSpec.containerSpec.healthcheck.startPeriod",
            "taskSpec.restartPolicy.delay",
            "taskSpec.restartPolicy.window",
        )
    ),
]


FORCE_NEW = [
    # `mode` is a ForceNew block: SDKv2 puts ForceNew on its item count only (helper/schema diffList), so
    # replicated <-> global replaces the service while a new replica count updates it in place.
    ForceNew(
        SERVICE,
        ("name", "mode{keys}"),
        "tpd resource_docker_service.go: name, mode ForceNew (swarmkit refuses renames and mode changes)",
    ),
    ForceNew(
        "docker:index/network:Network",
        ("name", "driver", "attachable"),
        "tpd resource_docker_network.go: every argument ForceNew",
    ),
]


READ_BACK_WIDER = [
    ReadBackWider(
        "docker:index/network:Network",
        "options",
        "kreuzwerker resource_docker_network.go: options Optional+Computed+ForceNew; "
        "resource_docker_network_funcs.go Read sets every driver option (overlay adds vxlanid_list)",
    ),
]


WRITTEN_ON_THE_SWARM = [
    WrittenOnTheSwarm(
        SERVICE,
        "taskSpec.containerSpec.secrets",
        AWS_SECRETS_LABEL,
        "tpd resource_docker_service_funcs.go resourceDockerServiceUpdate: createServiceSpec(d), the whole spec, "
        "sent with ServiceUpdate; the leader's agent writes these references (docs/adr/0029)",
    ),
]
