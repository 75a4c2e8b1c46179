"""CloudWatch Logs: log groups.

Sources: terraform-provider-aws (tpa) internal/service/logs.
"""

from __future__ import annotations

from tests.fidelity.rules import Field, ForceNew, OneOf, Pattern

FIELDS = [
    Field(
        "aws:cloudwatch/logGroup:LogGroup",
        "name",
        Pattern(r"[0-9A-Za-z_./#-]{1,512}"),
        "tpa logs/validate.go validLogGroupName",
        "/restdemo/dev stack",
    ),
    Field(
        "aws:cloudwatch/logGroup:LogGroup",
        "retentionInDays",
        OneOf(
            (0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
        ),
        "tpa logs/group.go IntInSlice",
        10,
    ),
    Field(
        "aws:cloudwatch/logGroup:LogGroup",
        "logGroupClass",
        OneOf(("STANDARD", "INFREQUENT_ACCESS", "DELIVERY")),
        "CloudWatch Logs API CreateLogGroup logGroupClass; tpa logs/group.go log_group_class (StringInSlice)",
        "INFREQUENT",
    ),
]


FORCE_NEW = [
    ForceNew(
        "aws:cloudwatch/logGroup:LogGroup",
        ("name", "logGroupClass"),
        "tpa logs/group.go: name ForceNew; log_group_class ForceNew (CreateLogGroup: \"can't be changed after a log "
        'group is created")',
    ),
]
