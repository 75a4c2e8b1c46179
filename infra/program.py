"""The program: read the stack's settings once, compose the components, export the outputs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pulumi
from pulumi.runtime.config import CONFIG

from infra.image import Image
from infra.registry import Registry
from infra.service import DockerEndpoint, SwarmService
from infra.settings import Settings, parse_settings

REPO = Path(__file__).resolve().parents[1]
APP_DIR = REPO / "app"


def load_settings() -> Settings:
    """The only place that reads the stack's config: all of it, so a misspelt key is caught."""
    return parse_settings(dict(CONFIG.get()))


def app_revision() -> str:
    """The last commit that touched app/: the same source gives the same revision (and tag)."""
    try:
        result = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--", "app"], cwd=REPO, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def main() -> dict[str, pulumi.Input]:
    settings = load_settings()
    registry = Registry("registry", settings=settings)
    image = Image("restdemo", settings=settings, registry=registry, context=APP_DIR, revision=app_revision())
    outputs: dict[str, pulumi.Input] = {"image": image.ref, "repository": registry.repository}
    if settings.platform == "local":
        service = SwarmService(
            "restdemo", settings=settings, image_ref=image.ref, endpoint=DockerEndpoint(host=settings.docker_host)
        )
        outputs |= {
            "url": f"http://localhost:{settings.published_port}",
            "serviceName": service.service_name,
            "replicas": service.replicas,
        }
    else:
        pulumi.log.warn("platform aws: the swarm cluster and the service on it are not provisioned yet (issue #4)")
    for name, value in outputs.items():
        pulumi.export(name, value)
    return outputs
