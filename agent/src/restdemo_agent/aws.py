"""The agent's AWS side: the state table, join tokens in SSM, the lifecycle queue, ECR login."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from botocore.exceptions import ClientError

from restdemo_agent.contract import (
    LAUNCH_HOOK,
    LOAD_PREFIX,
    NOTICE_PREFIX,
    PRIMARY_KEY,
    RESERVED_POLICY,
    parameter_name,
    token_parameter,
)


class SwarmState:
    """Who initialised the swarm (DynamoDB, conditional writes) and the join tokens (SSM SecureString)."""

    def __init__(self, dynamodb, ssm, table: str, prefix: str, key_id: str):
        self.dynamodb, self.ssm, self.table, self.prefix = dynamodb, ssm, table, prefix
        # The stack's KMS key: its policy lets workers decrypt the worker token only.
        self.key_id = key_id

    def claim_primary(self, address: str, instance_id: str, now: float, stale: dict | None = None) -> bool:
        """Exactly one caller wins, however many try at once: a new record, or over `stale`, the
        record as read (a conditional write on its `updated`, so two claimants cannot both win)."""
        item = {"address": address, "instance_id": instance_id, "status": "initialising", "updated": _stamp(now)}
        if not stale:
            return self._put_primary(item, "attribute_not_exists(pk)")
        return self._put_primary(item, "updated = :seen", {":seen": stale.get("updated", "0")})

    def primary(self) -> dict | None:
        item = self.dynamodb.get_item(TableName=self.table, Key={"pk": {"S": PRIMARY_KEY}}, ConsistentRead=True)
        return {k: v["S"] for k, v in item["Item"].items()} if "Item" in item else None

    def mark_ready(
        self, address: str, instance_id: str, node_id: str, now: float, expected_instance: str | None = None
    ) -> bool:
        """Record the primary's node id once the swarm exists, or confirm it (`updated`); with
        `expected_instance`, take the record over from that instance only (a conditional write)."""
        item = {"address": address, "instance_id": instance_id, "node_id": node_id, "status": "ready"}
        item["updated"] = _stamp(now)
        return self._put_primary(
            item, "attribute_not_exists(pk) OR instance_id = :expected", {":expected": expected_instance or instance_id}
        )

    def _put_primary(self, fields: dict[str, str], condition: str, values: dict[str, str] | None = None) -> bool:
        """A conditional write of the primary record; False when the condition does not hold."""
        request = {
            "TableName": self.table,
            "Item": {"pk": {"S": PRIMARY_KEY}, **{k: {"S": v} for k, v in fields.items()}},
            "ConditionExpression": condition,
        }
        if values:
            request["ExpressionAttributeValues"] = {k: {"S": v} for k, v in values.items()}
        try:
            self.dynamodb.put_item(**request)
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def note_leader_seen(self, node_id: str, instance_id: str, now: float) -> None:
        """This manager saw a leader now (each manager, every few rounds): `recover` picks the
        survivor that saw one last."""
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"{LEADER_SEEN_PREFIX}{node_id}"},
                "instance_id": {"S": instance_id},
                "updated": {"S": _stamp(now)},
            },
        )

    def leader_seen(self, node_id: str) -> float | None:
        """When this manager last recorded a leader; None when it never did."""
        key = {"pk": {"S": f"{LEADER_SEEN_PREFIX}{node_id}"}}
        item = self.dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return float(item["updated"]["S"]) if item else None

    def rolled_back(self) -> dict[str, str]:
        """The services held as rolled back (service id -> spec digest), as the last leader stored them."""
        item = self.dynamodb.get_item(TableName=self.table, Key={"pk": {"S": ROLLED_BACK_KEY}}, ConsistentRead=True)
        return json.loads(item["Item"]["services"]["S"]) if "Item" in item else {}

    def record_notice(self, user_id: str, kind: str, at: str, now: float) -> None:
        """A worker's interruption notice, under its own aws:userid: the one key its role may write."""
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"{NOTICE_PREFIX}{user_id}"},
                "kind": {"S": kind},
                "at": {"S": at},
                "recorded": {"S": _stamp(now)},
            },
        )

    def notices(self) -> dict[str, dict]:
        """Every recorded notice, key -> its fields (a handful of items: the table holds only records)."""
        return self._records(NOTICE_PREFIX)

    def record_load(self, user_id: str, services: str, now: float) -> None:
        """A node's CPU use by its tasks (restdemo_agent.scaling), under its own aws:userid."""
        self.dynamodb.put_item(
            TableName=self.table,
            Item={"pk": {"S": f"{LOAD_PREFIX}{user_id}"}, "services": {"S": services}, "recorded": {"S": _stamp(now)}},
        )

    def loads(self) -> dict[str, dict]:
        """Every node's load record, key -> its fields."""
        return self._records(LOAD_PREFIX)

    def _records(self, prefix: str) -> dict[str, dict]:
        found, request = (
            {},
            {
                "TableName": self.table,
                "FilterExpression": "begins_with(pk, :prefix)",
                "ExpressionAttributeValues": {":prefix": {"S": prefix}},
                "ConsistentRead": True,
            },
        )
        while True:
            page = self.dynamodb.scan(**request)
            for item in page.get("Items", []):
                # A worker writes its item's fields as it likes: anything but a string is read as absent.
                found[item["pk"]["S"]] = {k: v.get("S", "") for k, v in item.items() if k != "pk"}
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def forget(self, key: str) -> None:
        """A notice or a load record done with."""
        self.dynamodb.delete_item(TableName=self.table, Key={"pk": {"S": key}})

    def store_rolled_back(self, services: dict[str, str]) -> None:
        """Kept in the table so a new leader (or a restarted agent) goes on reporting them."""
        self.dynamodb.put_item(
            TableName=self.table,
            Item={"pk": {"S": ROLLED_BACK_KEY}, "services": {"S": json.dumps(services, sort_keys=True)}},
        )

    def claim_recovery(self, node_id: str, now: float, hold_seconds: float) -> dict | None:
        """One recovery at a time, whichever survivor runs it: a conditional write of the recovery
        record. None when claimed (or already this node's); else the record of the one under way."""
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                # A number, so that the expiry compares as one.
                Item={"pk": {"S": RECOVERY_KEY}, "node_id": {"S": node_id}, "updated": {"N": _stamp(now)}},
                ConditionExpression="attribute_not_exists(pk) OR node_id = :me OR #updated < :expired",
                ExpressionAttributeNames={"#updated": "updated"},
                ExpressionAttributeValues={":me": {"S": node_id}, ":expired": {"N": _stamp(now - hold_seconds)}},
            )
            return None
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        item = self.dynamodb.get_item(TableName=self.table, Key={"pk": {"S": RECOVERY_KEY}}, ConsistentRead=True)
        return {k: next(iter(v.values())) for k, v in item.get("Item", {}).items()}

    def store_tokens(self, tokens: dict[str, str]) -> None:
        for role, token in tokens.items():
            self.ssm.put_parameter(
                Name=token_parameter(self.prefix, role),
                Value=token,
                Type="SecureString",
                KeyId=self.key_id,
                Overwrite=True,
                Description=f"restdemo swarm join token ({role})",
            )

    def token(self, role: str) -> str | None:
        try:
            answer = self.ssm.get_parameter(Name=token_parameter(self.prefix, role), WithDecryption=True)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ParameterNotFound":
                return None
            raise
        return answer["Parameter"]["Value"]


LEADER_SEEN_PREFIX = "leader_seen#"
RECOVERY_KEY = "recovery"
ROLLED_BACK_KEY = "rolled_back"


def _stamp(now: float) -> str:
    return f"{now:.0f}"


@dataclass(frozen=True)
class LifecycleMessage:
    receipt: str
    body: dict

    def action(self) -> dict:
        return {
            "LifecycleHookName": self.body["LifecycleHookName"],
            "AutoScalingGroupName": self.body["AutoScalingGroupName"],
            "LifecycleActionToken": self.body["LifecycleActionToken"],
            "InstanceId": self.body["EC2InstanceId"],
        }


DEFAULT_HEARTBEAT_SECONDS = 3600.0  # AWS's, for a hook that does not say


class Lifecycle:
    """The one queue both groups' termination hooks send to, and the lifecycle actions themselves."""

    def __init__(self, sqs, autoscaling, queue_url: str):
        self.sqs, self.autoscaling, self.queue_url = sqs, autoscaling, queue_url

    def receive(self, wait_seconds: int = 10, hide_seconds: int = 60) -> list[LifecycleMessage]:
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=hide_seconds,
        )
        messages = []
        for message in answer.get("Messages", []):
            body = json.loads(message["Body"])
            if "LifecycleTransition" not in body:  # the hook's test notification
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                continue
            messages.append(LifecycleMessage(message["ReceiptHandle"], body))
        return messages

    def leave_for_others(self, message: LifecycleMessage) -> None:
        self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message.receipt, VisibilityTimeout=0)

    def hide(self, message: LifecycleMessage, seconds: int) -> None:
        """Keep a message being handled from the other managers for `seconds` more."""
        self.sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=message.receipt, VisibilityTimeout=seconds
        )

    def done(self, message: LifecycleMessage) -> None:
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt)

    def hook_timeout(self, message: LifecycleMessage) -> float:
        """The hook's heartbeat timeout (drainTimeout): how long this termination may be held
        without a heartbeat, and so how long the agent drains before it completes anyway."""
        hooks = self.autoscaling.describe_lifecycle_hooks(
            AutoScalingGroupName=message.body["AutoScalingGroupName"],
            LifecycleHookNames=[message.body["LifecycleHookName"]],
        )["LifecycleHooks"]
        return float(hooks[0]["HeartbeatTimeout"]) if hooks else DEFAULT_HEARTBEAT_SECONDS

    def state(self, instance_id: str) -> str | None:
        """The instance's lifecycle state in its group (Terminating:Wait, Pending:Wait, InService...)."""
        found = self.autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
        return found[0]["LifecycleState"] if found else None

    def complete_launch(self, group: str, instance_id: str, result: str = "CONTINUE") -> bool:
        """End this instance's launch hook; False when it is not waiting on one (the group's first launch)."""
        try:
            self.autoscaling.complete_lifecycle_action(
                LifecycleHookName=LAUNCH_HOOK,
                AutoScalingGroupName=group,
                InstanceId=instance_id,
                LifecycleActionResult=result,
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ValidationError":
                return False
            raise

    def waiting_launches(self, instance_ids: list[str]) -> dict[str, str]:
        """Which of these instances a launch hook holds (Pending:Wait), with their groups."""
        found = []
        for start in range(0, len(instance_ids), 50):  # the API takes at most 50 ids
            batch = instance_ids[start : start + 50]
            found += self.autoscaling.describe_auto_scaling_instances(InstanceIds=batch)["AutoScalingInstances"]
        return {i["InstanceId"]: i["AutoScalingGroupName"] for i in found if i["LifecycleState"] == "Pending:Wait"}

    def mark_unhealthy(self, instance_id: str) -> None:
        """Let the group replace this instance (it could not join the swarm)."""
        self.autoscaling.set_instance_health(
            InstanceId=instance_id, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False
        )

    def heartbeat(self, message: LifecycleMessage) -> None:
        self.autoscaling.record_lifecycle_action_heartbeat(**message.action())

    def complete(self, message: LifecycleMessage, result: str = "CONTINUE") -> None:
        self.autoscaling.complete_lifecycle_action(**message.action(), LifecycleActionResult=result)


def registry_auth_header(ecr, registry: str) -> str:
    """X-Registry-Auth for the stack's ECR registry, from a fresh 12-hour token."""
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    username, _, password = base64.b64decode(token).decode().partition(":")
    auth = {"username": username, "password": password, "serveraddress": registry}
    return base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()


def running_instances(ec2, instance_ids: list[str]) -> set[str]:
    """Which of these instances still run (terminated ones may stay listed for a while)."""
    if not instance_ids:
        return set()
    answer = ec2.describe_instances(
        Filters=[
            {"Name": "instance-id", "Values": instance_ids},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping"]},
        ]
    )
    return {i["InstanceId"] for r in answer["Reservations"] for i in r["Instances"]}


def instance_capacities(ec2, instance_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Each instance's CPU (nano) and memory (bytes) as its type has them, from EC2: what no node can
    claim more of."""
    if not instance_ids:
        return {}
    # A filter, not InstanceIds: an id EC2 no longer knows (a node long gone) is left out, not an error.
    answer = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": sorted(set(instance_ids))}])
    types = {i["InstanceId"]: i["InstanceType"] for r in answer["Reservations"] for i in r["Instances"]}
    if not types:
        return {}
    described = ec2.describe_instance_types(InstanceTypes=sorted(set(types.values())))["InstanceTypes"]
    sizes = {
        t["InstanceType"]: (t["VCpuInfo"]["DefaultVCpus"] * 10**9, t["MemoryInfo"]["SizeInMiB"] * 2**20)
        for t in described
    }
    return {instance: sizes[kind] for instance, kind in types.items() if kind in sizes}


def other_members_running(autoscaling, ec2, group: str, instance_id: str) -> list[str]:
    """The group's other instances that are in service and run: the ones that may hold a swarm.
    An instance still launching (Pending*) is not a member yet (its launch hook ends only once it
    joined), and one leaving (Terminating*) will be gone: neither counts, so replacements of a
    group that lost every manager can form the swarm anew."""
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    in_service = [
        i["InstanceId"]
        for g in groups
        for i in g["Instances"]
        if i["InstanceId"] != instance_id and i["LifecycleState"] == "InService"
    ]
    return sorted(running_instances(ec2, in_service))


def stack_instances(autoscaling, ec2, groups: dict[str, str]) -> dict[str, dict]:
    """The running instances of the stack's groups (role -> group name), by private address:
    {instance_id, zone, role}, as AWS says."""
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=sorted(groups.values()))
    role_of = {
        instance["InstanceId"]: role
        for group in found["AutoScalingGroups"]
        for role, name in groups.items()
        if group["AutoScalingGroupName"] == name
        for instance in group["Instances"]
    }
    if not role_of:
        return {}
    answer = ec2.describe_instances(
        Filters=[
            {"Name": "instance-id", "Values": sorted(role_of)},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )
    return {
        instance["PrivateIpAddress"]: {
            "instance_id": instance["InstanceId"],
            "zone": instance["Placement"]["AvailabilityZone"],
            "role": role_of[instance["InstanceId"]],
        }
        for reservation in answer["Reservations"]
        for instance in reservation["Instances"]
        if instance.get("PrivateIpAddress")
    }


def read_kept_value(secretsmanager, ssm, arn: str) -> str | bytes:
    """A value kept in AWS (restdemo:awsSecrets, the database's), as stored: a Secrets Manager secret's
    current version, or an SSM parameter, decrypted."""
    if arn.split(":")[2] == "secretsmanager":
        answer = secretsmanager.get_secret_value(SecretId=arn)
        return answer["SecretString"] if "SecretString" in answer else answer["SecretBinary"]
    return ssm.get_parameter(Name=parameter_name(arn), WithDecryption=True)["Parameter"]["Value"]


def scale_in_protection(autoscaling, group: str) -> tuple[bool, set[str], set[str]]:
    """Whether a group scales (it has the program's target-tracking policy: workerMaxCount), and
    (protected from scale-in, in service) of its instances, as Auto Scaling says now."""
    (found,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    instances = found.get("Instances", [])
    in_service = {i["InstanceId"] for i in instances if i.get("LifecycleState") == "InService"}
    policies = autoscaling.describe_policies(AutoScalingGroupName=group, PolicyNames=[RESERVED_POLICY])
    scales = bool(policies["ScalingPolicies"])
    return scales, {i["InstanceId"] for i in instances if i.get("ProtectedFromScaleIn")}, in_service


def spot_state(autoscaling, ec2, group: str, since: float) -> tuple[dict, list[dict], set[str]]:
    """The group as Auto Scaling describes it, its scaling activities that started after `since`
    (newest first, every page: a busy group records many), and which of its instances are spot."""
    (found,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    activities, request = [], {"AutoScalingGroupName": group, "MaxRecords": 100}
    while True:
        page = autoscaling.describe_scaling_activities(**request)
        recent = [a for a in page["Activities"] if a["StartTime"].timestamp() >= since]
        activities += recent
        if "NextToken" not in page or len(recent) < len(page["Activities"]):
            break
        request["NextToken"] = page["NextToken"]
    ids = [i["InstanceId"] for i in found.get("Instances", [])]
    spot: set[str] = set()
    request = {"InstanceIds": ids}
    while ids:
        page = ec2.describe_instances(**request)
        spot |= {
            i["InstanceId"]
            for r in page["Reservations"]
            for i in r["Instances"]
            if i.get("InstanceLifecycle") == "spot"
        }
        if "NextToken" not in page:
            break
        request["NextToken"] = page["NextToken"]
    return found, activities, spot


# What UpdateAutoScalingGroup takes back of the distribution Auto Scaling describes: the fields the
# program sets. Others it may list (SpotInstancePools) it refuses with price-capacity-optimized.
DISTRIBUTION_FIELDS = (
    "OnDemandAllocationStrategy",
    "OnDemandPercentageAboveBaseCapacity",
    "SpotAllocationStrategy",
)


def set_on_demand_base(autoscaling, found: dict, base: int) -> None:
    """The group's instances distribution as the program set it, with another on-demand base. The
    launch template is not sent: UpdateAutoScalingGroup needs it only to change it (API reference,
    MixedInstancesPolicy: "not required when updating the group"), and without it AWS checks no
    launch permission."""
    distribution = found["MixedInstancesPolicy"].get("InstancesDistribution") or {}
    kept = {k: distribution[k] for k in DISTRIBUTION_FIELDS if k in distribution}
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=found["AutoScalingGroupName"],
        MixedInstancesPolicy={"InstancesDistribution": {**kept, "OnDemandBaseCapacity": base}},
    )


def leave_load_balancers(autoscaling, elbv2, group: str, instance_id: str) -> list[str]:
    """Take an instance out of its group's target groups: the load balancer sends it no new request
    and lets those under way finish (the target group's deregistration delay). The group's own, as
    Auto Scaling lists them; the target groups done."""
    (found,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    arns = found.get("TargetGroupARNs", [])
    for arn in arns:
        elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id}])
    return arns


def protect_from_scale_in(autoscaling, group: str, instance_ids: list[str], protected: bool) -> None:
    autoscaling.set_instance_protection(
        AutoScalingGroupName=group, InstanceIds=instance_ids, ProtectedFromScaleIn=protected
    )
