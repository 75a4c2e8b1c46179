"""restdemo-agent bootstrap | run: the swarm node agent cloud-init starts on every node.

bootstrap  become a member, retrying: form the swarm (the manager that wins the claim) or join it
run        bootstrap (every boot: the container restarts with the engine), serve /ready; on
           managers: complete their own launch hook, drain nodes that are being terminated,
           label nodes, keep the primary record, remove dead nodes, let new members' launches
           through and refresh registry credentials (leader); rejoin when orphaned; prune on a
           schedule
"""

from __future__ import annotations

import argparse
import sys
import threading

from restdemo_agent.contract import AgentEnvironment
from restdemo_agent.log import log
from restdemo_agent.readiness import readiness, serve


def clients(environment: AgentEnvironment):
    import boto3

    session = boto3.session.Session(region_name=environment.region)
    return {name: session.client(name) for name in ("dynamodb", "ssm", "sqs", "autoscaling", "ec2", "ecr")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="restdemo-agent",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("command", choices=["bootstrap", "run"])
    args = parser.parse_args(argv)
    try:
        environment = AgentEnvironment.from_environ()
    except ValueError as exc:
        log("error", message=str(exc))
        return 2

    import docker

    from restdemo_agent.agent import Agent, bootstrap_until_member
    from restdemo_agent.aws import Lifecycle, SwarmState
    from restdemo_agent.engine import Engine
    from restdemo_agent.identity import identity

    aws = clients(environment)
    engine = Engine(docker.from_env())
    state = SwarmState(
        aws["dynamodb"],
        aws["ssm"],
        environment.state_table,
        environment.ssm_prefix,
        environment.secrets_key,
    )
    me = identity()
    if args.command == "bootstrap":
        joined = bootstrap_until_member(
            environment.role,
            me,
            engine,
            state,
            timeout=environment.bootstrap_timeout_seconds,
            stale_after=environment.primary_stale_seconds,
        )
        return 0 if joined else 1

    server = serve(environment.readiness_port, lambda: readiness(engine.swarm(), environment.role))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log(
        "run",
        role=environment.role,
        readiness_port=environment.readiness_port,
        prune_every=environment.prune_interval_seconds,
        bootstrap_timeout=environment.bootstrap_timeout_seconds,
    )
    Agent(
        environment=environment,
        me=me,
        engine=engine,
        state=state,
        lifecycle=Lifecycle(aws["sqs"], aws["autoscaling"], environment.lifecycle_queue_url),
        ec2=aws["ec2"],
        ecr=aws["ecr"],
    ).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
