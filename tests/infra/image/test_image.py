"""infra/image/image.py: the content tag, the build inputs and the pushed reference."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.config.settings import Settings
from infra.image.image import ImageSettings, build_args, content_tag
from tests.support.pulumi_program import REPO, run_program, stack_config

pytestmark = pytest.mark.unit


DOCKER_BUILD_IMAGE = "docker-build:index:Image"


def test_image_is_built_from_app_runtime_target_and_pushed(run):
    image = run.named(DOCKER_BUILD_IMAGE, "restdemo").inputs
    assert (image["context"], image["dockerfile"], image["target"]) == (
        {"location": "app"},
        {"location": "app/Dockerfile"},
        "runtime",
    )
    assert image["buildArgs"]["VERSION"] == stack_config(run.stack)["restdemo:version"]
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", image["buildArgs"]["REVISION"])
    assert image["buildOnPreview"] is False
    if run.stack == "local":
        # BuildKit runs in a container whose loopback is not the engine's: the image is loaded into
        # the engine, and the engine pushes it to its 127.0.0.1 registry.
        assert (image.get("push"), image["load"]) == (False, True)
        pushed = run.one("docker:index/registryImage:RegistryImage")
        assert pushed.inputs == {"name": image["tags"][0], "keepRemotely": True}
        assert run.named(DOCKER_BUILD_IMAGE, "restdemo").urn in pushed.dependencies
    else:
        assert (image["push"], image.get("load")) == (True, False)
    repository = run.outputs["repository"]
    (tag,) = image["tags"]
    assert re.fullmatch(rf"{re.escape(repository)}:v1-[0-9a-f]{{12}}", tag)
    # The service runs the provider's `ref`: the tag pinned to the digest it pushed.
    assert run.outputs["image"] == f"{tag}@sha256:" + hashlib.sha256(tag.encode()).hexdigest()


def test_the_same_source_gives_the_same_image_tag_run_after_run(run):
    again = run_program(run.stack)
    assert (
        again.named(DOCKER_BUILD_IMAGE, "restdemo").inputs["tags"]
        == run.named(DOCKER_BUILD_IMAGE, "restdemo").inputs["tags"]
    )


def test_aws_stacks_read_the_registry_build_cache_the_local_one_has_none(run):
    image = run.named(DOCKER_BUILD_IMAGE, "restdemo").inputs
    assert "cacheTo" not in image  # only the deploy job writes it (buildCache: read-write)
    if run.stack == "local":
        assert "cacheFrom" not in image
        return
    assert image["cacheFrom"] == [{"registry": {"ref": f"{run.outputs['repository']}:buildcache"}}]
    registry = run.named("aws:ecr/repository:Repository", "registry").inputs
    assert registry["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert registry["imageTagMutabilityExclusionFilters"] == [{"filter": "buildcache", "filterType": "WILDCARD"}]


def test_the_deploy_job_writes_the_cache_and_a_failed_write_does_not_fail_the_up():
    run = run_program("dev", {**stack_config("dev"), "restdemo:buildCache": "read-write"})
    image = run.named(DOCKER_BUILD_IMAGE, "restdemo").inputs
    cache = f"{run.outputs['repository']}:buildcache"
    ((to,),) = [list(c.values()) for c in image["cacheTo"]]
    assert (to["ref"], to["mode"], to["imageManifest"], to["ociMediaTypes"]) == (cache, "max", True, True)
    assert to["ignoreError"] is True
    off = run_program("dev", {**stack_config("dev"), "restdemo:buildCache": "off"}).named(
        DOCKER_BUILD_IMAGE, "restdemo"
    )
    assert "cacheFrom" not in off.inputs and "cacheTo" not in off.inputs


def test_the_ca_bundle_is_a_build_secret_never_an_argument_or_output(tmp_path):
    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nproxy\n-----END CERTIFICATE-----\n")
    run = run_program("local", {**stack_config("local"), "restdemo:buildCaBundle": str(bundle)})
    image = run.one(DOCKER_BUILD_IMAGE)
    assert image.inputs["secrets"] == {"ca_bundle": bundle.read_text()}
    assert "secrets" in image.secret_paths
    assert image.inputs["ignoreSecretsInDiffCalculation"] == ["ca_bundle"]
    assert "proxy" not in json.dumps(image.inputs["buildArgs"]) + json.dumps(run.outputs)


@pytest.mark.parametrize("text", [None, "not a certificate"])
def test_a_ca_bundle_that_is_not_a_pem_file_stops_the_program(tmp_path, text):
    bundle = tmp_path / "bundle.pem"
    if text is not None:
        bundle.write_text(text)
    with pytest.raises(
        Exception, match=r"restdemo:buildCaBundle = .*must be a (readable )?PEM file of CA certificates"
    ):
        run_program("local", {**stack_config("local"), "restdemo:buildCaBundle": str(bundle)})


APP = Path(__file__).resolve().parents[3] / "app"


@pytest.fixture
def context(tmp_path):
    copy = tmp_path / "app"
    shutil.copytree(APP, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return copy


def test_build_args_carry_version_revision_and_bases_when_set():
    assert build_args(ImageSettings.of(Settings(version="v3")), "abc") == {"VERSION": "v3", "REVISION": "abc"}
    settings = Settings(build_base="local/build:1", runtime_base="local/run:1")
    assert build_args(ImageSettings.of(settings), "abc")["BUILD_BASE"] == "local/build:1"
    assert build_args(ImageSettings.of(settings), "abc")["RUNTIME_BASE"] == "local/run:1"
    assert build_args(ImageSettings.of(Settings(version="v3", build_args=["LOG_FORMAT=json"])), "abc") == {
        "LOG_FORMAT": "json",
        "VERSION": "v3",
        "REVISION": "abc",
    }


def test_same_source_same_tag(context):
    args = {"VERSION": "v3", "REVISION": "abc"}
    tag = content_tag(context, args)
    assert tag == content_tag(context, dict(args))
    assert tag.startswith("v3-") and len(tag) == len("v3-") + 12


def test_a_one_line_change_changes_the_tag(context):
    args = {"VERSION": "v3", "REVISION": "abc"}
    before = content_tag(context, args)
    server = context / "src" / "restdemo" / "server.py"
    server.write_text(server.read_text() + "\n# one line\n")
    assert content_tag(context, args) != before


def test_build_args_change_the_tag(context):
    assert content_tag(context, {"VERSION": "v3", "REVISION": "a"}) != content_tag(
        context, {"VERSION": "v3", "REVISION": "b"}
    )


def test_what_docker_ignores_does_not_change_the_tag(context):
    args = {"VERSION": "v3", "REVISION": "abc"}
    before = content_tag(context, args)
    (context / "src" / "restdemo" / "__pycache__").mkdir()
    (context / "src" / "restdemo" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"x")
    (context / "src" / "restdemo.egg-info").mkdir()
    (context / "src" / "restdemo.egg-info" / "PKG-INFO").write_text("x")
    (context / "README.md").write_text("# restdemo\n")  # app/.dockerignore lets in only what is built
    assert content_tag(context, args) == before


def test_a_new_dockerfile_makes_a_new_tag_though_its_ignore_file_leaves_it_out(context):
    """The provider hashes the Dockerfile's content apart from the context (context.go hashDockerfile)."""
    args = {"VERSION": "v3", "REVISION": "abc"}
    before = content_tag(context, args)
    (context / "Dockerfile").write_text((context / "Dockerfile").read_text() + "# a comment\n")
    assert content_tag(context, args) != before


def test_what_makes_the_provider_rebuild_makes_a_new_tag(context):
    """A checkout with another umask (public/ 0664), or another platform, is rebuilt by
    pulumi-docker-build (its context hash includes each file's mode; platforms are an input):
    under the same tag, ECR's immutable tags would refuse the second push."""
    args = {"VERSION": "v3", "REVISION": "abc"}
    before = content_tag(context, args, {"target": "runtime", "platform": ""})
    (context / "public" / "style.css").chmod(0o664)
    after_mode = content_tag(context, args, {"target": "runtime", "platform": ""})
    assert after_mode != before
    assert content_tag(context, args, {"target": "runtime", "platform": "linux/arm64"}) != after_mode


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def test_the_revision_is_the_last_commit_touching_what_is_built(tmp_path):
    """A commit that only edits what the build leaves out (app/README.md) changes neither the
    revision nor the tag, so it rolls nothing; a commit to the source does."""
    from infra.program import revision_of

    repo = tmp_path / "repo"
    shutil.copytree(APP, repo / "app", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    git(repo, "init", "-q")
    commit = ("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m")
    git(repo, "add", "-A")
    git(repo, *commit, "source")
    source = git(repo, "rev-parse", "HEAD")
    (repo / "app" / "README.md").write_text("# restdemo, documented\n")
    git(repo, "add", "-A")
    git(repo, *commit, "docs")
    assert revision_of(repo / "app", repo=repo) == source
    (repo / "app" / "src" / "restdemo" / "routes.py").write_text("# changed\n")
    git(repo, "add", "-A")
    git(repo, *commit, "code")
    assert revision_of(repo / "app", repo=repo) == git(repo, "rev-parse", "HEAD")


def test_the_revision_is_unknown_in_a_shallow_clone(tmp_path):
    """CI checks out one commit by default: `git log -1` then names HEAD for every merge, and every
    merge would roll the service. The workflows fetch the whole history."""
    from infra.program import revision_of

    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{REPO}", str(shallow)], check=True)
    assert revision_of(shallow / "app", repo=shallow) == "unknown"


def test_your_own_service_is_built_from_its_context_dockerfile_and_stage_into_its_repository(tmp_path):
    context = tmp_path / "shop"
    context.mkdir()
    (context / "shop.Dockerfile").write_text('FROM x AS base\nFROM base\nHEALTHCHECK CMD ["true"]\n')
    (context / "main.py").write_text("print('shop')\n")
    config = {
        **stack_config("local"),
        "restdemo:serviceName": "shop",
        "restdemo:buildContext": str(context),
        "restdemo:dockerfile": "shop.Dockerfile",
        "restdemo:buildTarget": "",
        "restdemo:healthCheck": [],
    }
    run = run_program("local", config)
    image = run.named(DOCKER_BUILD_IMAGE, "restdemo").inputs
    relative = Path(os.path.relpath(context)).as_posix()
    assert (image["context"], image["dockerfile"], image.get("target")) == (
        {"location": relative},
        {"location": f"{relative}/shop.Dockerfile"},
        None,
    )
    assert run.outputs["repository"] == "127.0.0.1:5000/shop"
    # Outside the repository: no commit touched it.
    assert image["buildArgs"]["REVISION"] == "unknown"
    before = image["tags"][0]
    (context / "main.py").write_text("print('shop v2')\n")
    assert run_program("local", config).named(DOCKER_BUILD_IMAGE, "restdemo").inputs["tags"][0] != before


def test_the_same_files_built_from_elsewhere_make_another_tag(tmp_path):
    """The provider's inputs name the context and the Dockerfile: a build moved elsewhere is a new
    build to it, pushed under a tag of its own (ECR's immutable tags refuse a second push)."""
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text('FROM x AS runtime\nHEALTHCHECK CMD ["true"]\n')

    def tag_of(name: str) -> str:
        config = {
            **stack_config("local"),
            "restdemo:buildContext": str(tmp_path / name),
            "restdemo:healthCheck": [],
        }
        return run_program("local", config).named(DOCKER_BUILD_IMAGE, "restdemo").inputs["tags"][0]

    assert tag_of("one") != tag_of("two")
