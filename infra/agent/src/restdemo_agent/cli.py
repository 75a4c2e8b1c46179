"""restdemo-agent bootstrap | run: the swarm node agent cloud-init starts on every node.

bootstrap  once per boot: form the swarm (the manager that wins the claim) or join it
run        serve /ready on the readiness port; on managers: drain nodes that are being
           terminated, label nodes, keep the primary record, remove dead nodes, refresh
           registry credentials (leader), prune on a schedule (RESTDEMO_PRUNE_INTERVAL)
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

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

    from restdemo_agent.agent import Agent, bootstrap
    from restdemo_agent.aws import Lifecycle, SwarmState
    from restdemo_agent.engine import Engine
    from restdemo_agent.identity import identity

    aws = clients(environment)
    engine = Engine(docker.from_env())
    state = SwarmState(aws["dynamodb"], aws["ssm"], environment.state_table, environment.ssm_prefix)
    me = identity()
    if args.command == "bootstrap":
        bootstrap(environment.role, me, engine, state)
        return 0

    server = serve(environment.readiness_port, lambda: readiness(engine.swarm(), environment.role))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    agent = Agent(
        role=environment.role,
        me=me,
        engine=engine,
        state=state,
        lifecycle=Lifecycle(aws["sqs"], aws["autoscaling"], environment.lifecycle_queue_url),
        ec2=aws["ec2"],
        ecr=aws["ecr"],
        registry=environment.registry,
    )
    prune_every = environment.prune_interval_seconds
    last_prune = time.monotonic()
    log("run", role=environment.role, readiness_port=environment.readiness_port, prune_every=prune_every)
    while True:
        try:
            if engine.is_manager():
                agent.handle_lifecycle()
                agent.heal()
            if prune_every and time.monotonic() - last_prune > prune_every:
                agent.prune()
                last_prune = time.monotonic()
        except Exception as exc:  # one bad round must not stop the agent; it is logged and retried
            log("error", message=str(exc)[:500], kind=type(exc).__name__)
        time.sleep(5)


if __name__ == "__main__":
    sys.exit(main())
