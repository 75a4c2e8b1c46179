"""IAM: roles.

Sources: terraform-provider-aws (tpa) internal/service/iam.
"""

from __future__ import annotations

from tests.fidelity.rules import Field, Pattern

FIELDS = [
    Field(
        "aws:iam/role:Role",
        "name",
        Pattern(r"[\w+=,.@-]{1,64}", 64),
        "tpa iam/role.go name validResourceName(roleNameMaxLen = 64), [\\w+=,.@-]",
        "restdemo-" + "s" * 50 + "-manager-node",
    ),
]
