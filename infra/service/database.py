"""The local stack's database (restdemo:database, ADR 0030): a Postgres service on the swarm.

On AWS the database is RDS (infra/data/database.py); on the local stack it is one more service beside
the Compose file's, as Kamal runs an accessory: `<serviceName>_database`, reached as `database` on
every network of the app, its data in the named volume `<serviceName>_database`, its password the
stack secret `database` (mounted as the file its image reads, never in its environment).
"""

from __future__ import annotations

from infra.config.compose import ComposeApp, Mount, Rollout, VolumeMount
from infra.config.database import DATABASE_NAME, DATABASE_USER, LOCAL_SERVICE, POSTGRES_PORT
from infra.config.image_contract import HealthCheck
from infra.config.names import swarm_object_name
from infra.config.settings import Settings
from infra.service.service import (
    DEFAULT_NETWORK,
    ServiceUnit,
    placement,
    resources,
    rollback_config,
    update_config,
)
from infra.service.volumes import UnitVolume

# Where the official image (and the tests' one, which reads the same environment) keeps its data.
DATA_DIRECTORY = "/var/lib/postgresql/data"
PASSWORD_FILE = "/run/secrets/database_password"
# One task on one volume: the old one stops before the new one starts (two servers on one data
# directory corrupt it), in an update and in a rollback.
ONE_AT_A_TIME = Rollout(parallelism=1, order="stop-first")
# A fast shutdown (the official image's STOPSIGNAL): SIGTERM is Postgres's smart shutdown, which waits
# for every client to leave, past the grace period, into a SIGKILL and a recovery at the next start.
STOP_SIGNAL = "SIGINT"
STOP_GRACE_SECONDS = 30.0


def local_database_unit(name: str, settings: Settings, app: ComposeApp, database_key: str) -> ServiceUnit:
    """The Postgres service: the official image by default (databaseImage), pinned by digest at deploy;
    ready once it accepts connections (pg_isready)."""
    return ServiceUnit(
        resource=f"{name}-{LOCAL_SERVICE}",
        name=swarm_object_name(settings.service_name, LOCAL_SERVICE),
        short_name=LOCAL_SERVICE,
        image=settings.database_image,
        prebuilt=True,
        replicas=1,
        env={
            "POSTGRES_USER": DATABASE_USER,
            "POSTGRES_DB": DATABASE_NAME,
            "POSTGRES_PASSWORD_FILE": PASSWORD_FILE,
        },
        healthcheck=HealthCheck(
            test=["CMD", "pg_isready", "-h", "127.0.0.1", "-p", str(POSTGRES_PORT), "-U", DATABASE_USER],
            interval=2.0,
            timeout=5.0,
            start_period=60.0,
            retries=5,
        ),
        ports=[],
        update=update_config(settings, ONE_AT_A_TIME),
        rollback=rollback_config(settings, ONE_AT_A_TIME),
        resources=resources(settings),
        placement=placement(settings),
        stop_grace_period=max(settings.stop_grace_period, STOP_GRACE_SECONDS),
        stop_signal=STOP_SIGNAL,
        networks={DEFAULT_NETWORK: [], **{network: [] for network in app.networks}},
        aliases=True,
        secrets=[Mount(source=f"{database_key}_password", target=PASSWORD_FILE)],
        volumes=[UnitVolume(mount=VolumeMount(source=LOCAL_SERVICE, target=DATA_DIRECTORY))],
    )
