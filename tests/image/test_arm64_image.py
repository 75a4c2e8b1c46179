"""The runtime image for Graviton (linux/arm64), built and run under QEMU user emulation on this
x86 machine (scripts/docker-engine.sh registers it; scripts/base-images.sh makes the arm64 base):
the same Dockerfile, an arm64 interpreter, and the health check answering."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import time
import urllib.request

import pytest

from tests.image.conftest import BUILD_ARGS
from tests.image.test_image import health_state
from tests.support.docker_engine import LOCAL_ARM64_BASE, REPO, build_image, unavailable
from tests.support.net import wait_until

pytestmark = pytest.mark.image

# ELF's e_machine for AArch64 (System V ABI, AArch64 supplement).
EM_AARCH64 = 0xB7
# What the venv's python links to: the interpreter the runtime image keeps.
INTERPRETER = "/usr/bin/python3.11"


@pytest.fixture(scope="module")
def arm64_image(docker_client):
    if not docker_client.images.list(name=LOCAL_ARM64_BASE):
        unavailable(f"no {LOCAL_ARM64_BASE}: run scripts/docker-engine.sh, then scripts/base-images.sh")
    tag = "restdemo-test:arm64"
    started = time.monotonic()
    build_image(
        REPO / "app",
        tag,
        platform="linux/arm64",
        build_args={**BUILD_ARGS, "BUILD_BASE": LOCAL_ARM64_BASE, "RUNTIME_BASE": LOCAL_ARM64_BASE},
    )
    print(f"\narm64 runtime image built under QEMU in {time.monotonic() - started:.1f} s")
    image = docker_client.images.get(tag)
    yield image
    docker_client.images.remove(image.id, force=True)


def test_the_arm64_image_is_arm64_through_and_through(docker_client, arm64_image):
    assert (arm64_image.attrs["Os"], arm64_image.attrs["Architecture"]) == ("linux", "arm64")
    container = docker_client.containers.create(arm64_image.id)
    try:
        stream, _ = container.get_archive(INTERPRETER)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            elf = archive.extractfile(archive.getmembers()[0]).read(20)
    finally:
        container.remove(force=True)
    # e_machine is the ELF header's bytes 18-19 (little-endian on AArch64).
    assert elf[:4] == b"\x7fELF" and struct.unpack_from("<H", elf, 18)[0] == EM_AARCH64


def test_the_arm64_image_turns_healthy_and_answers(docker_client, arm64_image):
    container = docker_client.containers.run(
        arm64_image.id, detach=True, environment={"VER": "arm64"}, ports={"8000/tcp": ("127.0.0.1", None)}
    )
    try:
        started = time.monotonic()
        # Its own HEALTHCHECK (restdemo-cli, emulated too): every 5 s, after a 10 s start period.
        wait_until(
            lambda: health_state(container) == "healthy", timeout=120, interval=1, what="arm64 container healthy"
        )
        print(f"\narm64 container healthy under QEMU after {time.monotonic() - started:.1f} s")
        port = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.status == 200
            assert json.load(response) == {"hostname": container.id[:12], "version": "arm64"}
    finally:
        container.remove(force=True)
