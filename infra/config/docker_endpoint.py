"""DockerEndpoint: where a swarm's Docker API is, as the docker provider takes it. Made by the admin
endpoint (AWS) or from the settings (local), used by the service component: so it lives below both."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker


@dataclass(frozen=True)
class DockerEndpoint:
    """Where the swarm's Docker API is; TLS material for a remote (AWS) swarm."""

    host: pulumi.Input[str]
    ca_pem: pulumi.Input[str] | None = None
    cert_pem: pulumi.Input[str] | None = None
    key_pem: pulumi.Input[str] | None = None
    # The login the provider sends with the service (`--with-registry-auth`): swarm stores it for its
    # nodes' pulls. A pull-only one (`PullCredentials`); never in docker.Service.auth (infra/service/service.py).
    registry_auth: docker.ProviderRegistryAuthArgs | None = None
