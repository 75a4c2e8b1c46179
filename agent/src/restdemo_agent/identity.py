"""Who this node is: instance id, availability zone, private address (IMDSv2), unless the
environment says so (RESTDEMO_INSTANCE_ID, RESTDEMO_AVAILABILITY_ZONE, RESTDEMO_ADVERTISE_ADDR);
and `Metadata`, what the instance metadata says later (a spot interruption notice)."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from restdemo_agent.contract import METADATA_URL as IMDS


@dataclass(frozen=True)
class Identity:
    instance_id: str
    availability_zone: str
    address: str


def _imds(path: str, token: str) -> str:
    request = urllib.request.Request(f"{IMDS}/meta-data/{path}", headers={"X-aws-ec2-metadata-token": token})
    with urllib.request.urlopen(request, timeout=2) as answer:
        return answer.read().decode()


class Metadata:
    """IMDSv2 at `base` (the instance's, or the lab's stand-in): a session token, renewed before
    it expires, and documents that may not exist yet (404 is None)."""

    TOKEN_SECONDS = 21600  # IMDSv2's longest token

    def __init__(self, base: str = IMDS):
        self.base = base.rstrip("/")
        self.token, self.token_until = "", 0.0

    def _token(self) -> str:
        if time.monotonic() >= self.token_until:
            request = urllib.request.Request(
                f"{self.base}/api/token",
                method="PUT",
                headers={"X-aws-ec2-metadata-token-ttl-seconds": str(self.TOKEN_SECONDS)},
            )
            with urllib.request.urlopen(request, timeout=2) as answer:
                self.token = answer.read().decode()
            self.token_until = time.monotonic() + self.TOKEN_SECONDS / 2
        return self.token

    def get(self, path: str) -> str | None:
        request = urllib.request.Request(
            f"{self.base}/meta-data/{path}", headers={"X-aws-ec2-metadata-token": self._token()}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                return answer.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code == 401:  # the token expired early (the instance's clock): a new one next time
                self.token_until = 0.0
            raise


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
