"""Secrets kept in AWS (restdemo:awsSecrets), as the leader's agent serves them (ADR 0029).

A service whose secrets are kept in AWS Secrets Manager or SSM Parameter Store carries a label
(AWS_SECRETS_LABEL) saying which, and no secret references of the program's. The leader's agent reads
each value every `refresh` seconds, stores it as a Docker secret named by the value's hash (as the
program names its own), and writes the service's references to the current ones: a new value is a
rolling update of the services that mount it, with no `pulumi up`. Once no service refers to an
older Docker secret of the agent's it goes. This module decides; it makes no call.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from restdemo_agent.contract import (
    AWS_SECRET_ARN,
    AWS_SECRETS_LABEL,
    SECRET_SOURCE_LABEL,
    render_template,
    template_problem,
)

# The Docker secrets' name before the hash: `<serviceName>_<key>` (swarmkit's secret names: 64 at most,
# less the 13 characters the hash adds).
NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,49}[A-Za-z0-9])?")
NUMERIC = re.compile(r"\d{1,10}")
# A service being rolled out or back (or held paused, the operator's to resume): the agent neither
# updates it (its rollback target would become the agent's spec, not the deploy's) nor removes what its
# previous spec names.
UPDATING = ("updating", "paused", "rollback_started", "rollback_paused")
# A read that failed is tried again this soon (IAM still propagating, a throttled call), not a
# whole refresh later.
RETRY_SECONDS = 30
# The label as the program writes it is a few hundred bytes a secret; a longer one is not the program's.
LABEL_LIMIT = 16384
# The stack's own parameters (join tokens, the Docker API's TLS key), which the managers' role reads:
# never a service's secret, whatever a stack file or a label says.
STACK_PARAMETERS = ":parameter/restdemo/"
KEPT_HASH_PREFIX = b"restdemo kept in AWS\0"


@dataclass(frozen=True)
class KeptMount:
    """One secret a service mounts from AWS: `source` the ARN (with `#KEY`), `target` its file; or a
    file rendered from the source's JSON value by `template` (the database's, ADR 0030)."""

    name: str
    source: str
    target: str
    uid: str
    gid: str
    mode: int
    template: str | None = None

    @property
    def value_key(self) -> str:
        """What the agent reads, stores and delivers once for every mount that names it."""
        return self.source if self.template is None else f"{self.source}|{self.template}"


@dataclass(frozen=True)
class KeptService:
    id: str
    name: str
    refresh: int
    mounts: tuple[KeptMount, ...]


def kept_services(services: list[dict]) -> tuple[list[KeptService], dict[str, str]]:
    """The services that mount secrets kept in AWS, from their labels; and those whose label is not one
    the program writes (service name -> why), which keep the references they have."""
    found, refused = [], {}
    for service in services:
        spec = service.get("Spec") or {}
        label = (spec.get("Labels") or {}).get(AWS_SECRETS_LABEL)
        if label is None:
            continue
        try:
            if len(label) > LABEL_LIMIT:
                raise ValueError(f"the label is over {LABEL_LIMIT} characters")
            found.append(_kept_service(service["ID"], spec.get("Name", ""), label))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            refused[spec.get("Name", service["ID"])] = str(exc)[:300]
    return found, refused


def _kept_service(service_id: str, name: str, label: str) -> KeptService:
    document = json.loads(label)
    refresh = document["refresh"]
    if not isinstance(refresh, int) or not 10 <= refresh <= 3600:
        raise ValueError(f"refresh {refresh!r} is not 10 to 3600 seconds")
    mounts = []
    for entry in document["mounts"]:
        mount = KeptMount(
            name=entry["name"],
            source=entry["source"],
            target=entry["target"],
            uid=entry["uid"],
            gid=entry["gid"],
            mode=entry["mode"],
            template=entry.get("template"),
        )
        if not NAME.fullmatch(mount.name):
            raise ValueError(f"{mount.name!r} is no Docker secret name")
        if not AWS_SECRET_ARN.fullmatch(mount.source) or STACK_PARAMETERS in mount.source:
            raise ValueError(f"{mount.source!r} is no Secrets Manager secret's or SSM parameter's ARN of the app's")
        if mount.template is not None and (problem := template_problem(mount.template)):
            raise ValueError(f"{mount.name}: {problem}")
        if mount.template is not None and split_source(mount.source)[1] is not None:
            raise ValueError(f"{mount.name}: a template reads the whole JSON value, no #KEY")
        if not (isinstance(mount.target, str) and mount.target):
            raise ValueError(f"{mount.name}: no target")
        if not (NUMERIC.fullmatch(mount.uid) and NUMERIC.fullmatch(mount.gid)):
            raise ValueError(f"{mount.name}: uid and gid must be numeric")
        if isinstance(mount.mode, bool) or not isinstance(mount.mode, int) or not 0 <= mount.mode <= 0o777:
            raise ValueError(f"{mount.name}: mode must be 0 to 0o777")
        mounts.append(mount)
    if not mounts:
        raise ValueError("no mounts")
    return KeptService(service_id, name, refresh, tuple(mounts))


def due_sources(
    services: list[KeptService], read_at: dict[str, float], failed_at: dict[str, float], now: float
) -> dict[str, KeptMount]:
    """The values to read this pass (value key -> the first mount of it): never read, read longer ago
    than the shortest refresh of the services that mount it, or failed RETRY_SECONDS ago."""
    every: dict[str, int] = {}
    first: dict[str, KeptMount] = {}
    for service in services:
        for mount in service.mounts:
            every[mount.value_key] = min(every.get(mount.value_key, service.refresh), service.refresh)
            first.setdefault(mount.value_key, mount)
    return {
        value: first[value]
        for value in sorted(every)
        if now - read_at.get(value, -1e18) >= every[value]
        or (value in failed_at and now - failed_at[value] >= RETRY_SECONDS)
    }


def split_source(source: str) -> tuple[str, str | None]:
    """`arn#KEY` -> (arn, KEY); an ARN alone -> (arn, None)."""
    arn, _, key = source.partition("#")
    return arn, key or None


def value_of(raw: str | bytes, key: str | None) -> bytes:
    """The secret's bytes: the whole value, or one key of a JSON object (an RDS master secret's
    `password`). Raises ValueError naming what is missing, never showing the value."""
    data = raw.encode() if isinstance(raw, str) else raw
    if key is None:
        if not data:
            raise ValueError("the value is empty, which swarm keeps no secret of")
        return data
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise ValueError(f"the value is not a JSON object, so it has no key {key}") from None
    if not isinstance(document, dict) or key not in document:
        raise ValueError(f"the value has no key {key}")
    found = document[key]
    if isinstance(found, str) and found:
        return found.encode()
    if isinstance(found, int) and not isinstance(found, bool):
        return str(found).encode()  # a port
    raise ValueError(f"the value's {key} is not a non-empty string or a whole number")


def mounted_value(raw: str | bytes, mount: KeptMount) -> bytes:
    """What `mount`'s file holds, from its source's value as stored (`raw`)."""
    if mount.template is not None:
        return rendered(raw, mount.template)
    return value_of(raw, split_source(mount.source)[1])


def rendered(raw: str | bytes, template: str) -> bytes:
    """`template` filled from the keys of a JSON value (an RDS master secret's `username` and
    `password`). Raises ValueError naming what is missing, never showing the value."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError("the value is not a JSON object, which a template reads") from None
    if not isinstance(document, dict):
        raise ValueError("the value is not a JSON object, which a template reads")
    values = {
        key: str(value)
        for key, value in document.items()
        if (isinstance(value, str) and value) or (isinstance(value, int) and not isinstance(value, bool))
    }
    try:
        return render_template(template, values).encode()
    except KeyError as missing:
        raise ValueError(f"the value has no key {missing.args[0]} (a non-empty string or a whole number)") from None


def stored_name(name: str, value: bytes) -> str:
    """The Docker secret holding `value`: `<name>_<12 hex digits of a hash of it>`, a new value a new
    secret, as the program names its own (infra/config/names.py content_name) but hashed apart from
    them: a secret moved from restdemo:secrets to AWS with its value is not the program's object."""
    digest = hashlib.sha256(KEPT_HASH_PREFIX + value).hexdigest()
    return f"{name}_{digest[:12]}"


def references(
    service: KeptService, stored: dict[str, tuple[str, str]], live: list[dict] | None = None
) -> list[dict] | None:
    """The service's secret references as the Engine API takes them, to the Docker secret now holding
    each value (`stored`: value key -> (id, name)); a value not read (yet, or now) keeps the
    reference the service has to that file (`live`). None while a file has neither."""
    had = {(reference.get("File") or {}).get("Name"): reference for reference in live or []}
    wanted = []
    for mount in service.mounts:
        file = {"Name": mount.target, "UID": mount.uid, "GID": mount.gid, "Mode": mount.mode}
        if mount.value_key in stored:
            secret_id, secret_name = stored[mount.value_key]
            wanted.append({"File": file, "SecretID": secret_id, "SecretName": secret_name})
        elif mount.target in had:
            wanted.append({**had[mount.target], "File": file})
        else:
            return None
    return wanted


@dataclass(frozen=True)
class Rejected:
    """A service's references swarm rolled back after the agent rolled them out: which, when, how many
    times in a row."""

    references: tuple
    at: float
    times: int


# A value swarm rolled back is tried again after this, doubled each time it is rolled back again, up to
# MAX_BACKOFF_SECONDS: a failure that passed (a node lost mid-rollout) heals by itself; one that does
# not (a wrong value, a task killed on purpose) costs a rollout now and then, not every round.
BACKOFF_SECONDS = 900
MAX_BACKOFF_SECONDS = 4 * 3600


def backoff(times: int) -> int:
    return min(BACKOFF_SECONDS * 2 ** (times - 1), MAX_BACKOFF_SECONDS)


def rejected_lately(rejected: Rejected | None, wanted: tuple, now: float) -> bool:
    """Whether `wanted` is what swarm rolled back, and its backoff has not passed."""
    return rejected is not None and rejected.references == wanted and now - rejected.at < backoff(rejected.times)


def _key(reference: dict) -> tuple:
    file = reference.get("File") or {}
    return (reference.get("SecretName"), file.get("Name"), file.get("UID"), file.get("GID"), file.get("Mode"))


def references_key(references: list[dict] | None) -> tuple:
    """Secret references compared as a set (swarm keeps no order)."""
    return tuple(sorted(map(_key, references or []), key=str))


def differs(current: list[dict] | None, wanted: list[dict]) -> bool:
    """Whether the spec's references are other than `wanted`."""
    return references_key(current) != references_key(wanted)


def unused(secrets: list[dict], services: list[dict], keep: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The agent's Docker secrets (labelled SECRET_SOURCE_LABEL) no service refers to: not its spec, nor,
    while it is rolled out or back, its previous spec; nor those in `keep` (each mounted source's
    current value, which a service held in an update does not name yet). Ids, for removal."""
    used = set()
    for service in services:
        specs = [service.get("Spec") or {}]
        if ((service.get("UpdateStatus") or {}).get("State")) in UPDATING:
            specs.append(service.get("PreviousSpec") or {})
        for spec in specs:
            container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
            used |= {reference.get("SecretID") for reference in container.get("Secrets") or []}
    return sorted(
        secret["ID"]
        for secret in secrets
        if SECRET_SOURCE_LABEL in ((secret.get("Spec") or {}).get("Labels") or {})
        and secret["ID"] not in used | set(keep)
    )
