"""Registry: where the stack's images are pushed.

AWS stacks: an ECR repository (immutable tags but the build cache's, scan on push, a
lifecycle policy that keeps the last N images), with a short-lived login token as a secret. `local`: a
registry the program runs itself on 127.0.0.1, or an existing one named in settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from infra.config.names import LOCAL_REGISTRY
from infra.config.names import repository_name as ecr_repository_name
from infra.config.settings import SettingsView
from infra.config.tags import tags


@dataclass(frozen=True)
class RegistrySettings(SettingsView):
    """What `Registry` reads of the settings: ECR on aws, the local registry on local."""

    owner: str | None
    platform: str
    ecr_keep_images: int
    local_registry_image: str
    local_registry_port: int
    registry_address: str | None


# The one tag rewritten on every build: the BuildKit cache (infra/image/image.py CACHE_TAG). Every
# image tag stays immutable.
MUTABLE_TAG = "buildcache"


def ecr_lifecycle_policy(keep: int) -> str:
    """Untagged manifests go after a day (each build leaves the previous `buildcache` one
    untagged); of the images, tagged `<version>-<hash>`, the last `keep` stay. The cache's own
    tag has no '-', so it is never counted among them nor expired."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "expire untagged manifests (replaced build caches) after a day",
                    "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                                  "countNumber": 1},
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"keep the last {keep} images",
                    "selection": {"tagStatus": "tagged", "tagPatternList": ["*-*"], "countType": "imageCountMoreThan",
                                  "countNumber": keep},
                    "action": {"type": "expire"},
                },
            ]
        },
        sort_keys=True,
    )  # fmt: skip


# What changes a repository's images or tags (ECR's push and delete actions, and its tag rules).
WRITES = [
    "ecr:BatchDeleteImage",
    "ecr:CompleteLayerUpload",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:PutImageTagMutability",
    "ecr:UploadLayerPart",
]


def deny_writes(principals: list[str]) -> str:
    """A repository policy: these roles may never write to it, whatever their own policies say. By
    aws:PrincipalArn, since a Principal element must name roles that exist, and the nodes' come later."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "NodesOnlyPull",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": WRITES,
                    "Condition": {"ArnLike": {"aws:PrincipalArn": sorted(principals)}},
                }
            ],
        },
        sort_keys=True,
    )


class Registry(pulumi.ComponentResource):
    """Where the stack's images are pushed: an ECR repository, a registry run on 127.0.0.1, or one named in settings.

    Takes:
        name: the name of the ECR repository and its lifecycle policy, or of the local registry's image, volume and
            container.
        settings: its slice of the settings (platform, an existing registry's address, the local registry's
            image and port, how many images ECR keeps).
        repository: the repository's name (the service's, or `restdemo-agent`; on AWS, suffixed with `-<stack>`).
        pull_only: ARN patterns of the roles the ECR repository's policy denies every write (the nodes').
        opts: resource options.

    Gives:
        server: the registry's `host[:port]`.
        repository: `server/name`, what image tags start with.
        username: ECR's login user; None off AWS.
        password: ECR's short-lived token (secret); None off AWS.
        arn: the ECR repository's ARN; None off AWS.
    """

    server: pulumi.Output[str]
    repository: pulumi.Output[str]
    username: pulumi.Output[str] | None
    password: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        *,
        settings: RegistrySettings,
        repository: str,
        pull_only: list[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:registry:Registry", name, None, opts)
        self.username = self.password = self.arn = None
        if settings.platform == "aws":
            self._ecr(name, settings, repository, pull_only or [])
        elif settings.registry_address:
            self.server = pulumi.Output.from_input(settings.registry_address)
            self.repository = pulumi.Output.from_input(f"{settings.registry_address}/{repository}")
        else:
            self._local(name, settings, repository)
        self.register_outputs({"server": self.server, "repository": self.repository})

    def repository_named(self, name: str) -> pulumi.Output[str]:
        """`server/name`: another repository in a local or named registry (each Compose service's)."""
        assert self.arn is None, "an ECR registry holds one repository"
        return self.server.apply(lambda server: f"{server}/{name}")

    def _ecr(self, name: str, settings: RegistrySettings, repository_name: str, pull_only: list[str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            name,
            name=ecr_repository_name(repository_name, pulumi.get_stack()),
            image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
            image_tag_mutability_exclusion_filters=[
                aws.ecr.RepositoryImageTagMutabilityExclusionFilterArgs(filter=MUTABLE_TAG, filter_type="WILDCARD")
            ],
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")],
            tags=tags(settings, repository_name),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            name, repository=repository.name, policy=ecr_lifecycle_policy(settings.ecr_keep_images), opts=child
        )
        if pull_only:
            aws.ecr.RepositoryPolicy(name, repository=repository.name, policy=deny_writes(pull_only), opts=child)
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.repository = repository.repository_url
        self.server = repository.repository_url.apply(lambda url: url.split("/", 1)[0])
        self.username = token.user_name
        self.password = pulumi.Output.secret(token.password)
        self.arn = repository.arn

    def _local(self, name: str, settings: RegistrySettings, repository_name: str) -> None:
        """registry:2 on 127.0.0.1 only (loopback is an insecure registry by default)."""
        child = pulumi.ResourceOptions(parent=self)
        image = docker.RemoteImage(name, name=settings.local_registry_image, keep_locally=True, opts=child)
        storage = docker.Volume(name, name=LOCAL_REGISTRY, opts=child)
        container = docker.Container(
            name,
            name=LOCAL_REGISTRY,
            image=image.image_id,
            restart="always",
            ports=[docker.ContainerPortArgs(internal=5000, external=settings.local_registry_port, ip="127.0.0.1")],
            volumes=[docker.ContainerVolumeArgs(volume_name=storage.name, container_path="/var/lib/registry")],
            opts=child,
        )
        self.server = container.name.apply(lambda _: f"127.0.0.1:{settings.local_registry_port}")
        self.repository = self.server.apply(lambda server: f"{server}/{repository_name}")
