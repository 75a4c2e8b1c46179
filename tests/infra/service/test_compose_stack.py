"""A Compose file's services on the local stack: each a swarm service as `docker stack deploy <serviceName>`
would make it, built ones pushed to the stack's registry, prebuilt ones pinned by digest, secrets named
by their content and never in clear text."""

from __future__ import annotations

import json

import pytest

from infra.config.settings import PROJECT_DIR
from tests.support.pulumi_program import run_program
from tests.support.stack_variants import DATABASE_PASSWORD

pytestmark = pytest.mark.unit

COMPOSE = PROJECT_DIR / "tests" / "e2e" / "compose_app" / "compose.yaml"
API_IMAGE = "127.0.0.1:5000/tests/api:1"
READY = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/ready', timeout=1)"
GREETING = "hello from the stack's secrets"


def compose_run(greeting: str = GREETING, **more: str):
    config = {
        "restdemo:composeFile": [str(COMPOSE)],
        "restdemo:secrets": [f"greeting={greeting}", f"database={DATABASE_PASSWORD}"],
        "restdemo:database": "postgres",
        "restdemo:healthCheckPath": "/ready",
        **more,
    }
    return run_program("local", config, secret_keys=["restdemo:secrets"])


@pytest.fixture(autouse=True)
def api_image(monkeypatch):
    monkeypatch.setenv("API_IMAGE", API_IMAGE)
    monkeypatch.delenv("RELEASE", raising=False)


def services(run) -> dict[str, dict]:
    return {r.inputs["name"]: r.inputs for r in run.registered if r.type == "docker:index/service:Service"}


def test_each_compose_service_is_a_swarm_service_named_as_docker_stack_deploy_would():
    run = compose_run()
    found = services(run)
    # And the local database's (restdemo:database), beside the file's.
    assert sorted(found) == ["restdemo_admin", "restdemo_api", "restdemo_database", "restdemo_web"]
    web = found["restdemo_web"]
    container = web["taskSpec"]["containerSpec"]
    assert container["image"].startswith("127.0.0.1:5000/restdemo_web:") and "@sha256:" in container["image"]
    assert container["env"] == {"ROLE": "web", "RELEASE": "1", "UPSTREAM": "api:8080", "NOTES": "/data/notes"}
    assert web["endpointSpec"]["ports"] == [
        {"protocol": "tcp", "publishMode": "ingress", "publishedPort": 8081, "targetPort": 8080}
    ]
    assert web["mode"] == {"replicated": {"replicas": 2}}
    assert web["updateConfig"] == {
        "delay": "1s",
        "failureAction": "rollback",
        "maxFailureRatio": "0",
        "monitor": "5s",
        "order": "start-first",
        "parallelism": 1,
    }
    assert container["stopGracePeriod"] == "10s"
    # The image's own HEALTHCHECK, as its Dockerfile writes it: stated, so a previous check is not kept.
    assert container["healthcheck"] == {
        "interval": "2s",
        "retries": 2,
        "startPeriod": "5s",
        "tests": ["CMD", "python3", "-c", READY],
        "timeout": "2s",
    }
    network = next(r for r in run.registered if r.type == "docker:index/network:Network")
    assert network.inputs["name"] == "restdemo" and network.inputs["attachable"] is True
    assert web["taskSpec"]["networksAdvanceds"] == [{"aliases": ["web"], "id": "restdemo-network-id"}]
    assert run.outputs["urls"] == {"admin": "http://localhost:8082", "web": "http://localhost:8081"}
    assert run.outputs["url"] == "http://localhost:8082"
    assert run.outputs["services"] == {
        "restdemo-admin": "restdemo_admin",
        "restdemo-api": "restdemo_api",
        "restdemo-web": "restdemo_web",
        "restdemo-database": "restdemo_database",
    }


def test_a_prebuilt_image_is_pinned_by_the_digest_its_registry_gives():
    run = compose_run()
    api = services(run)["restdemo_api"]["taskSpec"]["containerSpec"]
    asked = [args for token, args in run.calls if token == "docker:index/getRegistryImage:getRegistryImage"]
    assert sorted(a["name"] for a in asked) == [API_IMAGE, "postgres:16.6-bookworm"]  # and the database's
    assert api["image"] == f"{API_IMAGE}@sha256:" + __import__("hashlib").sha256(API_IMAGE.encode()).hexdigest()
    builds = sorted(r.name for r in run.registered if r.type == "docker-build:index:Image")
    assert builds == ["image-admin", "image-web"]


def test_a_secret_is_named_by_its_content_mounted_where_compose_says_and_never_in_clear_text():
    run = compose_run()
    secret = next(r for r in run.registered if r.type == "docker:index/secret:Secret")
    digest = __import__("hashlib").sha256(GREETING.encode()).hexdigest()[:12]
    assert secret.inputs["name"] == f"restdemo_greeting_{digest}"
    assert "data" in secret.secret_paths
    mounted = services(run)["restdemo_web"]["taskSpec"]["containerSpec"]["secrets"]
    assert mounted == [
        {
            "fileGid": "0",
            "fileMode": 292,
            "fileName": "/run/secrets/greeting",
            "fileUid": "0",
            "secretId": f"restdemo-secret-greeting-{digest}-id",
            "secretName": f"restdemo_greeting_{digest}",
        }
    ]
    clear = [r.name for r in run.registered if GREETING in json.dumps(r.inputs) and not r.secret_paths]
    assert clear == []
    assert GREETING not in json.dumps(run.outputs)


def test_a_new_secret_value_changes_the_services_that_mount_it_and_no_other():
    first, second = compose_run(), compose_run(greeting="a new greeting")
    before, after = services(first), services(second)
    changed = sorted(name for name in before if before[name] != after[name])
    assert changed == ["restdemo_web"]
    # Another resource, not the same one renamed: the old stays until an `up` has moved the service.
    secrets = [
        {r.name for r in run.registered if r.type == "docker:index/secret:Secret" and "greeting" in r.name}
        for run in (first, second)
    ]
    assert len(secrets[0] | secrets[1]) == 2


def test_a_change_to_one_service_in_an_overlay_leaves_the_others_as_they_were(tmp_path):
    overlay = tmp_path / "more.yaml"
    overlay.write_text("services:\n  admin:\n    environment: {RELEASE: '2'}\n")
    before = services(compose_run())
    after = services(compose_run(**{"restdemo:composeFile": [str(COMPOSE), str(overlay)]}))
    assert sorted(name for name in before if before[name] != after[name]) == ["restdemo_admin"]


def test_restart_policy_and_replicas_per_node_are_the_files(tmp_path):
    overlay = tmp_path / "more.yaml"
    overlay.write_text(
        "services:\n  admin:\n    deploy:\n"
        "      restart_policy: {condition: on-failure, delay: 30s, max_attempts: 3, window: 2m}\n"
        "      placement: {max_replicas_per_node: 1, constraints: [node.role==manager]}\n"
    )
    admin = services(compose_run(**{"restdemo:composeFile": [str(COMPOSE), str(overlay)]}))["restdemo_admin"]
    assert admin["taskSpec"]["restartPolicy"] == {
        "condition": "on-failure",
        "delay": "30s",
        "maxAttempts": 3,
        "window": "2m",
    }
    assert admin["taskSpec"]["placement"] == {"constraints": ["node.role==manager"], "maxReplicas": 1}


def test_prebuilt_images_are_resolved_through_the_swarms_provider_with_their_registrys_login(tmp_path):
    overlay = tmp_path / "more.yaml"
    overlay.write_text(
        "services:\n  cache:\n    image: ghcr.io/example/cache:2\n"
        "    healthcheck: {test: [CMD, /bin/check]}\n"
        "  pinned:\n    image: ghcr.io/example/pinned@sha256:" + "a" * 64 + "\n"
        "    healthcheck: {test: [CMD, /bin/check]}\n"
    )
    run = run_program(
        "local",
        {
            "restdemo:composeFile": [str(COMPOSE), str(overlay)],
            "restdemo:secrets": [f"greeting={GREETING}", f"database={DATABASE_PASSWORD}"],
            "restdemo:database": "postgres",
            "restdemo:registryLogins": ["ghcr.io=bot:ghp_not_in_clear"],
        },
        secret_keys=["restdemo:secrets", "restdemo:registryLogins"],
    )
    provider = run.one("pulumi:providers:docker")
    assert json.loads(provider.inputs["registryAuth"]) == [
        {"address": "http://127.0.0.1:5000", "authDisabled": True},
        {"address": "https://ghcr.io", "password": "ghp_not_in_clear", "username": "bot"},
    ]
    # A provider's structured inputs go as JSON text: the whole of it is kept secret.
    assert "registryAuth" in provider.secret_paths
    asked = [
        (args["name"], urn.split("::")[-2])
        for (token, args), (_, urn) in zip(run.calls, run.call_providers, strict=True)
        if token == "docker:index/getRegistryImage:getRegistryImage"
    ]
    # Through the swarm's provider, which holds the logins; an image already pinned is not asked for.
    assert sorted(asked) == [
        ("127.0.0.1:5000/tests/api:1", "restdemo-swarm"),
        ("ghcr.io/example/cache:2", "restdemo-swarm"),
        ("postgres:16.6-bookworm", "restdemo-swarm"),  # the local database's image
    ]
    assert services(run)["restdemo_pinned"]["taskSpec"]["containerSpec"]["image"].endswith("a" * 64)
    assert "ghp_not_in_clear" not in json.dumps(run.outputs)


def test_a_compose_network_is_named_by_its_definition(tmp_path):
    overlay = tmp_path / "more.yaml"
    overlay.write_text("services:\n  api:\n    networks: [back]\nnetworks:\n  back: {internal: true}\n")
    run = compose_run(**{"restdemo:composeFile": [str(COMPOSE), str(overlay)]})
    back = next(r for r in run.registered if r.name == "restdemo-network-back")
    assert (back.inputs["name"], back.inputs["internal"], back.inputs["driver"]) == (
        "restdemo_back_internal",
        True,
        "overlay",
    )
    api = services(run)["restdemo_api"]["taskSpec"]["networksAdvanceds"]
    assert api == [{"aliases": ["api"], "id": "restdemo-network-back-id"}]


def test_a_build_secret_reaches_buildkit_as_a_secret_and_changes_no_tag(tmp_path):
    overlay = tmp_path / "more.yaml"
    overlay.write_text("services:\n  web:\n    build: {secrets: [{source: greeting, target: token}]}\n")
    runs = [
        compose_run(greeting=value, **{"restdemo:composeFile": [str(COMPOSE), str(overlay)]})
        for value in (GREETING, "another value")
    ]
    builds = [run.named("docker-build:index:Image", "image-web") for run in runs]
    assert builds[0].inputs["secrets"] == {"token": GREETING}
    assert "secrets" in builds[0].secret_paths  # the map the value is in, kept secret whole
    assert builds[0].inputs["ignoreSecretsInDiffCalculation"] == ["ca_bundle", "token"]
    # Not in the tag: a new value alone rebuilds nothing and pushes no tag twice.
    assert builds[0].inputs["tags"] == builds[1].inputs["tags"]
    assert GREETING not in json.dumps([r.inputs for r in runs[0].registered if not r.secret_paths])
