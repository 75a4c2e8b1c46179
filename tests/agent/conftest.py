"""The swarm lab's fixtures: the bridge, one moto server, a registry, the AWS resources, the nodes."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request

import boto3
import pytest

from tests.agent.lab import GATEWAY, LabNode, setup_bridge, teardown_bridge
from tests.e2e.harness import local_registry
from tests.support.docker_engine import require_engine, require_tool, unavailable
from tests.support.lifecycle_model import LAUNCHING, model_for
from tests.support.moto_groups import empty_group
from tests.support.net import free_port

REGION = "eu-west-1"
ACCOUNT = "123456789012"
# The termination hook's heartbeat timeout in the lab (drainTimeout).
DRAIN_TIMEOUT = 120
# The lab's VPC is its bridge (tests/agent/lab.py): one subnet per zone.
LAB_VPC = "10.77.0.0/24"
LAB_SUBNETS = {f"{REGION}a": "10.77.0.0/25", f"{REGION}b": "10.77.0.128/25"}
ZONE_A, ZONE_B = LAB_SUBNETS
# Two zones of unequal size: spreading over zones (2 + 2 replicas of 4) and spreading over nodes
# (1 on each) then place tasks differently, so the placement test can tell which one swarm did.
NODES = [("m1", "manager", ZONE_A), ("m2", "manager", ZONE_A), ("m3", "manager", ZONE_A), ("w1", "worker", ZONE_B)]


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    from moto.moto_api import recorder
    from moto.server import ThreadedMotoServer

    from tests.support.lifecycle_model import install

    install()
    require_tool("ip", "apt-get install iproute2")
    require_tool("dockerd", "apt-get install docker.io")
    require_engine()
    if shutil.which("iptables") is None:
        unavailable("iptables is not installed")
    setup_bridge()
    recorder._location = str(tmp_path_factory.mktemp("moto") / "recording.jsonl")
    server = ThreadedMotoServer(ip_address=GATEWAY, port=free_port())
    server.start()
    url = "http://{}:{}".format(*server.get_host_and_port())
    # moto's backends live in this process, across modules: each lab starts from an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10)
    yield url
    server.stop()
    teardown_bridge()


def aws(url: str, service: str):
    return boto3.client(
        service, region_name=REGION, endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def create_stack(url: str, stack: str, *, drain_timeout: int = DRAIN_TIMEOUT, table: bool = True) -> str:
    """What the program creates for a stack's agents, in moto: state table, lifecycle queue, both
    groups with their hooks. Returns the queue's URL."""
    if table:
        create_table(url, stack)
    queue = aws(url, "sqs").create_queue(QueueName=f"restdemo-{stack}-lifecycle")["QueueUrl"]
    ec2, autoscaling = aws(url, "ec2"), aws(url, "autoscaling")
    subnets = lab_subnets(url)
    for role in ("manager", "worker"):
        # The group's own launches (replacements) get an address in the lab's subnets too.
        empty_group(ec2, autoscaling, f"restdemo-{stack}-{role}s", VPCZoneIdentifier=",".join(subnets.values()))
        put_hooks(autoscaling, stack, role, drain_timeout)
    return queue


def lab_subnets(url: str) -> dict[str, str]:
    """The lab's VPC in moto (once per account): zone -> subnet id. moto hands out a subnet's
    addresses in order, the first three reserved as AWS does (10.77.0.1 is the bridge's own)."""
    ec2 = aws(url, "ec2")
    found = [s for s in ec2.describe_subnets()["Subnets"] if s["CidrBlock"] in LAB_SUBNETS.values()]
    if not found:
        vpc = ec2.create_vpc(CidrBlock=LAB_VPC)["Vpc"]["VpcId"]
        found = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]
            for zone, cidr in LAB_SUBNETS.items()
        ]
    return {subnet["AvailabilityZone"]: subnet["SubnetId"] for subnet in found}


def create_table(url: str, stack: str) -> None:
    aws(url, "dynamodb").create_table(
        TableName=f"restdemo-{stack}-state",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )


@pytest.fixture(scope="module")
def lab_aws(moto):
    queue = create_stack(moto, "lab")
    image = aws(moto, "ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    stop = threading.Event()
    lifecycle = model_for(ACCOUNT, REGION)
    lifecycle.run_clock(stop)
    yield {"url": moto, "queue": queue, "image": image, "lifecycle": lifecycle}
    stop.set()
    lifecycle.actions.clear()
    lifecycle.events.clear()
    lifecycle.hooks.clear()
    lifecycle.replacing_groups.clear()
    lifecycle.health_replacements.clear()


def put_hooks(autoscaling, stack: str, role: str, drain_timeout: int) -> None:
    """The group's hooks as the program makes them (infra/swarm/node_group.py)."""
    group = f"restdemo-{stack}-{role}s"
    autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=group,
        LifecycleHookName="drain",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=drain_timeout,
        DefaultResult="CONTINUE",
        NotificationTargetARN=f"arn:aws:sqs:{REGION}:{ACCOUNT}:restdemo-{stack}-lifecycle",
        RoleARN=f"arn:aws:iam::{ACCOUNT}:role/lifecycle-hook",
        NotificationMetadata=json.dumps({"role": role, "stack": stack}),
    )
    autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=group,
        LifecycleHookName="joined",
        LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
        HeartbeatTimeout=600,
        DefaultResult="ABANDON",
    )


def new_instance(lab_aws, node_role: str, stack: str = "lab", zone: str = ZONE_A) -> tuple[str, str]:
    """A fresh instance in the role's group, InService (the group's first launch: no hook held it):
    its id and its private address, which the lab node takes."""
    ec2, autoscaling = aws(lab_aws["url"], "ec2"), aws(lab_aws["url"], "autoscaling")
    subnet = lab_subnets(lab_aws["url"])[zone]
    instance = ec2.run_instances(ImageId=lab_aws["image"], MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]
    autoscaling.attach_instances(
        AutoScalingGroupName=f"restdemo-{stack}-{node_role}s", InstanceIds=[instance["InstanceId"]]
    )
    return instance["InstanceId"], instance["PrivateIpAddress"]


def instance_placement(lab_aws, instance: str) -> tuple[str, str]:
    """An instance's private address and zone, as moto gave them (one its group launched itself)."""
    (reservation,) = aws(lab_aws["url"], "ec2").describe_instances(InstanceIds=[instance])["Reservations"]
    (described,) = reservation["Instances"]
    return described["PrivateIpAddress"], described["Placement"]["AvailabilityZone"]


@pytest.fixture(scope="module")
def lab_registry(moto, tmp_path_factory):
    binary = require_tool("docker-registry", "apt-get install docker-registry")
    with local_registry(binary, tmp_path_factory.mktemp("lab-registry"), bind="0.0.0.0") as address:
        # The host's engine pushes over loopback (insecure by default); the lab's engines pull over the bridge.
        yield {"push": address, "pull": address.replace("127.0.0.1", GATEWAY)}


@pytest.fixture(scope="module")
def lab_app_image(lab_registry):
    """The restdemo image as the local stack builds it, pushed to the lab's registry once."""
    from tests.e2e.harness import build_and_push, capture

    host = require_engine()
    run = capture(lab_registry["push"], host)
    pushed = build_and_push(host, run.named("docker-build:index:Image", "restdemo").inputs)
    return {"push": pushed, "pull": pushed.replace(lab_registry["push"], lab_registry["pull"])}


@pytest.fixture(scope="module")
def broken_image(lab_registry, lab_app_image):
    """The app image with a health check that never passes: a rollout to it fails and rolls back."""
    from tests.e2e.harness import HERE, push
    from tests.support.docker_engine import build_image

    host = require_engine()
    name = f"{lab_registry['push']}/restdemo:broken"
    build_image(HERE, name, dockerfile=HERE / "broken.Dockerfile", build_args={"IMAGE": lab_app_image["push"]})
    return push(host, name).replace(lab_registry["push"], lab_registry["pull"])


@pytest.fixture(scope="module")
def lab(lab_aws, lab_registry):
    nodes = {}
    for name, role, zone in NODES:
        instance, address = new_instance(lab_aws, role, zone=zone)
        nodes[name] = LabNode(name, address, role, zone, instance, lab_registry["pull"])
    try:
        for node in nodes.values():
            node.create_namespace()
            node.start_engine()
        yield nodes
    finally:
        for node in nodes.values():
            node.destroy()


# --- nodes made on demand (the healing scenarios and the alarms' scenarios) -----------------


class Nodes:
    """Lab nodes made on demand, each a fresh dockerd in its own namespace; destroyed at the end."""

    def __init__(self, lab_aws, lab_registry):
        self.aws, self.registry, self.made = lab_aws, lab_registry, []

    def add(
        self,
        name: str,
        role: str,
        stack: str,
        *,
        launching: bool = False,
        bootstrap_timeout: int = 90,
        environment: dict[str, str] | None = None,
        daemon_config: dict | None = None,
        engine_environment: dict[str, str] | None = None,
        instance: str | None = None,
    ):
        """`instance`: one the group launched itself (a replacement), already held by its launch hook."""
        if instance is None:
            zone = ZONE_A
            instance, address = new_instance(self.aws, role, stack, zone)
            if launching:  # an instance refresh or a replacement: held by the launch hook
                self.aws["lifecycle"].begin(f"restdemo-{stack}-{role}s", instance, LAUNCHING)
        else:
            address, zone = instance_placement(self.aws, instance)
        node = LabNode(
            name,
            address,
            role,
            zone,
            instance,
            self.registry["pull"],
            bootstrap_timeout,
            stack,
            extra_environment=environment or {},
            daemon_config=daemon_config,
            engine_environment=engine_environment or {},
        )
        self.made.append(node)
        node.create_namespace()
        node.start_engine()
        return node


@pytest.fixture(scope="module")
def nodes(lab_aws, lab_registry):
    made = Nodes(lab_aws, lab_registry)
    yield made
    for node in made.made:
        node.destroy()


def bootstrap(node: LabNode, url: str, queue: str):
    return node.agent_command("bootstrap", url, queue)


def form(members: list[LabNode], url: str, queue: str) -> None:
    """Every node bootstraps at once, then runs its agent."""
    processes = [bootstrap(node, url, queue) for node in members]
    assert [p.wait(120) for p in processes] == [0] * len(members), [n.agent_log()[-1500:] for n in members]
    for node in members:
        node.start_agent(url, queue)
