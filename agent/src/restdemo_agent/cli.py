"""restdemo-agent bootstrap | run: the swarm node agent cloud-init starts on every node.

bootstrap  become a member, retrying: form the swarm (the manager that wins the claim) or join it
run        bootstrap (every boot: the container restarts with the engine), serve /ready; on
           managers: complete their own launch hook, drain nodes that are being terminated,
           label nodes, keep the primary record, remove dead nodes, let new members' launches
           through, refresh registry credentials and drain workers whose spot instance is being
           interrupted (leader); on workers: record such a notice from the instance metadata; rejoin
           when orphaned; prune on a schedule
recover    on a surviving manager of a swarm that lost its quorum: force a new cluster from its raft
           log (the survivor that saw a leader last, unless --here), remove the lost managers and
           have the group replace them, point the primary record here (docs/operations.md)
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
    names = ("dynamodb", "ssm", "sqs", "autoscaling", "ec2", "ecr", "cloudwatch", "secretsmanager", "sts", "elbv2")
    return {name: session.client(name) for name in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="restdemo-agent",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("command", choices=["bootstrap", "run", "recover"])
    parser.add_argument(
        "--here", action="store_true", help="recover: keep this manager's raft log even if another survivor's is newer"
    )
    args = parser.parse_args(argv)
    try:
        environment = AgentEnvironment.from_environ()
    except ValueError as exc:
        log("error", message=str(exc))
        return 2

    import docker

    from restdemo_agent.agent import Agent, bootstrap_until_member
    from restdemo_agent.aws import Lifecycle, SwarmState, other_members_running
    from restdemo_agent.engine import Engine
    from restdemo_agent.identity import identity
    from restdemo_agent.plan import confirm_every

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
    lifecycle = Lifecycle(aws["sqs"], aws["autoscaling"], environment.lifecycle_queue_url)
    if args.command == "recover":
        every = confirm_every(environment.primary_stale_seconds)
        return recover_command(
            me,
            engine,
            state,
            lifecycle,
            aws["ec2"],
            here=args.here,
            recorded_every=every,
            readiness_port=environment.readiness_port,
        )
    if args.command == "bootstrap":
        joined = bootstrap_until_member(
            environment.role,
            me,
            engine,
            state,
            timeout=environment.bootstrap_timeout_seconds,
            stale_after=environment.primary_stale_seconds,
            managers_running=lambda: other_members_running(
                aws["autoscaling"], aws["ec2"], environment.group_name, me.instance_id
            ),
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
        lifecycle=lifecycle,
        ec2=aws["ec2"],
        ecr=aws["ecr"],
        cloudwatch=aws["cloudwatch"],
        secretsmanager=aws["secretsmanager"],
        sts=aws["sts"],
        elbv2=aws["elbv2"],
    ).run()
    return 0


def recover_command(
    me, engine, state, lifecycle, ec2, *, here: bool, recorded_every: float, readiness_port: int
) -> int:
    """One line for a refusal or a failure (exit 1), never a traceback; 0 once recovered."""
    from restdemo_agent.recovery import RecoveryRefused, recover

    try:
        done = recover(
            me, engine, state, lifecycle, ec2, here=here, recorded_every=recorded_every, readiness_port=readiness_port
        )
    except RecoveryRefused as exc:
        log("recover-refused", message=str(exc))
        return 1
    except Exception as exc:  # the operator gets one line; the swarm is as the last step left it
        log("recover-failed", message=str(exc)[:500], kind=type(exc).__name__)
        return 1
    log("recovered", node_id=done["node_id"], removed=done["removed"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
