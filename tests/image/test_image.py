"""The multi-stage image on a real engine: contents, metadata, health, answers, clean stop."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.image.conftest import BUILD_ARGS, image_files, run_in
from tests.support.net import wait_until

pytestmark = pytest.mark.image

# What a runtime image must not carry: a shell, a package manager, pip and the build backend,
# a compiler, network tools.
FORBIDDEN_PROGRAMS = {
    "sh",
    "bash",
    "dash",
    "busybox",
    "apt",
    "apt-get",
    "dpkg",
    "pip",
    "pip3",
    "gcc",
    "cc",
    "make",
    "curl",
    "wget",
    "ldd",
}
FORBIDDEN_PACKAGES = {"pip", "setuptools", "wheel", "ensurepip", "pkg_resources", "_distutils_hack"}
MAX_IMAGE_BYTES = 60_000_000  # #13: at most 60 MB, as `docker image inspect` reports


def test_runtime_image_is_at_most_60_mb(runtime_image):
    assert runtime_image.attrs["Size"] <= MAX_IMAGE_BYTES, runtime_image.attrs["Size"]


def test_runtime_has_no_shell_no_package_manager_no_pip_no_compiler(docker_client, runtime_image):
    files = image_files(docker_client, runtime_image)
    programs = {Path(name).name for name, member in files.items() if not member.isdir()}
    assert programs & FORBIDDEN_PROGRAMS == set()
    packages = {Path(name).name.split("-")[0] for name in files if "site-packages/" in name or "/python3" in name}
    assert packages & FORBIDDEN_PACKAGES == set()
    assert not [name for name in files if name.startswith(("var/lib/dpkg", "var/lib/apt", "etc/apt"))]


def test_build_stage_is_where_the_toolchain_lives(docker_client, build_stage_image):
    code, output = run_in(
        docker_client,
        build_stage_image,
        "/opt/build-tools/bin/python",
        "-c",
        "import importlib.util; print(' '.join(m for m in ('pip', 'setuptools') if importlib.util.find_spec(m)))",
    )
    assert (code, output.split()) == (0, ["pip", "setuptools"]), output


def test_runtime_venv_holds_only_the_app_and_its_locked_dependencies(docker_client, runtime_image):
    files = image_files(docker_client, runtime_image)
    distributions = sorted(
        Path(name).name.split("-")[0].lower()
        for name in files
        if name.endswith(".dist-info") and "site-packages" in name
    )
    assert distributions == ["click", "granian", "restdemo"]


def test_the_interpreter_is_python_3_11(docker_client, runtime_image):
    """granian's Rust tasks, which restdemo runs (docs/benchmarks.md), exist only below 3.12: on a
    newer base granian would fall back to asyncio's, measured slower."""
    code, output = run_in(docker_client, runtime_image, "python", "-c", "import sys; print(sys.version_info[:2])")
    assert (code, output.strip()) == (0, "(3, 11)")


def test_python_is_compiled_and_sourceless(docker_client, runtime_image):
    """The standard library and the venv as .pyc where the .py was: no source, no __pycache__."""
    files = image_files(docker_client, runtime_image)
    assert [name for name in files if name.endswith(".py") or "__pycache__" in name] == []
    assert "opt/restdemo/lib/python3.11/site-packages/restdemo/server.pyc" in files
    assert any(name.endswith("/python3.11/json/__init__.pyc") for name in files)


def test_runs_as_non_root(docker_client, runtime_image):
    assert runtime_image.attrs["Config"]["User"] == "10001:10001"
    code, output = run_in(docker_client, runtime_image, "python", "-c", "import os; print(os.getuid(), os.getgid())")
    assert (code, output.strip()) == (0, "10001 10001")


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
    code, output = run_in(docker_client, build_stage_image, "sh", "-c", "ls -A /run/secrets 2>/dev/null | wc -l")
    assert (code, output.strip()) == (0, "0")
    assert [name for name in image_files(docker_client, runtime_image) if name.startswith("run/secrets/")] == []


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
