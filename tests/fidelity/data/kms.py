"""KMS: keys and aliases.

Sources: terraform-provider-aws (tpa) internal/service/kms.
"""

from __future__ import annotations

from tests.fidelity.rules import Between, Field, Pattern

FIELDS = [
    Field(
        "aws:kms/alias:Alias",
        "name",
        Pattern(r"(?!alias/aws/)alias/[0-9A-Za-z_/-]+", 256),
        "tpa kms/validate.go aliasNameRegexPattern alias/[0-9A-Za-z_/-]+, not alias/aws/",
        "alias/aws/restdemo",
    ),
    Field("aws:kms/key:Key", "deletionWindowInDays", Between(7, 30), "tpa kms/key.go IntBetween(7, 30)", 6),
]
