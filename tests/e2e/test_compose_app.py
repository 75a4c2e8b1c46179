"""A whole app from its Compose file (tests/e2e/compose_app), deployed by the program with settings only,
on the real swarm: two web services on their own routes, an internal one from a prebuilt image (pushed to
the registry beforehand, as a user's would be) reached by name, one secret from the stack's secrets, a
volume, and the stack's database (restdemo:database: the local Postgres service, on an image built from
Debian's packages), which admin keeps rows in. Rolled forward and its secret rotated under 20 requests a
second per web service with no failed request; a change to one service restarts no task of the others;
admin rolled out while rows are written loses none. Beside it, the same file by `docker stack deploy
-c`, timed in the same run."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest
import requests
import yaml

from tests.e2e.conftest import report
from tests.e2e.harness import (
    AppDeployment,
    Backend,
    build_and_push,
    load_balancer,
    push,
    repository_of,
    routes_config,
    steady_load,
)
from tests.support.docker_engine import LOCAL_POSTGRES, build_image, compose_app_base
from tests.support.net import wait_until
from tests.support.pulumi_program import REPO
from tests.support.stack_variants import DATABASE_PASSWORD, compose_app_config, run_compose_app

pytestmark = pytest.mark.e2e

APP = REPO / "tests" / "e2e" / "compose_app"
# The routing mesh's stand-in (docs/adr/0006): HAProxy on each published port, to its service's tasks.
ROUTES = {8081: Backend("restdemo_web", 8080, "/ready"), 8082: Backend("restdemo_admin", 8080, "/ready")}
RATE = 20.0


@dataclass
class App:
    deployment: AppDeployment
    urls: dict[int, str]
    images: dict[str, str]
    api_image: str
    registry: str
    first_deploy_seconds: float


def capture(
    app_registry: str, client, api_image: str, greeting: str = "first", release: str = "1", admin_release: str = "1"
):
    """The program under mocks for the local stack with the Compose app: `greeting` is the stack's
    secret, `release` what web's `${RELEASE}` reads, `admin_release` admin's; its database on the image
    the tests pushed."""
    runtime = compose_app_base(client)
    config = compose_app_config(
        greeting,
        **{"restdemo:registryAddress": app_registry, "restdemo:databaseImage": database_image(app_registry)},
        **({"restdemo:runtimeBase": runtime} if runtime else {}),
    )
    return run_compose_app(config, {"API_IMAGE": api_image, "RELEASE": release, "ADMIN_RELEASE": admin_release})


def database_image(registry: str) -> str:
    return f"{registry}/tests/postgres:15"


def answer(url: str) -> dict:
    response = requests.get(f"{url}/", timeout=5)
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def app(swarm, registry):
    runtime = compose_app_base(swarm)
    api_image = f"{registry}/tests/api:1"
    build_image(APP / "app", api_image, build_args={"RUNTIME_BASE": runtime} if runtime else None)
    api_ref = push(swarm, api_image)
    # The local database's image, as a user's registry would hold the official one.
    swarm.images.get(LOCAL_POSTGRES).tag(database_image(registry))
    database_ref = push(swarm, database_image(registry))
    run = capture(registry, swarm, api_image)
    images = {repository_of(api_ref): api_ref, repository_of(database_ref): database_ref}
    for build in run.of_type("docker-build:index:Image"):
        ref = build_and_push(swarm, build.inputs)
        images[repository_of(ref)] = ref
    deployment = AppDeployment(swarm)
    started = time.monotonic()
    deployment.apply(run, images)
    first_deploy = time.monotonic() - started
    urls, balancer, balancer_config = load_balancer(
        swarm, deployment.ids["restdemo-network-id"], routes_config(ROUTES), list(ROUTES)
    )
    try:
        for url in urls.values():
            wait_until(lambda url=url: requests.get(f"{url}/ready", timeout=2).ok, 60, what=f"{url} answers")
        yield App(deployment, urls, images, api_image, registry, first_deploy)
    finally:
        balancer.remove()
        deployment.remove()
        balancer_config.remove()


def task_ids(deployment: AppDeployment, *names: str) -> dict[str, set[str]]:
    return {name: {task["ID"] for task in deployment.tasks(name)} for name in names}


def applied_under_load(app: App, run, what: str) -> tuple[list[str], list[str]]:
    """`run` applied under RATE requests a second on each web route, its figures reported; the failures."""
    with steady_load(app.urls[8081], RATE, "/") as web, steady_load(app.urls[8082], RATE, "/") as admin:
        started = time.monotonic()
        app.deployment.apply(run, app.images)
        seconds = time.monotonic() - started
    report(
        f"compose app {what}: {seconds:.1f} s, web {web.total} requests {len(web.failures)} failed, "
        f"admin {admin.total} requests {len(admin.failures)} failed"
    )
    return web.failures, admin.failures


def test_each_service_answers_on_its_route_and_reaches_the_internal_one_by_name(app):
    web, admin = answer(app.urls[8081]), answer(app.urls[8082])
    assert (web["role"], web["version"], web["greeting"]) == ("web", "1", "first")
    assert web["upstream"]["role"] == "api"  # `api:8080` over the overlay, by its Compose name
    assert admin["role"] == "admin" and "greeting" not in admin  # only the services that name it get it
    # And the local stack's database, beside the file's services.
    assert sorted(app.deployment.services) == ["restdemo_admin", "restdemo_api", "restdemo_database", "restdemo_web"]


def test_the_first_deploy_against_docker_stack_deploy_of_the_same_file(app, tmp_path, swarm):
    """The same services, images and secret by `docker stack deploy -c` (endpoint mode dnsrr and no
    published port: this machine's kernel has no IPVS, docs/adr/0006), with the database a user of it
    would add by hand (the same image, environment and volume; its URL one file), timed to the same
    point: every replica running its spec."""
    loaded = yaml.safe_load(
        subprocess.run(
            ["docker", "stack", "config", "-c", str(APP / "compose.yaml")],
            env={**os.environ, "API_IMAGE": app.api_image},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    (tmp_path / "greeting.txt").write_text("first")
    for name, service in loaded["services"].items():
        build = service.pop("build", None)
        if build:
            service["image"] = app.images[f"{app.registry}/restdemo_{name}"]
        else:
            service["image"] = app.images[repository_of(service["image"] + "@")]
        service.pop("ports", None)
        service.setdefault("deploy", {})["endpoint_mode"] = "dnsrr"
    (tmp_path / "database_password.txt").write_text(DATABASE_PASSWORD)
    (tmp_path / "database_url.txt").write_text(f"postgresql://app:{DATABASE_PASSWORD}@database:5432/app")
    loaded["services"]["database"] = {
        "image": app.images[repository_of(database_image(app.registry) + "@")],
        "environment": {
            "POSTGRES_USER": "app",
            "POSTGRES_DB": "app",
            "POSTGRES_PASSWORD_FILE": "/run/secrets/database_password",
        },
        "secrets": ["database_password"],
        "volumes": ["database:/var/lib/postgresql/data"],
        "stop_signal": "SIGINT",
        "deploy": {"endpoint_mode": "dnsrr", "update_config": {"order": "stop-first"}},
    }
    loaded["secrets"] = {
        "greeting": {"file": str(tmp_path / "greeting.txt")},
        "database": {"file": str(tmp_path / "database_url.txt")},
        "database_password": {"file": str(tmp_path / "database_password.txt")},
    }
    loaded.setdefault("volumes", {})["database"] = {}
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump(loaded))
    started = time.monotonic()
    subprocess.run(["docker", "stack", "deploy", "-c", str(tmp_path / "stack.yaml"), "compared"], check=True)
    try:
        compared = AppDeployment(swarm, services={f"compared_{n}": f"compared_{n}" for n in loaded["services"]})
        for name in compared.services:
            wait_until(lambda name=name: compared.converged(name), 300, interval=0.5, what=f"{name} converged")
        stack_seconds = time.monotonic() - started
    finally:
        subprocess.run(["docker", "stack", "rm", "compared"], check=True, capture_output=True)
        # Its database's volume too, once its task is gone (the next run starts from an empty one).
        wait_until(
            lambda: compared._remove_volume("compared_database"), 90, interval=1, what="compared_database removed"
        )
    report(
        f"compose app first deploy: the program's services {app.first_deploy_seconds:.1f} s, "
        f"docker stack deploy -c {stack_seconds:.1f} s (ratio {app.first_deploy_seconds / stack_seconds:.2f})"
    )
    assert stack_seconds > 0


def notes(url: str) -> list[str]:
    response = requests.get(f"{url}/notes", timeout=5)
    response.raise_for_status()
    return response.json()["notes"]


def test_a_rollout_of_one_service_fails_no_request_and_restarts_no_other(app, swarm):
    """And its volume outlives its tasks: what a replica of release 1 wrote, release 2's replicas read
    (the notes volume, owned by the service's user as the image's /data is)."""
    others = task_ids(app.deployment, "restdemo_admin", "restdemo_api")
    written = [f"before the rollout {n}" for n in range(5)]
    for line in written:
        requests.post(f"{app.urls[8081]}/notes", data=line, timeout=5).raise_for_status()
    run = capture(app.registry, swarm, app.api_image, release="2")
    assert applied_under_load(app, run, "rollout of web") == ([], [])
    assert {answer(app.urls[8081])["version"] for _ in range(10)} == {"2"}
    assert task_ids(app.deployment, "restdemo_admin", "restdemo_api") == others
    assert all(notes(app.urls[8081]) == written for _ in range(4))  # every replica, each task new


def test_a_rotated_secret_reaches_every_replica_with_no_failed_request(app, swarm):
    others = task_ids(app.deployment, "restdemo_admin", "restdemo_api")
    run = capture(app.registry, swarm, app.api_image, greeting="second", release="2")
    assert applied_under_load(app, run, "secret rotated") == ([], [])
    assert {answer(app.urls[8081])["greeting"] for _ in range(10)} == {"second"}
    # The old secret is gone once no service names it; the new one is named by its content.
    (secret,) = [s.name for s in swarm.secrets.list() if s.name.startswith("restdemo_greeting_")]
    assert secret == next(r.inputs["name"] for r in run.of_type("docker:index/secret:Secret") if "greeting" in r.name)
    assert task_ids(app.deployment, "restdemo_admin", "restdemo_api") == others


def rows(url: str) -> list[str]:
    response = requests.get(f"{url}/rows", timeout=5)
    response.raise_for_status()
    return response.json()["rows"]


def test_a_rollout_of_the_service_that_keeps_rows_in_the_database_loses_no_row_and_fails_no_request(app, swarm):
    """admin reads /run/secrets/database_url (the program's files, the password the stack secret) and keeps
    rows in the local Postgres service; rolled out (start-first) while rows are written at 10 a second and
    read at 20, every row written is there after, from every new replica, and no request failed."""
    wait_until(lambda: requests.get(f"{app.urls[8082]}/rows", timeout=5).ok, 120, what="admin reaches the database")
    assert answer(app.urls[8082])["database"] == "database"
    written, failed = [], []
    stop = threading.Event()

    def write():
        number = 0
        while not stop.is_set():
            line = f"row {number}"
            try:
                response = requests.post(f"{app.urls[8082]}/rows", data=line, timeout=5)
                (written if response.status_code == 201 else failed).append(line if response.ok else response.text)
            except requests.RequestException as exc:
                failed.append(repr(exc))
            number += 1
            stop.wait(0.1)

    others = task_ids(app.deployment, "restdemo_web", "restdemo_api", "restdemo_database")
    # As the test before left it (web's release 2, the second greeting): only admin changes.
    run = capture(app.registry, swarm, app.api_image, greeting="second", release="2", admin_release="2")
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        with steady_load(app.urls[8082], RATE, "/rows") as readers:
            started = time.monotonic()
            app.deployment.apply(run, app.images)
            seconds = time.monotonic() - started
    finally:
        stop.set()
        writer.join(10)
    report(
        f"compose app rollout of admin with its database: {seconds:.1f} s, {len(written)} rows written "
        f"{len(failed)} failed, {readers.total} reads {len(readers.failures)} failed"
    )
    assert (failed, readers.failures) == ([], [])
    assert {answer(app.urls[8082])["version"] for _ in range(10)} == {"2"}
    assert written and all(rows(app.urls[8082])[-len(written) :] == written for _ in range(4))
    assert task_ids(app.deployment, "restdemo_web", "restdemo_api", "restdemo_database") == others
