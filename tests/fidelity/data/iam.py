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
    Field(
        "aws:iam/role:Role",
        "description",
        Pattern(r"[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]{0,1000}", 1000),
        "IAM API CreateRole Description (0-1000, the printable Latin-1 pattern); tpa iam/role.go description",
        "restdemo \u2014 pulls",
    ),
]
