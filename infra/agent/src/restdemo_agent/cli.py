"""restdemo-agent bootstrap | run.

This is the entry point the cluster starts on every node (cloud-init: `bootstrap` once,
then `run`). Today `bootstrap` checks the contract and `run` serves readiness; forming,
draining and healing the swarm are issue #5.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from restdemo_agent.contract import AgentEnvironment
from restdemo_agent.readiness import readiness, serve


def log(action: str, **fields) -> None:
    print(
        json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "action": action, **fields}), flush=True
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="restdemo-agent", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["bootstrap", "run"])
    args = parser.parse_args(argv)
    try:
        environment = AgentEnvironment.from_environ()
    except ValueError as exc:
        log("error", message=str(exc))
        return 2
    if args.command == "bootstrap":
        log("bootstrap", role=environment.role, stack=environment.stack, result="environment complete")
        return 0

    import docker

    client = docker.from_env()
    server = serve(environment.readiness_port, lambda: readiness(client.info().get("Swarm", {}), environment.role))
    log("run", readiness_port=environment.readiness_port)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
