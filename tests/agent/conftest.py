"""The swarm lab's fixtures: the bridge, one moto server, a registry, the AWS resources, the nodes."""

from __future__ import annotations

import json
import shutil

import boto3
import pytest

from tests.agent.lab import GATEWAY, LabNode, setup_bridge, teardown_bridge
from tests.e2e.harness import local_registry
from tests.support.docker_engine import require_engine, require_tool, unavailable
from tests.support.net import free_port

REGION = "eu-west-1"
# Two zones of unequal size: spreading over zones (2 + 2 replicas of 4) and spreading over nodes
# (1 on each) then place tasks differently, so the placement test can tell which one swarm did.
NODES = [("m1", "manager", "lab-a"), ("m2", "manager", "lab-a"), ("m3", "manager", "lab-a"), ("w1", "worker", "lab-b")]


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    from moto.moto_api import recorder
    from moto.server import ThreadedMotoServer

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
    yield url
    server.stop()
    teardown_bridge()


def aws(url: str, service: str):
    return boto3.client(
        service, region_name=REGION, endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture(scope="module")
def lab_aws(moto):
    aws(moto, "dynamodb").create_table(
        TableName="restdemo-lab-state",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    queue = aws(moto, "sqs").create_queue(QueueName="restdemo-lab-lifecycle")["QueueUrl"]
    ec2 = aws(moto, "ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instances = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=5, MaxCount=5)["Instances"]]
    return {"url": moto, "queue": queue, "instances": instances}


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
    pushed = build_and_push(host, run.named("docker:index/image:Image", "restdemo").inputs)
    return {"push": pushed, "pull": pushed.replace(lab_registry["push"], lab_registry["pull"])}


@pytest.fixture(scope="module")
def lab(lab_aws, lab_registry):
    nodes = {
        name: LabNode(name, index, role, zone, lab_aws["instances"][index], lab_registry["pull"])
        for index, (name, role, zone) in enumerate(NODES)
    }
    try:
        for node in nodes.values():
            node.create_namespace()
            node.start_engine()
        yield nodes
    finally:
        for node in nodes.values():
            node.destroy()


def lifecycle_notification(node: LabNode, group: str) -> str:
    """What an auto scaling group's termination hook puts on the queue."""
    return json.dumps(
        {
            "Origin": "AutoScalingGroup",
            "Destination": "EC2",
            "Service": "AWS Auto Scaling",
            "LifecycleHookName": "drain",
            "AutoScalingGroupName": group,
            "LifecycleActionToken": f"5a3bc3f2-0000-4000-8000-{node.index:012d}",
            "EC2InstanceId": node.instance_id,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        }
    )
