"""AdminEndpoint: the swarm managers' Docker API over mutual TLS, through an NLB (open to
`adminCidrs` only, none by default) or a Session Manager port forward to a manager
(`adminAccess: session-manager`, the default; infra/admin/tunnel.py).

A CA, a server certificate (for the NLB's name and for 127.0.0.1, the tunnel's end) and a
client certificate, made with pulumi_tls. The server's material goes to SSM as SecureString
under the stack's own KMS key, for the managers to fetch at boot; their launch template
names the certificates' fingerprints, so a renewed certificate rolls them, one by one. The
client's stays in Pulumi state (secret) for the docker provider. The NLB's health check is
the node agent's readiness endpoint, so a manager takes API traffic only once it is in the
swarm (and the managers' group waits on it when it is created).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from infra.admin.tunnel import TUNNEL_ADDRESS
from infra.config.docker_endpoint import DockerEndpoint
from infra.config.settings import SettingsView
from infra.config.tags import tags
from infra.network.firewall import allow_in, allow_out, security_group
from infra.network.load_balancer import public_balancer
from infra.network.network import Network
from restdemo_agent.contract import DOCKER_TLS_PORT, READINESS_PORT, TLS_FILES, tls_parameter


@dataclass(frozen=True)
class AdminSettings(SettingsView):
    """What `AdminEndpoint` reads of the settings: who may reach the Docker API, and its CA's rotation."""

    owner: str | None
    admin_cidrs: list[IPv4Network]
    docker_api_ca_rotation: int
    deletion_protection: bool


CERT_VALIDITY_HOURS = 24 * 365
# A CA lasts a year at most: dockerd has no revocation list, so a CA key's reach ends only when it
# expires or leaves the managers' trust bundle.
CA_VALIDITY_HOURS = 24 * 365


def certificate_sha256(pem: str) -> str:
    """SHA-256 of a PEM certificate's DER (what `openssl x509 -outform DER | sha256sum` prints)."""
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    return hashlib.sha256(base64.b64decode(body, validate=True)).hexdigest()


def pem_sha256(pems: str) -> str:
    """Each certificate's SHA-256 in a PEM file of one or more, comma-separated in order: what the
    managers' setup checks (cloud-init's pem_sha256)."""
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pems, flags=re.S)
    return ",".join(certificate_sha256(block) for block in blocks)


@dataclass(frozen=True)
class CaPlan:
    """The Docker API's two certificate authorities at one step of their rotation: each slot's
    generation (a new generation is a new key and certificate), and the one that signs the server's
    and the client's certificates. Both are in every trust bundle."""

    generations: dict[str, int]
    active: str


def ca_plan(rotation: int) -> CaPlan:
    """Step `rotation` (dockerApiCaRotation) of the rotation, one `up` (and its managers' roll) each:
    an odd step renews the standby CA (the managers learn to trust it), the next even one makes it
    sign (the client and the servers move to it, each trusted by the other side throughout):
    0: A0 signs; 1: B1 made; 2: B1 signs; 3: A1 made; 4: A1 signs; 5: B2 made; ..."""
    return CaPlan(generations={"a": (rotation + 1) // 4, "b": (rotation + 3) // 4}, active="ab"[rotation // 2 % 2])


class AdminEndpoint(pulumi.ComponentResource):
    """The managers' Docker API over mutual TLS: its NLB, target group, certificates and their SSM parameters.

    Takes:
        name: the prefix of every child's name (the security group, NLB, target group and listener are `<name>`).
        settings: its slice of the settings (admin CIDRs, deletion protection, tags).
        network: the VPC, its CIDR (the managers' side) and the public subnets for the NLB.
        ssm_prefix: the SSM path the server's TLS material is stored under.
        secrets_key_id: the KMS key that encrypts that material.
        opts: resource options.

    Gives:
        tls_parameters: each TLS file's SSM parameter name ("ca", "cert", "key").
        parameters: the SSM parameters holding the CA and the server's certificate and key.
        certificate_sha256: the SHA-256 fingerprints of the CA and the server certificate ("ca", "cert").
        certificate_expires: when the server certificate expires.
        ca_expires: when the CA that signs now expires.
        dns_name: the NLB's DNS name.
        host: the Docker API's address through the NLB, `tcp://<dns_name>:2376`.
        target_group_arn: the NLB's target group, which the managers join.
        arn_suffix, target_group_arn_suffix: how CloudWatch's dimensions name the NLB and its target group.
        security_group_id: the NLB's security group.
        docker: the client's `DockerEndpoint` (NLB host, CA, client certificate and key).
    """

    def __init__(
        self,
        name: str,
        *,
        settings: AdminSettings,
        network: Network,
        ssm_prefix: str,
        secrets_key_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:admin:AdminEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group = self._security_group(name, settings, network, child)
        balancer = public_balancer(
            name, "network", settings, network, group, child, deletion_protection=settings.deletion_protection
        )
        target_group = self._target_group(name, settings, network, child)
        self._listener(name, settings, balancer, target_group, child)
        material = self._certificates(name, settings, balancer.dns_name, child)
        self.tls_parameters = {tls_file: tls_parameter(ssm_prefix, tls_file) for tls_file in TLS_FILES}
        self.parameters = self._server_parameters(name, settings, self.tls_parameters, secrets_key_id, material, child)
        self.certificate_sha256 = pulumi.Output.all(ca=material["ca"], cert=material["server_cert"]).apply(
            lambda pems: {tls_file: pem_sha256(pem) for tls_file, pem in pems.items()}
        )
        self.certificate_expires = material["server_expires"]
        self.ca_expires = material["ca_expires"]
        self.dns_name = balancer.dns_name
        self.host = balancer.dns_name.apply(lambda dns: f"tcp://{dns}:{DOCKER_TLS_PORT}")
        self.target_group_arn = target_group.arn
        self.arn_suffix, self.target_group_arn_suffix = balancer.arn_suffix, target_group.arn_suffix
        self.security_group_id = group.id
        self.docker = DockerEndpoint(
            host=self.host, ca_pem=material["ca"], cert_pem=material["client_cert"], key_pem=material["client_key"]
        )
        self.register_outputs({"host": self.host, "dns_name": self.dns_name})

    def _security_group(
        self, name: str, settings: AdminSettings, network: Network, child: pulumi.ResourceOptions
    ) -> aws.ec2.SecurityGroup:
        group = security_group(name, settings, network.vpc_id, "restdemo Docker API: admin CIDRs only", child)
        for index, cidr in enumerate(settings.admin_cidrs):
            allow_in(
                f"{name}-admin-{index}",
                settings,
                group,
                DOCKER_TLS_PORT,
                "Docker API (mutual TLS)",
                child,
                cidr=str(cidr),
            )
        for port in (DOCKER_TLS_PORT, READINESS_PORT):
            allow_out(
                f"{name}-to-managers-{port}",
                settings,
                group,
                network.vpc_cidr,
                "manager Docker API and agent readiness",
                child,
                port=port,
            )
        return group

    def _target_group(
        self, name: str, settings: AdminSettings, network: Network, child: pulumi.ResourceOptions
    ) -> aws.lb.TargetGroup:
        return aws.lb.TargetGroup(
            name,
            vpc_id=network.vpc_id,
            port=DOCKER_TLS_PORT,
            protocol="TCP",
            target_type="instance",
            preserve_client_ip="true",  # the managers' security group then sees the admin CIDRs
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                protocol="HTTP",
                port=str(READINESS_PORT),
                path="/ready",
                matcher="200",
                interval=10,
                healthy_threshold=2,
                unhealthy_threshold=2,
            ),
            tags=tags(settings, name),
            opts=child,
        )

    def _listener(
        self,
        name: str,
        settings: AdminSettings,
        balancer: aws.lb.LoadBalancer,
        target_group: aws.lb.TargetGroup,
        child: pulumi.ResourceOptions,
    ) -> None:
        aws.lb.Listener(
            name,
            load_balancer_arn=balancer.arn,
            port=DOCKER_TLS_PORT,
            protocol="TCP",
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)],
            tags=tags(settings, name),
            opts=child,
        )

    def _certificates(
        self, name: str, settings: AdminSettings, dns_name: pulumi.Output[str], child
    ) -> dict[str, pulumi.Output[str]]:
        """Two CAs (slots a and b, both trusted), the active one signing the server's and the client's
        certificates; each CA a year at most, rotated by dockerApiCaRotation (docs/operations.md)."""
        plan = ca_plan(settings.docker_api_ca_rotation)
        cas = {slot: self._ca(name, slot, generation, child) for slot, generation in plan.generations.items()}
        ca_key, ca = cas[plan.active]

        def signed(role: str, uses: list[str], dns_names=None, ip_addresses=None):
            key = tls.PrivateKey(f"{name}-{role}", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
            request = tls.CertRequest(
                f"{name}-{role}",
                private_key_pem=key.private_key_pem,
                dns_names=dns_names,
                ip_addresses=ip_addresses,
                subject=tls.CertRequestSubjectArgs(organization="restdemo", common_name=f"restdemo {role}"),
                opts=child,
            )
            cert = tls.LocallySignedCert(
                f"{name}-{role}",
                cert_request_pem=request.cert_request_pem,
                ca_private_key_pem=ca_key.private_key_pem,
                ca_cert_pem=ca.cert_pem,
                validity_period_hours=CERT_VALIDITY_HOURS,
                early_renewal_hours=24 * 30,
                allowed_uses=["digital_signature", "key_encipherment", *uses],
                opts=child,
            )
            return cert, pulumi.Output.secret(key.private_key_pem)

        # The NLB's name, and the local end of a Session Manager port forward (infra/admin/tunnel.py).
        server, server_key = signed("server", ["server_auth"], dns_names=[dns_name], ip_addresses=[TUNNEL_ADDRESS])
        client, client_key = signed("client", ["client_auth"])
        bundle = pulumi.Output.all(*(cas[slot][1].cert_pem for slot in sorted(cas))).apply("".join)
        return {
            "ca": bundle,
            "server_cert": server.cert_pem,
            "server_key": server_key,
            "client_cert": client.cert_pem,
            "client_key": client_key,
            "server_expires": server.validity_end_time,
            "ca_expires": ca.validity_end_time,
        }

    def _ca(self, name: str, slot: str, generation: int, child) -> tuple[tls.PrivateKey, tls.SelfSignedCert]:
        """One CA: a key and a self-signed certificate for a year, made anew for each generation (its
        replacement trigger). Slot a keeps the names of the one CA there was, so a stack's stays; a
        CA made before this kept its five years (validity is ignored after creation) until rotated."""
        resource = f"{name}-ca" if slot == "a" else f"{name}-ca-{slot}"
        trigger = pulumi.ResourceOptions(parent=self, replacement_trigger=f"{slot}{generation}" if generation else None)
        key = tls.PrivateKey(resource, algorithm="ECDSA", ecdsa_curve="P256", opts=trigger)
        # Slot a's first CA keeps the subject the one CA had (a change of subject would replace it).
        common_name = f"restdemo {pulumi.get_stack()} CA" + (
            f" {slot}{generation}" if slot != "a" or generation else ""
        )
        certificate = tls.SelfSignedCert(
            resource,
            private_key_pem=key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(organization="restdemo", common_name=common_name),
            validity_period_hours=CA_VALIDITY_HOURS,
            allowed_uses=["cert_signing", "crl_signing"],
            opts=pulumi.ResourceOptions.merge(trigger, pulumi.ResourceOptions(ignore_changes=["validityPeriodHours"])),
        )
        return key, certificate

    def _server_parameters(
        self,
        name: str,
        settings: AdminSettings,
        parameter_names: dict[str, str],
        secrets_key_id: pulumi.Input[str],
        material: dict[str, pulumi.Output[str]],
        child: pulumi.ResourceOptions,
    ) -> list[aws.ssm.Parameter]:
        """The server's TLS material as SecureStrings under the stack's key, for the managers to fetch at boot."""
        return [
            aws.ssm.Parameter(
                f"{name}-{key}",
                name=parameter_names[key],
                type="SecureString",
                key_id=secrets_key_id,
                value=value,
                description=f"restdemo Docker API TLS: {key}",
                tags=tags(settings),
                opts=child,
            )
            for key, value in (
                ("ca", material["ca"]),
                ("cert", material["server_cert"]),
                ("key", material["server_key"]),
            )
        ]
