"""The runtime image keeps only the files restdemo loads (app/image/collect.py, #13): prove that
nothing it needs was pruned, and that its layers split by rate of change."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.image.conftest import BUILD_ARGS
from tests.support.docker_engine import REPO, base_image_args, build_image
from tests.support.net import wait_until

pytestmark = pytest.mark.image

IMPORT_LINE = re.compile(r"^import '(?P<module>[^']+)' #", re.MULTILINE)
CLI_RUNS = (
    [],
    ["--format", "{{.hostname}} {{.version}}"],
    ["--format", "{{json .}}"],
    ["--format", "{{.}}"],
    ["--url", "http://127.0.0.1:1"],
    ["--timeout", "inf"],
)


def test_the_app_tier_passes_against_the_runtime_image(docker_client, runtime_image, image_tag):
    """tests/app (HTTP, CLI against misbehaving servers, shutdown, the page in Chromium) with the
    server and every CLI call in the image (tests/app/conftest.py RESTDEMO_APP_IMAGE)."""
    env = {**os.environ, "RESTDEMO_APP_IMAGE": image_tag}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/app"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    for container in docker_client.containers.list(all=True, filters={"ancestor": image_tag}):
        container.remove(force=True)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary, summary


@pytest.fixture(scope="module")
def full_base_image(docker_client, image_tag):
    """The `collect` stage: the same venv on the whole runtime base, before pruning."""
    tag = image_tag + "-collect"
    build_image(REPO / "app", tag, target="collect", build_args={**base_image_args(docker_client), **BUILD_ARGS})
    image = docker_client.images.get(tag)
    yield image
    docker_client.images.remove(image.id, force=True)


def imports_while_serving(docker_client, image, executable_dir: str) -> list[str]:
    """The modules every Python process in `image` imports while it starts, answers every route,
    runs the CLI in each of its modes, and stops on SIGTERM: sorted, from PYTHONVERBOSE."""
    from restdemo.routes import build_routes

    container = docker_client.containers.run(
        image.id,
        [f"{executable_dir}/restdemo"],
        detach=True,
        environment={"PYTHONVERBOSE": "1", "VER": "v1", "PORT": "8000"},
        ports={"8000/tcp": ("127.0.0.1", None)},
    )
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        import requests

        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok, 30, what="the server")
        for path in [*build_routes(REPO / "app" / "public"), "/nope", "/health?connection=close"]:
            requests.get(f"http://127.0.0.1:{port}{path}", timeout=5)
            requests.head(f"http://127.0.0.1:{port}{path}", timeout=5)
        requests.delete(f"http://127.0.0.1:{port}/health", timeout=5)
        cli_output = ""
        for args in CLI_RUNS:
            run = container.exec_run(
                [f"{executable_dir}/restdemo-cli", "show", "health", *args], environment={"PYTHONVERBOSE": "1"}
            )
            cli_output += run.output.decode(errors="replace")
        container.stop(timeout=10)
        logs = container.logs().decode(errors="replace") + cli_output
    finally:
        container.remove(force=True)
    assert "Error" not in "\n".join(line for line in logs.splitlines() if not line.startswith("#")), logs[-3000:]
    return sorted(set(IMPORT_LINE.findall(logs)))


def test_the_runtime_imports_what_the_full_base_imports(docker_client, runtime_image, full_base_image):
    """What the interpreter imports at start, on every route, in the CLI and at stop, listed in
    the test's output: the same on the pruned image as on the whole base, and no import failed."""
    pruned = imports_while_serving(docker_client, runtime_image, "/opt/restdemo/bin")
    full = imports_while_serving(docker_client, full_base_image, "/opt/restdemo/bin")
    print(f"{len(pruned)} modules imported: {' '.join(pruned)}")
    assert "granian._granian" in pruned and "restdemo.server" in pruned and "restdemo.cli" in pruned
    assert pruned == full


def test_a_code_change_leaves_the_base_and_dependency_layers_as_they_were(
    docker_client, runtime_image, image_tag, tmp_path
):
    """A rollout of new app code pulls only the app's layer: the other two are byte-identical."""
    context = tmp_path / "app"
    shutil.copytree(REPO / "app", context, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    with open(context / "src" / "restdemo" / "__init__.py", "a") as init:
        init.write("# a change\n")
    tag = image_tag + "-changed"
    build_image(context, tag, build_args={**base_image_args(docker_client), **BUILD_ARGS})
    try:
        before = runtime_image.attrs["RootFS"]["Layers"]
        after = docker_client.images.get(tag).attrs["RootFS"]["Layers"]
        assert len(before) == len(after) == 3
        assert after[:2] == before[:2]
        assert after[2] != before[2]
    finally:
        docker_client.images.remove(tag, force=True)
