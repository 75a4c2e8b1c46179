"""pulumi-docker-build: the images it builds and pushes.

Sources: pulumi-docker-build provider/internal and distribution/reference (what BuildKit and the
registry accept).
"""

from __future__ import annotations

from tests.fidelity.rules import Field, OneOf, Pattern

DOCKER_BUILD_IMAGE = "docker-build:index:Image"


FIELDS = [
    # pulumi-docker-build: what BuildKit and the registry accept.
    Field(
        DOCKER_BUILD_IMAGE,
        "tags[]",
        Pattern(r"[a-z0-9.-]+(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
        "distribution/reference regexp.go: path components [a-z0-9]+([._-][a-z0-9]+)*, tag [\\w][\\w.-]{0,127}",
        "127.0.0.1:5000/restdemo:v1 beta",
    ),
    Field(
        DOCKER_BUILD_IMAGE,
        "cacheTo[].registry.mode",
        OneOf(("min", "max")),
        "pulumi-docker-build provider/internal/cache.go CacheMode",
        "all",
    ),
    Field(
        DOCKER_BUILD_IMAGE,
        "platforms[]",
        OneOf(("linux/amd64", "linux/arm64")),
        "pulumi-docker-build provider/internal/platform.go (the two the nodes run)",
        "linux/x86_64",
    ),
    Field(
        DOCKER_BUILD_IMAGE,
        "buildArgs{keys}",
        Pattern(r"[^=\s]+"),
        "BuildKit takes build arguments as build-arg:KEY=VALUE attributes, and docker/cli's --build-arg splits "
        "KEY=VALUE at the first = (opts ConvertKVStringsToMapWithNil): a key is not empty and holds no =",
        "LOG=LEVEL",
    ),
]
