"""Image: the multi-stage restdemo image, built from app/ and pushed to the stack's registry.

The tag is derived from the content (the build context's files and the build
arguments): the same source gives the same tag, so an unchanged app neither rebuilds
nor rolls, and ECR's immutable tags never see one tag with two digests. The service
runs `repository:tag@sha256:...`: pinned by digest, with the tag kept for people.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pulumi
import pulumi_docker as docker

from infra.registry import Registry
from infra.settings import Settings

TARGET = "runtime"


def in_build_context(relative: Path) -> bool:
    """What app/.dockerignore keeps out: bytecode and packaging leftovers of local installs."""
    return not any(part == "__pycache__" or part.endswith(".egg-info") for part in relative.parts) and (
        relative.suffix != ".pyc"
    )


def build_args(settings: Settings, revision: str) -> dict[str, str]:
    """What goes to `docker build --build-arg`: labels, and base images when set."""
    args = {"VERSION": settings.version, "REVISION": revision}
    if settings.build_base:
        args["BUILD_BASE"] = settings.build_base
    if settings.runtime_base:
        args["RUNTIME_BASE"] = settings.runtime_base
    return args


def content_tag(context: Path, args: dict[str, str]) -> str:
    """`<version>-<12 hex>` from every file in the build context and the build arguments."""
    digest = hashlib.sha256()
    files = sorted(p.relative_to(context) for p in context.rglob("*") if p.is_file())
    for relative in filter(in_build_context, files):
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256((context / relative).read_bytes()).digest())
    for name in sorted(args):
        digest.update(f"{name}={args[name]}\0".encode())
    return f"{args['VERSION']}-{digest.hexdigest()[:12]}"


def pinned_reference(image_name: str, repo_digest: str) -> str:
    """repo:tag + repo@sha256:x -> repo:tag@sha256:x."""
    return f"{image_name}@{repo_digest.rpartition('@')[2]}"


class Image(pulumi.ComponentResource):
    """Outputs: `image_name` (repository:tag), `repo_digest`, `ref` (repository:tag@sha256:...)."""

    def __init__(
        self,
        name: str,
        *,
        settings: Settings,
        registry: Registry,
        context: Path,
        revision: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:image:Image", name, None, opts)
        args = build_args(settings, revision)
        tag = content_tag(context, args)
        # Relative to the program's directory, so the inputs are the same on every machine.
        relative_context = Path(os.path.relpath(context))
        self.image_name = registry.repository.apply(lambda repository: f"{repository}:{tag}")
        image = docker.Image(
            name,
            image_name=self.image_name,
            build=docker.DockerBuildArgs(
                context=relative_context.as_posix(),
                dockerfile=(relative_context / "Dockerfile").as_posix(),
                target=TARGET,
                args=args,
                platform=settings.image_platform,
                builder_version=docker.BuilderVersion.BUILDER_BUILD_KIT,
            ),
            registry=docker.RegistryArgs(
                server=registry.server, username=registry.username, password=registry.password
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.repo_digest = image.repo_digest
        self.ref = pulumi.Output.all(self.image_name, image.repo_digest).apply(lambda v: pinned_reference(*v))
        self.register_outputs({"image_name": self.image_name, "repo_digest": self.repo_digest, "ref": self.ref})
