"""infra/service/database.py: the local stack's Postgres service, and the files its app's services read
(ADR 0030), under mocks."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from infra.config.names import content_name
from tests.support.stack_variants import DATABASE_PASSWORD, compose_app_run

pytestmark = pytest.mark.unit

PARTS = ("url", "host", "port", "name", "user", "password")


def services(run) -> dict[str, dict]:
    return {r.inputs["name"]: r.inputs for r in run.of_type("docker:index/service:Service")}


def test_the_local_database_is_one_postgres_task_on_its_volume_stopped_before_the_next_starts():
    database = services(compose_app_run())["restdemo_database"]
    container = database["taskSpec"]["containerSpec"]
    image = "postgres:16.6-bookworm"
    assert container["image"] == f"{image}@sha256:" + hashlib.sha256(image.encode()).hexdigest()
    assert container["env"] == {
        "POSTGRES_USER": "app",
        "POSTGRES_DB": "app",
        "POSTGRES_PASSWORD_FILE": "/run/secrets/database_password",
    }
    assert container["healthcheck"]["tests"] == ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", "app"]
    assert (container["stopSignal"], container["stopGracePeriod"]) == ("SIGINT", "30s")
    (volume,) = container["mounts"]
    assert (volume["type"], volume["source"], volume["target"]) == (
        "volume",
        "restdemo_database",
        "/var/lib/postgresql/data",
    )
    assert [s["fileName"] for s in container["secrets"]] == ["/run/secrets/database_password"]
    assert database["mode"] == {"replicated": {"replicas": 1}}
    assert (database["updateConfig"]["order"], database["rollbackConfig"]["order"]) == ("stop-first", "stop-first")
    # Reached as `database` on the stack's network, as the file's services are by theirs.
    assert database["taskSpec"]["networksAdvanceds"] == [{"aliases": ["database"], "id": "restdemo-network-id"}]


def test_admin_reads_the_url_and_its_parts_as_files_the_password_never_in_clear_text():
    run = compose_app_run()
    stored = {
        r.inputs["name"]: base64.b64decode(r.inputs["data"]).decode()
        for r in run.of_type("docker:index/secret:Secret")
        if "database" in r.name
    }
    expected = {
        "url": "postgresql://app:local-database-p%40ss@database:5432/app",
        "host": "database",
        "port": "5432",
        "name": "app",
        "user": "app",
        "password": DATABASE_PASSWORD,
    }
    assert stored == {
        content_name("restdemo", f"database_{part}", value.encode()): value for part, value in expected.items()
    }
    admin = services(run)["restdemo_admin"]["taskSpec"]["containerSpec"]
    assert sorted(s["fileName"] for s in admin["secrets"]) == sorted(f"/run/secrets/database_{p}" for p in PARTS)
    assert "database" not in json.dumps(services(run)["restdemo_web"]["taskSpec"]["containerSpec"].get("secrets"))
    # Neither the password nor the URL that holds it is in any input that is not secret, or an output.
    clear = [r.name for r in run.registered if ("local-database-p" in json.dumps(r.inputs)) and not r.secret_paths]
    assert clear == [] and "local-database-p" not in json.dumps(run.outputs)
    assert all("data" in r.secret_paths for r in run.of_type("docker:index/secret:Secret"))
