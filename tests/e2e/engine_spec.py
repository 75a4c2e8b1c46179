"""From what the program hands the docker provider to what the provider sends Docker.

The e2e tier applies the `local` stack's service exactly as the program defines it:
the `docker.Service` inputs captured under Pulumi mocks (wire names, Go durations) are
turned into the Engine API's ServiceSpec the way pulumi-docker does, field by field.

One deliberate difference, because these machines have no IPVS (ENVIRONMENT.md): the
routing mesh cannot forward here, so the service runs with endpoint mode `dnsrr` and
without an ingress port, and an HAProxy in front of it (on the same overlay network,
resolving `tasks.restdemo`, published in host mode) stands in for the mesh. On
AWS and on Docker Desktop the spec's own `vip` endpoint and ingress port are used.
"""

from __future__ import annotations

from typing import Any

from infra.durations import parse_duration


def nanoseconds(go_duration: str) -> int:
    return int(round(parse_duration(go_duration) * 1e9))


def _update(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "Parallelism": int(config["parallelism"]),
        "Delay": nanoseconds(config["delay"]),
        "FailureAction": config["failureAction"],
        "Monitor": nanoseconds(config["monitor"]),
        "MaxFailureRatio": float(config["maxFailureRatio"]),
        "Order": config["order"],
    }


def task_template(inputs: dict[str, Any], network_ids: dict[str, str]) -> dict[str, Any]:
    task = inputs["taskSpec"]
    container = task["containerSpec"]
    health = container["healthcheck"]
    restart = task["restartPolicy"]
    return {
        "ContainerSpec": {
            "Image": container["image"],
            "Env": [f"{k}={v}" for k, v in sorted(container["env"].items())],
            "StopSignal": container["stopSignal"],
            "StopGracePeriod": nanoseconds(container["stopGracePeriod"]),
            "Healthcheck": {
                "Test": health["tests"],
                "Interval": nanoseconds(health["interval"]),
                "Timeout": nanoseconds(health["timeout"]),
                "Retries": int(health["retries"]),
                "StartPeriod": nanoseconds(health["startPeriod"]),
            },
        },
        "RestartPolicy": {
            "Condition": restart["condition"],
            "Delay": nanoseconds(restart["delay"]),
            "MaxAttempts": int(restart["maxAttempts"]),
            "Window": nanoseconds(restart["window"]),
        },
        "Networks": [{"Target": network_ids[n["id"]]} for n in task["networksAdvanceds"]],
    }


def service_spec(inputs: dict[str, Any], network_ids: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments for docker's APIClient.create_service / update_service."""
    return {
        "name": inputs["name"],
        "task_template": task_template(inputs, network_ids),
        "mode": {"Replicated": {"Replicas": int(inputs["mode"]["replicated"]["replicas"])}},
        "update_config": _update(inputs["updateConfig"]),
        "rollback_config": _update(inputs["rollbackConfig"]),
        # The adaptation described above: no IPVS here, so DNS round robin behind HAProxy.
        "endpoint_spec": {"Mode": "dnsrr"},
    }
