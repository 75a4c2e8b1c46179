"""Images built from app/Dockerfile on the real engine, once per session."""

from __future__ import annotations

import io
import tarfile
import uuid

import pytest

from tests.support.docker_engine import REPO, base_image_args, build_image

BUILD_ARGS = {"VERSION": "1.2.3-test", "REVISION": "0123456789abcdef", "SOURCE": "https://example.test/restdemo"}


@pytest.fixture(scope="session")
def image_tag():
    return f"restdemo-test:{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def runtime_image(docker_client, image_tag):
    build_image(REPO / "app", image_tag, build_args={**base_image_args(docker_client), **BUILD_ARGS})
    image = docker_client.images.get(image_tag)
    yield image
    docker_client.images.remove(image.id, force=True)


@pytest.fixture(scope="session")
def build_stage_image(docker_client, image_tag):
    tag = image_tag + "-build"
    build_image(REPO / "app", tag, target="build", build_args=base_image_args(docker_client))
    image = docker_client.images.get(tag)
    yield image
    docker_client.images.remove(image.id, force=True)


def run_in(docker_client, image, *command: str) -> tuple[int, str]:
    """Run a one-off command in the image (entrypoint overridden); its exit code and output."""
    container = docker_client.containers.run(image.id, list(command), detach=True)
    try:
        code = container.wait(timeout=60)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def image_files(docker_client, image) -> dict[str, tarfile.TarInfo]:
    """Every path in the image's file system (no leading /), read without running anything in it."""
    container = docker_client.containers.create(image.id)
    try:
        archive = io.BytesIO(b"".join(container.export()))
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=archive) as tar:
        return {member.name.rstrip("/"): member for member in tar.getmembers()}
