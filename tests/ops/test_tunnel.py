"""The deploy path to the Docker API with adminAccess session-manager (infra/admin/tunnel.py, ops/tunnel.py)."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import threading

import boto3
import pytest
from moto import mock_aws

from infra.admin.tunnel import TUNNEL_PORT, tunnel_host, wait_for_tunnel
from ops.tunnel import choose_manager, session_command, stack_region
from tests.support.pulumi_program import REPO, run_program

pytestmark = pytest.mark.unit


def test_the_session_forwards_the_local_port_to_the_managers_docker_api():
    assert session_command("eu-west-1", "i-0abc", 23761) == [
        "aws",
        "ssm",
        "start-session",
        "--region",
        "eu-west-1",
        "--target",
        "i-0abc",
        "--document-name",
        "AWS-StartPortForwardingSession",
        "--parameters",
        "portNumber=2376,localPortNumber=23761",
    ]
    assert tunnel_host() == f"tcp://127.0.0.1:{TUNNEL_PORT}"


def test_only_an_in_service_healthy_manager_is_chosen(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        ec2, autoscaling = (boto3.client(s, region_name="eu-west-1") for s in ("ec2", "autoscaling"))
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ec2.create_launch_template(LaunchTemplateName="managers", LaunchTemplateData={"ImageId": image})
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="restdemo-dev-managers",
            LaunchTemplate={"LaunchTemplateName": "managers"},
            MinSize=0,
            MaxSize=3,
            DesiredCapacity=3,
            AvailabilityZones=["eu-west-1a"],
        )
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["restdemo-dev-managers"])
        instances = group["AutoScalingGroups"][0]["Instances"]
        first, second, third = sorted(i["InstanceId"] for i in instances)
        autoscaling.set_instance_health(InstanceId=first, HealthStatus="Unhealthy")
        autoscaling.enter_standby(
            AutoScalingGroupName="restdemo-dev-managers", InstanceIds=[second], ShouldDecrementDesiredCapacity=True
        )
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["restdemo-dev-managers"])
        assert choose_manager(group["AutoScalingGroups"][0]) == third
    assert choose_manager({"Instances": []}) is None


def test_during_an_instance_refresh_a_manager_on_the_current_template_is_chosen():
    def instance(name: str, version: str) -> dict:
        template = {"LaunchTemplateId": "lt-1", "Version": version}
        return {
            "InstanceId": name,
            "LifecycleState": "InService",
            "HealthStatus": "Healthy",
            "LaunchTemplate": template,
        }

    group = {"LaunchTemplate": {"LaunchTemplateId": "lt-1", "Version": "7"}}
    old, new = instance("i-0001", "6"), instance("i-0009", "7")
    assert choose_manager(group | {"Instances": [old, new]}) == "i-0009"  # the refresh retires i-0001
    assert choose_manager(group | {"Instances": [old]}) == "i-0001"  # better than none


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_program_waits_for_the_tunnel_and_names_the_fix_when_it_never_opens():
    port = free_port()
    with pytest.raises(RuntimeError, match=rf"nothing listens on 127.0.0.1:{port} after 0.5s: .*python -m ops.tunnel"):
        wait_for_tunnel(port, timeout=0.5)
    listener = socket.socket()
    opened = threading.Timer(1.0, lambda: (listener.bind(("127.0.0.1", port)), listener.listen()))
    opened.start()  # the tunnel opens while the program waits
    try:
        assert wait_for_tunnel(port, timeout=30) == f"tcp://127.0.0.1:{port}"
    finally:
        opened.join()
        listener.close()


def test_an_up_without_the_tunnel_stops_with_a_clear_error(monkeypatch):
    monkeypatch.setattr("infra.admin.tunnel.TUNNEL_WAIT_SECONDS", 0.1)
    monkeypatch.setattr(
        "infra.program.wait_for_tunnel",
        lambda: importlib.import_module("infra.admin.tunnel").wait_for_tunnel(timeout=0.1),
    )
    with pytest.raises(
        Exception, match=r"nothing listens on 127.0.0.1:23760 after 0.1s: adminAccess is session-manager"
    ):
        run_program("dev", tunnel=False)


def run_tunnel(*args: str, **environment: str) -> subprocess.CompletedProcess:
    """`python -m ops.tunnel` as an operator runs it, without AWS credentials or a region."""
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {
        **bare,
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        **environment,
    }
    return subprocess.run(
        [sys.executable, "-m", "ops.tunnel", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=REPO,
    )


def test_the_tunnel_takes_the_region_from_the_stack_file_and_says_what_is_missing_in_one_line():
    """It ended in a NoRegionError traceback although stacks/Pulumi.dev.yaml names eu-west-1, then in
    a NoCredentialsError one: now the region is the stack file's, and AWS's error is one line."""
    answer = run_tunnel("dev", "--wait", "1")
    assert answer.returncode == 1
    assert answer.stderr == (
        "tunnel: AWS: Unable to locate credentials (the deploying identity needs "
        "autoscaling:DescribeAutoScalingGroups)\n"
    )
    assert stack_region("dev") == "eu-west-1"


def test_a_stack_that_does_not_exist_is_one_line():
    answer = run_tunnel("prd")
    assert (answer.returncode, answer.stderr) == (
        1,
        "tunnel: no stack 'prd'; the stacks are: dev local prod staging (stacks/Pulumi.<stack>.yaml)\n",
    )
