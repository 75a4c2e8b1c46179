"""The Session Manager port forward's command line (`python -m ops.tunnel <stack>`): 127.0.0.1:PORT to
port 2376 on an in-service manager, re-opened on another one when it drops (infra/admin/tunnel.py:
where the program finds it)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from infra.admin.tunnel import TUNNEL_ADDRESS, TUNNEL_PORT
from restdemo_agent.contract import DOCKER_TLS_PORT, group_name


def choose_manager(group: dict) -> str | None:
    """An in-service, healthy manager of the group (a DescribeAutoScalingGroups entry), on the group's
    current launch template version when there is one (an instance refresh is about to retire the
    others); the same one each time while it stays so (lowest id)."""
    ready = [i for i in group["Instances"] if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"]
    current = (group.get("LaunchTemplate") or {}).get("Version")
    newest = [i for i in ready if (i.get("LaunchTemplate") or {}).get("Version") == current]
    chosen = sorted(newest or ready, key=lambda i: i["InstanceId"])
    return chosen[0]["InstanceId"] if chosen else None


def session_command(region: str, instance_id: str, port: int = TUNNEL_PORT) -> list[str]:
    return [
        "aws",
        "ssm",
        "start-session",
        "--region",
        region,
        "--target",
        instance_id,
        "--document-name",
        "AWS-StartPortForwardingSession",
        "--parameters",
        f"portNumber={DOCKER_TLS_PORT},localPortNumber={port}",
    ]


# A session that ends this fast this many times in a row is failing (no permission, no plugin).
SHORT_SESSION_SECONDS = 15
SHORT_SESSIONS_ALLOWED = 5


STACKS = Path(__file__).resolve().parents[1] / "stacks"


def stack_region(stack: str, stacks: Path = STACKS) -> str | None:
    """The stack file's `aws:region`: the region its resources are in, whatever the shell says."""
    import yaml

    path = stacks / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        names = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in stacks.glob("Pulumi.*.yaml"))
        raise ValueError(f"no stack '{stack}'; the stacks are: {' '.join(names)} (stacks/Pulumi.<stack>.yaml)")
    return ((yaml.safe_load(path.read_text()) or {}).get("config") or {}).get("aws:region")


def main(argv: list[str] | None = None) -> int:
    """Errors are one line on stderr and exit 1: no stack, AWS not answering or refusing."""
    from botocore.exceptions import BotoCoreError, ClientError

    parser = argparse.ArgumentParser(description="Forward 127.0.0.1:PORT to a swarm manager's Docker API.")
    parser.add_argument("stack")
    parser.add_argument("--region", default=None, help="default: the stack file's aws:region")
    parser.add_argument("--port", type=int, default=TUNNEL_PORT)
    parser.add_argument("--wait", type=float, default=5400.0, help="seconds to wait for a manager")
    args = parser.parse_args(argv)
    try:
        return forward(args.stack, args.region or stack_region(args.stack), args.port, args.wait)
    except ValueError as exc:
        print(f"tunnel: {exc}", file=sys.stderr)
    except (BotoCoreError, ClientError) as exc:
        print(
            f"tunnel: AWS: {exc} (the deploying identity needs autoscaling:DescribeAutoScalingGroups)", file=sys.stderr
        )
    return 1


def forward(stack: str, region: str | None, port: int, wait: float) -> int:
    """Keep a session open to an in-service manager, a new one when it ends; 1 when none comes."""
    import boto3

    autoscaling = boto3.client("autoscaling", region_name=region)
    region = autoscaling.meta.region_name
    name = group_name(stack, "manager")
    deadline, short = time.monotonic() + wait, 0
    while time.monotonic() < deadline:
        found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        manager = choose_manager(found[0]) if found else None
        if manager is None:
            time.sleep(10)
            continue
        print(f"tunnel: {TUNNEL_ADDRESS}:{port} -> {manager}:{DOCKER_TLS_PORT}", file=sys.stderr, flush=True)
        started = time.monotonic()
        subprocess.run(session_command(region, manager, port), check=False)
        short = short + 1 if time.monotonic() - started < SHORT_SESSION_SECONDS else 0
        if short >= SHORT_SESSIONS_ALLOWED:
            print(f"tunnel: {short} sessions in a row ended at once; giving up", file=sys.stderr)
            return 1
        time.sleep(2)  # the session ended (the manager left?): another one
        deadline = time.monotonic() + wait
    print(f"tunnel: no manager of {name} in service after {wait:g}s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
