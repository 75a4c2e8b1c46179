"""infra/image/registry.py: ECR repositories on AWS, a loopback registry locally."""

from __future__ import annotations

import fnmatch
import json

import pytest

from tests.support.aws_stack import AWS_STACKS
from tests.support.pulumi_program import ECR_PASSWORD, run_program, stack_config

pytestmark = pytest.mark.unit


DOCKER_BUILD_IMAGE = "docker-build:index:Image"


def test_local_registry_runs_on_loopback_only(local):
    container = local.one("docker:index/container:Container")
    assert container.inputs["ports"] == [{"internal": 5000, "external": 5000, "ip": "127.0.0.1"}]
    assert container.inputs["restart"] == "always"
    assert container.inputs["volumes"] == [{"volumeName": "restdemo-registry", "containerPath": "/var/lib/registry"}]
    assert local.one("docker:index/remoteImage:RemoteImage").inputs["name"] == "registry:2.8.3"
    assert local.outputs["repository"] == "127.0.0.1:5000/restdemo"
    assert "registries" not in local.one(DOCKER_BUILD_IMAGE).inputs  # loopback: no login


def test_an_existing_registry_replaces_the_one_the_program_runs():
    run = run_program("local", {**stack_config("local"), "restdemo:registryAddress": "registry.internal:5000"})
    assert not run.of_type("docker:index/container:Container")
    assert run.outputs["repository"] == "registry.internal:5000/restdemo"


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_aws_registries_are_ecr_immutable_scanned_with_lifecycle(stack):
    run = run_program(stack)
    keep = stack_config(stack)["restdemo:ecrKeepImages"]
    for component, repository_name in (("registry", "restdemo"), ("agent-registry", "restdemo-agent")):
        repository = run.named("aws:ecr/repository:Repository", component).inputs
        assert repository["name"] == f"{repository_name}-{stack}"
        # Every tag immutable but the build cache's.
        assert repository["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
        assert repository["imageTagMutabilityExclusionFilters"] == [{"filter": "buildcache", "filterType": "WILDCARD"}]
        assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
        policy = json.loads(run.named("aws:ecr/lifecyclePolicy:LifecyclePolicy", component).inputs["policy"])
        untagged, images = policy["rules"]
        # Each build leaves the previous cache manifest untagged: those go after a day, and are
        # not counted among the images kept (with tagStatus any they took half of the places).
        assert untagged["selection"] == {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 1,
        }
        assert images["selection"] == {
            "tagStatus": "tagged",
            "tagPatternList": ["*-*"],
            "countType": "imageCountMoreThan",
            "countNumber": keep,
        }
        assert (untagged["rulePriority"], images["rulePriority"]) == (1, 2)
        pattern = images["selection"]["tagPatternList"][0]
        assert fnmatch.fnmatchcase("v1-0123456789ab", pattern) and not fnmatch.fnmatchcase("buildcache", pattern)


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_aws_registry_credentials_are_secrets(stack):
    run = run_program(stack)
    image = run.named(DOCKER_BUILD_IMAGE, "restdemo")
    region = stack_config(stack)["aws:region"]
    assert image.inputs["registries"] == [
        {"address": f"123456789012.dkr.ecr.{region}.amazonaws.com", "username": "AWS", "password": ECR_PASSWORD}
    ]
    # Pulumi marks the whole registries list secret because the password in it is.
    assert image.secret_paths == ["registries"]
    assert image.inputs["platforms"] == ["linux/amd64"]
    assert ("aws:ecr/getAuthorizationToken:getAuthorizationToken", {"registryId": "123456789012"}) in run.calls
