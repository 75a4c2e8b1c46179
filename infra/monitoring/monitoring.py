"""Monitoring: every AWS stack's alarm topic, alarms, Auto Scaling event rules and dashboard.

The topic is the stack's own, encrypted under its own KMS key (CloudWatch alarms cannot publish
to a topic under the AWS-managed aws/sns key), or an existing one (`alarmTopicArn`); an e-mail
address may be subscribed (`alarmEmail`). Alarms notify it when they fire and when they are OK.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.config.capacity import workers_may_run_spot
from infra.config.iam_policy import account_administers_the_key, policy
from infra.config.names import resource_name, stack_prefix
from infra.config.settings import SettingsView
from infra.config.tags import tags
from infra.monitoring.alarms import AlarmSettings, AlarmSpec, Watched, alarm_args, alarm_name, alarm_specs, runbook
from infra.monitoring.dashboard import dashboard_body


@dataclass(frozen=True)
class MonitoringSettings(SettingsView):
    """What `Monitoring` reads of the settings: where pages go, and what the alarms watch."""

    owner: str | None
    aws_region: str | None
    alarm_email: str | None
    alarm_topic_arn: str | None
    runbook_url: str | None
    manager_count: int
    worker_count: int
    service_name: str
    aws_secrets: list[str]
    secret_refresh: float
    database_instance_class: str
    database_storage_gb: int
    worker_on_demand_base: int
    worker_on_demand_percent: int
    worker_max_count: int


# What Auto Scaling tells EventBridge when a node could not be launched or terminated, or an
# instance refresh stopped (Auto Scaling's event reference; instance refresh events).
AUTOSCALING_FAILURES = [
    "EC2 Instance Launch Unsuccessful",
    "EC2 Instance Terminate Unsuccessful",
    "EC2 Auto Scaling Instance Refresh Failed",
    "EC2 Auto Scaling Instance Refresh Cancelled",
]


# EC2's two-minute warning before it reclaims a spot instance (EC2 User Guide, "Spot Instance
# interruption notices": the EventBridge event). It names the instance, not its group.
SPOT_INTERRUPTION_WARNING = "EC2 Spot Instance Interruption Warning"


def spot_event_pattern() -> str:
    return json.dumps({"source": ["aws.ec2"], "detail-type": [SPOT_INTERRUPTION_WARNING]})


def event_pattern(group_names: list[str]) -> str:
    return json.dumps(
        {
            "source": ["aws.autoscaling"],
            "detail-type": AUTOSCALING_FAILURES,
            "detail": {"AutoScalingGroupName": sorted(group_names)},
        }
    )


def topic_policy(topic_arn: str, account: str, region: str, stack: str) -> str:
    """CloudWatch may publish for this stack's alarms only; EventBridge may publish at all, since
    "you can't use Condition blocks in Amazon SNS topic policies for EventBridge" (EventBridge
    User Guide, resource-based policies for Amazon SNS). Only this stack's rule targets the topic."""
    return policy(
        {
            "Sid": "CloudwatchPublishes",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {
                    "aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:{resource_name(stack, '*')}"
                },
            },
        },
        {
            "Sid": "EventsPublishes",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn,
        },
    )


def topic_key_policy(account: str) -> str:
    """The account administers the key; CloudWatch and EventBridge may use it to publish, for this account."""
    return policy(
        account_administers_the_key(account),
        {
            "Sid": "CloudwatchEncrypts",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        },
        {
            # No source condition: EventBridge's delivery to an encrypted topic does not carry one.
            "Sid": "EventsEncrypt",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        },
    )


class Monitoring(pulumi.ComponentResource):
    """The alarm topic, the alarms, the Auto Scaling event rule and the dashboard of an AWS stack.

    Takes:
        name: the prefix of every child's name.
        settings: its slice of the settings (the topic or e-mail to page, the runbook's address, the manager count).
        watched: what the alarms watch: the load balancers' and target groups' arn suffixes, the groups' names.
        opts: resource options.

    Gives:
        topic_arn: the topic every alarm and rule notifies.
        alarm_names: the alarms' names.
        dashboard_url: the dashboard in the CloudWatch console.
    """

    def __init__(
        self, name: str, *, settings: MonitoringSettings, watched: Watched, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("restdemo:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = pulumi.get_stack()
        self.topic_arn = self._topic(name, settings, stack, child)
        specs = alarm_specs(AlarmSettings.of(settings), watched)
        alarms = [self._alarm(name, settings, stack, spec, child) for spec in specs]
        self._autoscaling_rule(name, settings, stack, watched, child)
        if workers_may_run_spot(settings):
            self._spot_rule(name, settings, stack, child)
        dashboard = self._dashboard(name, settings, stack, watched, alarms, child)
        self.alarm_names = [alarm_name(stack, spec) for spec in specs]
        self.dashboard_url = dashboard.dashboard_name.apply(
            lambda dashboard_name: (
                f"https://{settings.aws_region}.console.aws.amazon.com/cloudwatch/home"
                f"?region={settings.aws_region}#dashboards:name={dashboard_name}"
            )
        )
        self.register_outputs({"topic_arn": self.topic_arn, "dashboard_url": self.dashboard_url})

    def _topic(
        self, name: str, settings: MonitoringSettings, stack: str, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        """The stack's own encrypted topic (and e-mail subscription), or the existing one named."""
        self.topic_policy = None
        if settings.alarm_topic_arn:
            topic_arn = pulumi.Output.from_input(settings.alarm_topic_arn)
        else:
            account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
            key = aws.kms.Key(
                f"{name}-topic-key",
                description=f"restdemo {stack}: the alarm topic",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                policy=account.apply(topic_key_policy),
                tags=tags(settings, "alarms"),
                opts=child,
            )
            topic = aws.sns.Topic(
                f"{name}-topic",
                name=resource_name(stack, "alarms"),
                kms_master_key_id=key.arn,
                tags=tags(settings, "alarms"),
                opts=child,
            )
            self.topic_policy = aws.sns.TopicPolicy(
                f"{name}-topic",
                arn=topic.arn,
                policy=pulumi.Output.all(topic_arn=topic.arn, account=account).apply(
                    lambda v: topic_policy(v["topic_arn"], v["account"], settings.aws_region, stack)
                ),
                opts=child,
            )
            topic_arn = topic.arn
        if settings.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-email", topic=topic_arn, protocol="email", endpoint=settings.alarm_email, opts=child
            )
        return topic_arn

    def _publishing(self) -> pulumi.ResourceOptions:
        """What notifies the topic waits for its policy, so the first notifications are allowed."""
        return pulumi.ResourceOptions(parent=self, depends_on=[self.topic_policy] if self.topic_policy else [])

    def _alarm(
        self, name: str, settings: MonitoringSettings, stack: str, spec: AlarmSpec, child: pulumi.ResourceOptions
    ) -> aws.cloudwatch.MetricAlarm:
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{spec.key}",
            **alarm_args(stack, spec, self.topic_arn, settings.runbook_url),
            tags=tags(settings, spec.key),
            opts=self._publishing(),
        )

    def _autoscaling_rule(
        self, name: str, settings: MonitoringSettings, stack: str, watched: Watched, child: pulumi.ResourceOptions
    ) -> None:
        """Failed launches and terminations, failed or cancelled instance refreshes, to the topic."""
        self._events_to_topic(
            f"{name}-autoscaling",
            settings,
            rule_key="autoscaling-failures",
            description="A node could not be launched or terminated, or an instance refresh stopped",
            pattern=pulumi.Output.all(**watched.groups).apply(lambda groups: event_pattern(list(groups.values()))),
            input_paths={"type": "$.detail-type", "group": "$.detail.AutoScalingGroupName", "time": "$.time"},
            template=f"\"restdemo {stack}: <type> in <group> at <time>. Read the group's activity "
            f'history. {runbook("a-group-stays-below-its-desired-capacity", settings.runbook_url)}"',
            child=child,
        )

    def _spot_rule(self, name: str, settings: MonitoringSettings, stack: str, child: pulumi.ResourceOptions) -> None:
        """Spot interruption warnings to the topic, said to be information: the node is drained by
        then, and the group replaces the instance. EventBridge cannot tell which group an instance is
        in, so every warning of the account's region comes, this stack's workers' among them."""
        self._events_to_topic(
            f"{name}-spot",
            settings,
            rule_key="spot-interruptions",
            description="EC2 is reclaiming a spot instance in two minutes (information, no page)",
            pattern=spot_event_pattern(),
            input_paths={"instance": "$.detail.instance-id", "action": "$.detail.instance-action"},
            template=f'"restdemo {stack}, information (no page): EC2 reclaims spot instance <instance> '
            "(<action>) in two minutes. If it is one of this stack's workers, its node is being drained and "
            f'its group launches a replacement. {runbook("spot-interruptions", settings.runbook_url)}"',
            child=child,
        )

    def _events_to_topic(
        self,
        name: str,
        settings: MonitoringSettings,
        *,
        rule_key: str,
        description: str,
        pattern: pulumi.Input[str],
        input_paths: dict[str, str],
        template: str,
        child: pulumi.ResourceOptions,
    ) -> None:
        """An EventBridge rule `restdemo-<stack>-<rule_key>` and its target: the topic, with a message."""
        rule = aws.cloudwatch.EventRule(
            name,
            name=resource_name(pulumi.get_stack(), rule_key),
            description=description,
            event_pattern=pattern,
            tags=tags(settings, rule_key),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            name,
            opts=self._publishing(),
            rule=rule.name,
            arn=self.topic_arn,
            input_transformer={"input_paths": input_paths, "input_template": template},
        )

    def _dashboard(
        self,
        name: str,
        settings: MonitoringSettings,
        stack: str,
        watched: Watched,
        alarms: list[aws.cloudwatch.MetricAlarm],
        child: pulumi.ResourceOptions,
    ) -> aws.cloudwatch.Dashboard:
        body = pulumi.Output.all(
            web_balancer=watched.web_balancer,
            web_target_group=watched.web_target_group,
            admin_balancer=watched.admin_balancer,
            admin_target_group=watched.admin_target_group,
            groups=pulumi.Output.all(**watched.groups),
            alarm_arns=pulumi.Output.all(*(alarm.arn for alarm in alarms)),
            # Every route of a Compose stack, the default one's too (its service by name).
            routes=pulumi.Output.all(
                **({watched.default_route: watched.web_target_group} if watched.default_route else {}),
                **watched.web_routes,
            ),
            services=watched.services,
            file_system=watched.file_system,
            database=watched.database,
        ).apply(lambda v: dashboard_body(region=settings.aws_region, stack=stack, **v))
        return aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=stack_prefix(stack), dashboard_body=body, opts=child
        )
