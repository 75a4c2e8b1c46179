"""DynamoDB: tables.

Sources: terraform-provider-aws (tpa) internal/service/dynamodb and AWS DynamoDB's naming rules.
"""

from __future__ import annotations

from tests.fidelity.rules import Field, ForceNew, Pattern

FIELDS = [
    Field(
        "aws:dynamodb/table:Table",
        "name",
        Pattern(r"[a-zA-Z0-9_.-]{3,255}"),
        "AWS DynamoDB naming rules",
        "restdemo/dev",
    ),
]


FORCE_NEW = [
    ForceNew("aws:dynamodb/table:Table", ("name", "hashKey"), "tpa dynamodb/table.go: name, hash_key ForceNew"),
]
