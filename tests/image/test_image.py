"""The multi-stage image on a real engine: contents, metadata, health, answers, clean stop."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.image.conftest import BUILD_ARGS, run_in
from tests.support.net import wait_until

pytestmark = pytest.mark.image

TOOLCHAIN_PROBE = (
    "import importlib.util, shutil, sys; "
    "mods = [m for m in ('pip', 'setuptools', 'wheel', 'ensurepip') if importlib.util.find_spec(m)]; "
    "tools = [t for t in ('pip', 'pip3', 'gcc', 'cc', 'make', 'curl') if shutil.which(t)]; "
    "print(' '.join(mods + tools))"
)


def test_runtime_stage_has_no_pip_no_build_backend_no_compiler(docker_client, runtime_image):
    code, output = run_in(docker_client, runtime_image, "python3", "-c", TOOLCHAIN_PROBE)
    assert code == 0, output
    assert output.strip() == ""


def test_build_stage_is_where_the_toolchain_lives(docker_client, build_stage_image):
    code, output = run_in(docker_client, build_stage_image, "/opt/build-tools/bin/python", "-c", TOOLCHAIN_PROBE)
    assert code == 0, output
    assert {"pip", "setuptools"} <= set(output.split())


def test_runtime_venv_holds_only_the_app_and_its_locked_dependencies(docker_client, runtime_image):
    code, output = run_in(
        docker_client,
        runtime_image,
        "python3",
        "-c",
        "import importlib.metadata as m; "
        "print(' '.join(sorted(d.metadata['Name'].lower() for d in m.distributions())))",
    )
    assert code == 0, output
    assert output.split() == ["click", "granian", "restdemo"]


def test_runs_as_non_root(docker_client, runtime_image):
    assert runtime_image.attrs["Config"]["User"] == "10001:10001"
    code, output = run_in(docker_client, runtime_image, "id", "-u")
    assert (code, output.strip()) == (0, "10001")


def test_healthcheck_runs_the_cli_in_exec_form_every_5s(runtime_image):
    check = runtime_image.attrs["Config"]["Healthcheck"]
    assert check["Test"] == ["CMD", "restdemo-cli", "show", "health", "--timeout", "4"]
    assert check["Interval"] == 5_000_000_000
    assert check["Timeout"] == 5_000_000_000
    assert check["Retries"] == 3
    assert check["StartPeriod"] == 10_000_000_000


def test_metadata_labels_port_and_stop_signal(runtime_image):
    config = runtime_image.attrs["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == BUILD_ARGS["VERSION"]
    assert labels["org.opencontainers.image.revision"] == BUILD_ARGS["REVISION"]
    assert labels["org.opencontainers.image.source"] == BUILD_ARGS["SOURCE"]
    assert list(config["ExposedPorts"]) == ["8000/tcp"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Cmd"] == ["restdemo"]


def test_no_ca_bundle_or_pip_cert_left_in_either_stage(docker_client, runtime_image, build_stage_image):
    for image in (runtime_image, build_stage_image):
        assert not any(e.startswith("PIP_CERT=") for e in image.attrs["Config"]["Env"])
        code, output = run_in(docker_client, image, "sh", "-c", "ls -A /run/secrets 2>/dev/null | wc -l")
        assert (code, output.strip()) == (0, "0")


@pytest.fixture
def container(docker_client, runtime_image):
    container = docker_client.containers.run(
        runtime_image.id, detach=True, environment={"VER": "v3"}, ports={"8000/tcp": ("127.0.0.1", None)}
    )
    yield container
    container.remove(force=True)


def health_state(container) -> str:
    container.reload()
    return container.attrs["State"]["Health"]["Status"]


def test_container_turns_healthy_and_answers_with_its_hostname_and_ver(container):
    wait_until(lambda: health_state(container) == "healthy", timeout=20, what="container healthy")
    port = container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        assert response.status == 200
        assert json.load(response) == {"hostname": container.attrs["Config"]["Hostname"], "version": "v3"}
    assert container.attrs["Config"]["Hostname"] == container.id[:12]


def test_docker_stop_is_a_clean_exit(container):
    wait_until(lambda: health_state(container) == "healthy", timeout=20, what="container healthy")
    container.stop(timeout=10)
    container.reload()
    state = container.attrs["State"]
    # 0, not 137: the server drained and exited on SIGTERM rather than being killed.
    assert state["ExitCode"] == 0
    assert "Granian shutdown completed" in container.logs().decode()
