"""SNS: topics.

Sources: terraform-provider-aws (tpa) internal/service/sns.

Not here: the alarm e-mail subscription (`aws:sns/topicSubscription:TopicSubscription`) is registered
only when restdemo:alarmEmail is set, which no stack file does, so a rule on it would check nothing.
"""

from __future__ import annotations

from tests.fidelity.rules import Field, ForceNew, Pattern

TOPIC = "aws:sns/topic:Topic"

FIELDS = [
    Field(
        TOPIC,
        "name",
        # The program sends no fifoTopic; a FIFO topic's name would be ^[0-9A-Za-z_-]{1,251}\.fifo$.
        Pattern(r"[0-9A-Za-z_-]{1,256}"),
        "tpa sns/topic.go resourceTopicCustomizeDiff ^[0-9A-Za-z_-]{1,256}$ (standard topic)",
        "restdemo.dev.alarms",
    ),
]


FORCE_NEW = [
    ForceNew(TOPIC, ("name", "fifoTopic"), "tpa sns/topic.go: name, fifo_topic ForceNew"),
]
