"""Image: the service's multi-stage image (restdemo's from app/, or yours: buildContext), built
and pushed to the stack's registry through pulumi-docker-build (`docker_build.Image`, BuildKit),
which Pulumi recommends over `docker.Image`.

The tag is derived from the content (the build context's files and the build
arguments): the same source gives the same tag, so an unchanged app neither rebuilds
nor rolls, and ECR's immutable tags never see one tag with two digests. The service
runs `repository:tag@sha256:...` (the provider's `ref`): pinned by the pushed digest,
with the tag kept for people.

The provider's diff (pulumi-docker-build provider/internal/image.go `Image.Diff`) compares
`registries` by address and username only, so a fresh ECR token (a new password every
`up`) neither rebuilds nor shows a diff; the CA bundle is a secret left out of the diff
(`ignoreSecretsInDiffCalculation`), so a renewed bundle does not either. AWS stacks share
a BuildKit cache in the repository's mutable `buildcache` tag: CI and a laptop reuse
each other's layers (exporting it needs a docker-container builder, as in the workflow).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker
import pulumi_docker_build as docker_build

from infra.config.capacity import image_platforms
from infra.config.settings import CA_BUNDLE_SECRET, SettingsView
from infra.image.build_context import context_files
from infra.image.registry import MUTABLE_TAG as CACHE_TAG
from infra.image.registry import Registry


@dataclass(frozen=True)
class ImageSettings(SettingsView):
    """What `Image` reads of the settings: what a build is given."""

    platform: str
    version: str
    build_args: list[str]
    build_base: str | None
    runtime_base: str | None
    build_ca_bundle: str | None
    build_cache: str
    image_platform: str | None
    # AWS stacks build for the nodes' architectures (infra/config/capacity.py `image_platforms`).
    manager_instance_type: str
    worker_instance_type: str


AGENT_TARGET = "runtime"
# The BuildKit secret the Dockerfiles give pip (RUN --mount=type=secret,id=ca_bundle).


@dataclass(frozen=True)
class Recipe:
    """What to build: the context, its Dockerfile, and the stage ("" for the last)."""

    context: Path
    dockerfile: Path
    target: str


def build_args(settings: ImageSettings, revision: str, given: dict[str, str] | None = None) -> dict[str, str]:
    """What goes to `docker build --build-arg`: the stack's buildArgs (or a Compose service's
    `build.args`, `given`), labels, and base images when set (the settings refuse buildArgs that name
    the program's own)."""
    stacks = dict(entry.split("=", 1) for entry in settings.build_args) if given is None else given
    args = {**stacks, "VERSION": settings.version, "REVISION": revision}
    if settings.build_base:
        args["BUILD_BASE"] = settings.build_base
    if settings.runtime_base:
        args["RUNTIME_BASE"] = settings.runtime_base
    return args


def content_tag(
    context: Path, args: dict[str, str], recipe: dict[str, str] | None = None, dockerfile: Path | None = None
) -> str:
    """`<version>-<12 hex>` from the Dockerfile and every file of the build context (path,
    permissions, content; what .dockerignore leaves out is not in it), the build arguments and the
    rest of the recipe (target, platform). It covers all the provider's context hash does
    (infra/image/build_context.py): a rebuild the provider would make always comes with a new tag,
    so no immutable tag is pushed twice."""
    digest = hashlib.sha256()
    dockerfile = dockerfile or context / "Dockerfile"
    digest.update(b"Dockerfile\0" + hashlib.sha256(dockerfile.read_bytes()).digest())
    for relative in context_files(context, dockerfile):
        mode = stat.S_IMODE((context / relative).stat().st_mode)
        digest.update(f"{relative.as_posix()}\0{mode:o}\0".encode())
        digest.update(hashlib.sha256((context / relative).read_bytes()).digest())
    for name, value in sorted({**args, **{f"recipe:{k}": v for k, v in (recipe or {}).items()}}.items()):
        digest.update(f"{name}={value}\0".encode())
    return f"{args['VERSION']}-{digest.hexdigest()[:12]}"


def registry_logins(registry: Registry) -> list[docker_build.RegistryArgs] | None:
    """ECR's login; a local registry on loopback needs none."""
    if registry.username is None:
        return None
    return [docker_build.RegistryArgs(address=registry.server, username=registry.username, password=registry.password)]


def build_secrets(
    settings: ImageSettings, given: dict[str, pulumi.Output[str]] | None = None
) -> dict[str, pulumi.Output[str]] | None:
    """BuildKit secrets: the CA bundle the Dockerfiles give pip (buildCaBundle), and a Compose build's
    own (`given`, each kept secret)."""
    secrets = dict(given or {})
    if settings.build_ca_bundle:
        secrets[CA_BUNDLE_SECRET] = pulumi.Output.secret(Path(settings.build_ca_bundle).read_text())
    return secrets or None


def registry_cache(settings: ImageSettings, registry: Registry) -> dict[str, list]:
    """AWS stacks: read (and with `buildCache: read-write`, the deploy job's, write) the BuildKit
    cache in the repository's `buildcache` tag (every layer, `mode=max`; ECR takes a cache only as
    an OCI image manifest)."""
    if settings.platform != "aws" or settings.build_cache == "off":
        return {}
    ref = registry.repository.apply(lambda repository: f"{repository}:{CACHE_TAG}")
    reading = {"cache_from": [docker_build.CacheFromArgs(registry=docker_build.CacheFromRegistryArgs(ref=ref))]}
    if settings.build_cache == "read":
        return reading
    return {
        **reading,
        "cache_to": [
            docker_build.CacheToArgs(
                # A failed cache write (a role that may only pull, a transient error) must not fail
                # an `up` whose image is already pushed.
                registry=docker_build.CacheToRegistryArgs(
                    ref=ref,
                    mode=docker_build.CacheMode.MAX,
                    image_manifest=True,
                    oci_media_types=True,
                    ignore_error=True,
                )
            )
        ],
    }


class Image(pulumi.ComponentResource):
    """An image built from a directory with BuildKit, tagged by its content, pushed to a registry.

    Takes:
        name: the build's resource name (and the local push's, `docker.RegistryImage`).
        settings: its slice of the settings (platform, version, image platform, base images, build cache, CA bundle).
        registry: where the image is pushed (`Registry`).
        context: the build context, a directory.
        dockerfile: the Dockerfile (in the context, or elsewhere).
        target: the stage built to; "" for the last.
        revision: the source's revision, a build argument (`REVISION`).
        repository: where in the registry it goes, when not the registry's own repository (a Compose service's).
        stack_args: its build arguments, when not the stack's buildArgs (a Compose service's `build.args`).
        secrets: BuildKit secrets of its own by id (a Compose service's `build.secrets`).
        opts: resource options.

    Gives:
        image_name: `repository:tag`, the tag derived from the content.
        repo_digest: the pushed image's digest (`sha256:...`).
        ref: `repository:tag@sha256:...`, the image pinned by that digest.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: ImageSettings,
        registry: Registry,
        context: Path,
        dockerfile: Path,
        target: str,
        revision: str,
        repository: pulumi.Output[str] | None = None,
        stack_args: dict[str, str] | None = None,
        secrets: dict[str, pulumi.Output[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:image:Image", name, None, opts)
        args = build_args(settings, revision, stack_args)
        # Where it is built from is part of the recipe: the same files elsewhere are another build
        # to the provider (its context and dockerfile inputs), so they must make another tag.
        recipe = {
            "target": target,
            "platform": ",".join(image_platforms(settings)),
            "context": Path(os.path.relpath(context)).as_posix(),
            "dockerfile": Path(os.path.relpath(dockerfile)).as_posix(),
        }
        tag = content_tag(context, args, recipe, dockerfile)
        self.image_name = (repository or registry.repository).apply(lambda repository: f"{repository}:{tag}")
        local = settings.platform == "local"
        image = self._build(name, settings, registry, Recipe(context, dockerfile, target), args, local, secrets)
        if local:
            self.repo_digest, self.ref = self._push_from_engine(name, image)
        else:
            self.repo_digest = image.digest
            self.ref = image.ref
        self.register_outputs({"image_name": self.image_name, "repo_digest": self.repo_digest, "ref": self.ref})

    def _build(
        self,
        name: str,
        settings: ImageSettings,
        registry: Registry,
        recipe: Recipe,
        args: dict[str, str],
        local: bool,
        secrets: dict[str, pulumi.Output[str]] | None,
    ) -> docker_build.Image:
        # Relative to the program's directory, so the inputs are the same on every machine.
        return docker_build.Image(
            name,
            context=docker_build.BuildContextArgs(location=Path(os.path.relpath(recipe.context)).as_posix()),
            dockerfile=docker_build.DockerfileArgs(location=Path(os.path.relpath(recipe.dockerfile)).as_posix()),
            target=recipe.target or None,
            build_args=args,
            # Two platforms push a multi-platform index: each node pulls its architecture's image.
            platforms=[docker_build.Platform(platform) for platform in image_platforms(settings)] or None,
            tags=[self.image_name],
            push=not local,
            load=local,
            # A preview neither builds nor writes the cache: the preview roles may only read.
            build_on_preview=False,
            registries=registry_logins(registry),
            secrets=build_secrets(settings, secrets),
            # A new value alone rebuilds nothing: the tag (by content) would be pushed twice.
            ignore_secrets_in_diff_calculation=[CA_BUNDLE_SECRET, *sorted(secrets or {})],
            **registry_cache(settings, registry),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _push_from_engine(self, name: str, image: docker_build.Image) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """The local stack's push: the image's digest and `repository:tag@digest`."""
        # The provider builds in a BuildKit container (it has no `docker` driver), whose loopback
        # is not the engine's: it loads the image into the engine, which pushes it to the
        # registry on the engine's 127.0.0.1.
        pushed = docker.RegistryImage(
            name,
            name=self.image_name,
            keep_remotely=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[image]),
        )
        ref = pulumi.Output.all(image_name=self.image_name, digest=pushed.sha256_digest).apply(
            lambda v: f"{v['image_name']}@{v['digest']}"
        )
        return pushed.sha256_digest, ref
