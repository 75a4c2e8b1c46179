"""SQS: queues.

Sources: terraform-provider-aws (tpa) internal/service/sqs and the AWS SQS API reference.
"""

from __future__ import annotations

from tests.fidelity.rules import Between, Field, ForceNew, Pattern

FIELDS = [
    Field(
        "aws:sqs/queue:Queue",
        "name",
        Pattern(r"[0-9A-Za-z_-]{1,80}"),
        "tpa sqs/queue.go resourceQueueCustomizeDiff",
        "restdemo.dev.lifecycle",
    ),
    Field(
        "aws:sqs/queue:Queue",
        "visibilityTimeoutSeconds",
        Between(0, 43200),
        "tpa sqs/queue.go IntBetween(0, 43_200)",
        50000,
    ),
    Field(
        "aws:sqs/queue:Queue",
        "messageRetentionSeconds",
        Between(60, 1209600),
        "tpa sqs/queue.go IntBetween(60, 1_209_600)",
        30,
    ),
    Field(
        "aws:sqs/queue:Queue",
        "receiveWaitTimeSeconds",
        Between(0, 20),
        "AWS SQS SetQueueAttributes ReceiveMessageWaitTimeSeconds",
        30,
    ),
]


FORCE_NEW = [
    ForceNew("aws:sqs/queue:Queue", ("name", "fifoQueue"), "tpa sqs/queue.go: name, fifo_queue ForceNew"),
]
