"""DomainCertificate: an ACM certificate for the stack's domain, validated through DNS records in its
Route 53 hosted zone, so the ALB's HTTPS listener serves a certificate that matches the name users
type (the ALB's own name matches no certificate of yours)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config.settings import SettingsView
from infra.config.tags import tags


@dataclass(frozen=True)
class CertificateSettings(SettingsView):
    """What `DomainCertificate` reads of the settings: the domain and the zone it is validated in."""

    owner: str | None
    domain_name: str | None
    hosted_zone_id: str | None


# Route 53's TTL for the validation records: ACM reads them once, and again at each renewal.
VALIDATION_TTL_SECONDS = 300


class DomainCertificate(pulumi.ComponentResource):
    """An ACM certificate for `settings.domain_name` and the `hosts` a Compose stack's routes name,
    validated by DNS in `settings.hosted_zone_id`.

    Takes:
        name: the certificate's resource name, and the prefix of its records' and its validation's.
        settings: its slice of the settings (domainName, hostedZoneId, tags).
        hosts: the other names it covers (subject alternative names); none by default.
        opts: resource options.

    Gives:
        certificate_arn: the certificate's ARN once ACM has issued it (the validation waited for), for
            the HTTPS listener.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: CertificateSettings,
        hosts: list[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("restdemo:network:DomainCertificate", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        hosts = [host for host in hosts or [] if host != settings.domain_name]
        certificate = aws.acm.Certificate(
            name,
            domain_name=settings.domain_name,
            subject_alternative_names=hosts or None,
            validation_method="DNS",
            tags=tags(settings, name),
            # Another domain replaces it, the new one issued first (Pulumi's create-before-delete), so
            # the listener always holds a certificate.
            opts=child,
        )
        records = self._validation_records(name, settings, certificate, [settings.domain_name, *hosts], child)
        validation = aws.acm.CertificateValidation(
            name,
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn for record in records],
            opts=child,
        )
        self.certificate_arn = validation.certificate_arn
        self.register_outputs({"certificate_arn": self.certificate_arn})

    def _validation_records(
        self,
        name: str,
        settings: CertificateSettings,
        certificate: aws.acm.Certificate,
        names: list[str],
        child: pulumi.ResourceOptions,
    ) -> list[aws.route53.Record]:
        """One CNAME per name on the certificate, as ACM asks for it (the domain's record keeps the
        resource name it always had)."""

        def option(domain: str, field: str) -> pulumi.Output[str]:
            return certificate.domain_validation_options.apply(
                lambda options: next(o for o in options if o["domain_name"] == domain)[field]
            )

        return [
            aws.route53.Record(
                f"{name}-validation" if domain == settings.domain_name else f"{name}-validation-{domain}",
                zone_id=settings.hosted_zone_id,
                name=option(domain, "resource_record_name"),
                type=option(domain, "resource_record_type"),
                records=[option(domain, "resource_record_value")],
                ttl=VALIDATION_TTL_SECONDS,
                # ACM gives every certificate for a name the same record: one left by an earlier
                # certificate for this domain is taken over, not a conflict.
                allow_overwrite=True,
                opts=child,
            )
            for domain in names
        ]
