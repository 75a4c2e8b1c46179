"""Who this node is: instance id, availability zone, private address (IMDSv2), unless the
environment says so (RESTDEMO_INSTANCE_ID, RESTDEMO_AVAILABILITY_ZONE, RESTDEMO_ADVERTISE_ADDR)."""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass

IMDS = "http://169.254.169.254/latest"


@dataclass(frozen=True)
class Identity:
    instance_id: str
    availability_zone: str
    address: str


def _imds(path: str, token: str) -> str:
    request = urllib.request.Request(f"{IMDS}/meta-data/{path}", headers={"X-aws-ec2-metadata-token": token})
    with urllib.request.urlopen(request, timeout=2) as answer:
        return answer.read().decode()


def identity(environ: dict[str, str] | None = None) -> Identity:
    environ = os.environ if environ is None else environ
    overrides = [
        environ.get(k) for k in ("RESTDEMO_INSTANCE_ID", "RESTDEMO_AVAILABILITY_ZONE", "RESTDEMO_ADVERTISE_ADDR")
    ]
    if all(overrides):
        return Identity(*overrides)
    request = urllib.request.Request(
        f"{IMDS}/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"}
    )
    with urllib.request.urlopen(request, timeout=2) as answer:
        token = answer.read().decode()
    return Identity(
        _imds("instance-id", token), _imds("placement/availability-zone", token), _imds("local-ipv4", token)
    )
