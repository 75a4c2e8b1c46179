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
    # The registries prebuilt images come from: their logins (registryLogins), or for a loopback
    # registry plain HTTP (`registry_login_for`); the provider resolves their digests with them.
    logins: tuple[docker.ProviderRegistryAuthArgs, ...] = ()


# Hosts whose registry Docker reaches over plain HTTP without being told (an insecure registry by default).
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def registry_of(image: str) -> str:
    """An image reference's registry host[:port] (Docker's rule: a first part with a dot or a colon, or
    localhost), or docker.io."""
    first, slash, _ = image.partition("/")
    return first if slash and ("." in first or ":" in first or first == "localhost") else "docker.io"


def registry_login_for(server: str, logins: dict[str, tuple[str, str]]) -> docker.ProviderRegistryAuthArgs | None:
    """The provider's registry_auth entry for `server`: its login (the password a secret); for a loopback
    registry without one, plain HTTP with no login, since the provider otherwise asks https://
    (kreuzwerker data_source_docker_registry_image.go: ServerAddress "https://" + registry when no entry
    matches; normalizeRegistryAddress keeps an http:// address as given). None: nothing to add."""
    if server in logins:
        username, password = logins[server]
        return docker.ProviderRegistryAuthArgs(
            address=f"https://{server}", username=username, password=pulumi.Output.secret(password)
        )
    if server.rpartition(":")[0] in LOOPBACK or server in LOOPBACK:
        return docker.ProviderRegistryAuthArgs(address=f"http://{server}", auth_disabled=True)
    return None
