"""Benchmarks for the foundation (not tests: numbers to record, not assertions).

  the image arc: naive single-stage, single-stage on slim, the multi-stage image before #13, the
  pruned runtime: size, layers, and the time an empty engine takes to pull each from a local registry
  cold build time, and rebuild time after a one-line app change
  restdemo-cli start time (and the interpreter's own start, for scale)
  /health requests per second and p99 on one core (wrk -t1 -c64, server pinned to CPU 0)
  rollout time of 3 replicas on a real swarm against its lower bound, with each task's time to running
  the Pulumi program's run time per stack under mocks

Run with `make bench`; needs a Docker engine, wrk, taskset and docker-registry. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from infra.config.settings import parse_settings  # noqa: E402
from tests.support.docker_engine import base_image_args, build_image, require_engine  # noqa: E402
from tests.support.net import free_port, wait_until  # noqa: E402
from tests.support.pulumi_program import stack_config, wire_config  # noqa: E402

BIN = Path(sys.executable).parent
MB = 1_000_000


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


FULL_BASE = "restdemo-base/python-full:bookworm"  # scripts/base-images.sh --full
TODAYS_MULTI_STAGE = "b689d2a"  # app/ as of the last commit before the pruned runtime (#13)


def arc_images(client, bases: dict[str, str], scratch: Path) -> dict[str, str]:
    """The image arc, each built here: label -> local tag."""
    local_bases = "BUILD_BASE" in bases  # these machines: debootstrap stand-ins for the official images
    if local_bases and not client.images.list(name=FULL_BASE):
        subprocess.run(["bash", str(REPO / "scripts" / "base-images.sh"), "--full"], check=True)
    full = FULL_BASE if local_bases else "python:3.11-bookworm"
    slim = bases["BUILD_BASE"] if local_bases else "python:3.11-slim-bookworm"
    naive = REPO / "benchmarks" / "naive.Dockerfile"
    archive = subprocess.run(["git", "archive", TODAYS_MULTI_STAGE, "app"], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive.stdout, check=True)
    builds = {
        f"naive single-stage ({full})": (REPO / "app", naive, {"BUILD_BASE": full}),
        f"single-stage on slim ({slim})": (REPO / "app", naive, {"BUILD_BASE": slim}),
        f"multi-stage as of {TODAYS_MULTI_STAGE}": (scratch / "app", None, bases),
        "pruned runtime (now)": (REPO / "app", None, bases),
    }
    tags = {}
    for index, (label, (context, dockerfile, args)) in enumerate(builds.items()):
        tags[label] = f"restdemo-arc:{index}"
        build_image(context, tags[label], build_args=args, dockerfile=dockerfile)
    return tags


# The fresh engine's own bridge: a dockerd started with `--bridge none` deletes docker0, which
# the main engine needs (moby's daemon removes the default bridge interface when it is disabled).
ARC_BRIDGE, ARC_BRIDGE_ADDRESS = "restdemo-arc0", "10.254.254.1/24"


@contextmanager
def fresh_engine(scratch: Path):
    """A second dockerd with an empty data root, on a bridge of its own and no iptables, for cold pulls."""
    import docker

    for command in (
        ["ip", "link", "add", ARC_BRIDGE, "type", "bridge"],
        ["ip", "addr", "add", ARC_BRIDGE_ADDRESS, "dev", ARC_BRIDGE],
        ["ip", "link", "set", ARC_BRIDGE, "up"],
    ):
        subprocess.run(command, check=True)
    socket_path = scratch / "docker.sock"
    process = subprocess.Popen(
        ["dockerd", "--data-root", str(scratch / "data"), "--exec-root", str(scratch / "exec"),
         "--pidfile", str(scratch / "dockerd.pid"), "-H", f"unix://{socket_path}", "--bridge", ARC_BRIDGE,
         "--iptables=false", "--ip6tables=false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(socket_path.exists, 30, what="the fresh engine's socket")
        yield wait_until(
            lambda: docker.DockerClient(base_url=f"unix://{socket_path}", timeout=300), 30, what="the fresh engine"
        )
    finally:
        process.terminate()
        process.wait(30)
        subprocess.run(["ip", "link", "del", ARC_BRIDGE], check=False)


def image_arc(client, bases: dict[str, str]) -> list[tuple[str, str]]:
    """Size, layers and the time an empty engine takes to pull each image from a local registry
    (a new node's time to capacity, without the network between)."""
    from tests.e2e.harness import local_registry
    from tests.support.docker_engine import require_tool

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        tags = arc_images(client, bases, scratch)
        binary = require_tool("docker-registry", "apt-get install docker-registry")
        (scratch / "registry").mkdir()
        (scratch / "engine").mkdir()
        with local_registry(binary, scratch / "registry") as registry, fresh_engine(scratch / "engine") as engine:
            for label, tag in tags.items():
                image = client.images.get(tag)
                remote = f"{registry}/restdemo-arc:{tag.rpartition(':')[2]}"
                image.tag(remote)
                client.images.push(remote)
                pull = timed(lambda remote=remote: engine.images.pull(remote))
                for pulled in engine.images.list():
                    engine.images.remove(pulled.id, force=True)
                engine.images.prune()
                layers = len(image.attrs["RootFS"]["Layers"])
                size = image.attrs["Size"] / MB
                rows.append(
                    (f"{label}: size, layers, pull into an empty engine", f"{size:.1f} MB, {layers}, {pull:.2f} s")
                )
    return rows


def build_times(bases: dict[str, str]) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as scratch:
        context = Path(scratch) / "app"
        shutil.copytree(REPO / "app", context)
        # Cold: nothing cached for this context (base images are local and not counted).
        subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True)
        cold = timed(lambda: build_image(context, "restdemo-bench:cold", build_args=bases))
        routes = context / "src" / "restdemo" / "routes.py"
        routes.write_text(routes.read_text() + "\n# a one-line change\n")
        rebuild = timed(lambda: build_image(context, "restdemo-bench:cold", build_args=bases))
    return [("cold build (no cache)", f"{cold:.1f} s"), ("rebuild after a one-line app change", f"{rebuild:.1f} s")]


# The servers compared for throughput, each started the same way: restdemo as it ships (granian's
# Rust tasks), restdemo on granian's asyncio tasks, and the smallest RSGI app in restdemo's
# granian settings.
SERVERS = {
    "restdemo /health": [str(BIN / "restdemo")],
    "restdemo /health, asyncio tasks": [
        sys.executable,
        "-c",
        "from restdemo import server; server.TASK_IMPL = 'asyncio'; server.main()",
    ],
    "bare RSGI app, same granian settings": [
        sys.executable,
        "-c",
        "from restdemo.server import granian_server; granian_server('bare_rsgi:app', factory=False).serve()",
    ],
}


def add_baseline(revision: str, directory: Path) -> str:
    """restdemo's app as of `revision` (its app/ from git) as one more server to compare with."""
    archive = subprocess.run(["git", "archive", revision, "app"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    name = f"restdemo /health at {revision}"
    SERVERS[name] = [sys.executable, "-c", "from restdemo.server import main; main()"]
    SOURCES[name] = directory / "app" / "src"
    return name


SOURCES: dict[str, Path] = {}  # a server's restdemo package from elsewhere than this checkout


def start_server(port: int, cpu: str, server: str = "restdemo /health") -> subprocess.Popen:
    """One of SERVERS, pinned to one CPU."""
    path = [str(SOURCES[server])] if server in SOURCES else []
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "VER": "bench",
        "PYTHONPATH": os.pathsep.join([*path, str(REPO / "benchmarks")]),
    }
    process = subprocess.Popen(
        ["taskset", "-c", cpu, *SERVERS[server]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_until(
        lambda: (
            subprocess.run(
                [str(BIN / "restdemo-cli"), "show", "health", "--url", f"http://127.0.0.1:{port}"], capture_output=True
            ).returncode
            == 0
        ),
        timeout=15,
        what="server up",
    )
    return process


def cli_start(runs: int) -> list[tuple[str, str]]:
    port = free_port()
    server = start_server(port, "0")
    try:

        def median_ms(command):
            samples = [timed(lambda: subprocess.run(command, capture_output=True, check=True)) for _ in range(runs)]
            return statistics.median(samples) * 1000

        cli = median_ms([str(BIN / "restdemo-cli"), "show", "health", "--url", f"http://127.0.0.1:{port}"])
        bare = median_ms([sys.executable, "-c", "pass"])
    finally:
        server.terminate()
        server.wait()
    return [
        (f"`restdemo-cli show health` wall time (median of {runs})", f"{cli:.1f} ms"),
        (f"`python -c pass` wall time, for scale (median of {runs})", f"{bare:.1f} ms"),
    ]


def parse_wrk(output: str) -> tuple[float, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", output).groups()
    p99_ms = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    return rps, p99_ms


def wrk_round(port: int, seconds: int) -> tuple[float, float]:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/health"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


def throughput(rounds: int, seconds: int) -> list[tuple[str, str]]:
    """Every server of SERVERS, interleaved round by round so all see the same machine."""
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in SERVERS}
    for _ in range(rounds):
        for name in SERVERS:
            port = free_port()
            server = start_server(port, "0", name)
            try:
                results[name].append(wrk_round(port, seconds))
            finally:
                server.terminate()
                server.wait()
    rows = []
    for name, samples in results.items():
        rps = [r for r, _ in samples]
        rows += [
            (
                f"{name}: req/s on one core (median of {rounds} x {seconds} s; all: "
                f"{', '.join(f'{r / 1000:.1f}k' for r in rps)})",
                f"{statistics.median(rps):,.0f}",
            ),
            (f"{name}: p99 latency (median of {rounds})", f"{statistics.median(p for _, p in samples):.2f} ms"),
        ]
    medians = {name: statistics.median(r for r, _ in samples) for name, samples in results.items()}
    bare = medians["bare RSGI app, same granian settings"]
    for name in (n for n in SERVERS if n.startswith("restdemo")):
        rows.append((f"{name} as a share of the bare app's req/s", f"{medians[name] / bare:.0%}"))
    return rows


def rollout() -> list[tuple[str, str]]:
    """v1 -> v2 of the local stack's service, as the e2e tier applies it; no load balancer needed."""
    from datetime import datetime

    import docker

    from tests.e2e.harness import build_and_push, capture, deployed, local_registry, swarm_mode

    client = docker.from_env(timeout=120)

    def ts(text: str) -> float:
        return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()

    with (
        tempfile.TemporaryDirectory() as scratch,
        swarm_mode(client),
        local_registry(shutil.which("docker-registry"), Path(scratch)) as registry,
        deployed(client, registry) as deployment,
    ):
        refs = {}
        for version in ("v1", "v2"):
            run = capture(registry, client, version=version)
            refs[version] = (run, build_and_push(client, run.one("docker-build:index:Image").inputs))
        deployment.apply(*refs["v1"])
        first = deployment.wait_converged(refs["v1"][1])
        new_ref = refs["v2"][1]
        started = time.monotonic()
        deployment.apply(*refs["v2"])
        wait_until(
            lambda: (
                {t["Spec"]["ContainerSpec"]["Image"] for t in deployment.running_tasks()} == {new_ref}
                and len(deployment.running_tasks()) == 3
            ),
            300,
            interval=0.2,
        )
        all_new = time.monotonic() - started
        deployment.wait_converged(new_ref)
        completed = time.monotonic() - started
        to_running = sorted(ts(t["Status"]["Timestamp"]) - ts(t["CreatedAt"]) for t in deployment.running_tasks())
    settings = parse_settings(wire_config(stack_config("local")))
    bound = settings.rollout_lower_bound()
    swarm_model = settings.swarm_update_seconds()
    return [
        ("first deployment of 3 replicas (to all healthy)", f"{first:.1f} s"),
        ("each new task in the rollout, created to running (healthy)", ", ".join(f"{t:.1f} s" for t in to_running)),
        (
            f"rollout v1 -> v2: all 3 replicas on v2 (lower bound {bound:g} s)",
            f"{all_new:.1f} s ({all_new / bound:.2f}x)",
        ),
        (
            f"rollout v1 -> v2: swarm marks the update completed (model {swarm_model:g} s)",
            f"{completed:.1f} s ({completed / swarm_model:.2f}x)",
        ),
    ]


def program_runs(runs: int) -> list[tuple[str, str]]:
    from tests.support.pulumi_program import STACKS, run_program

    run_program("local")  # imports (pulumi_aws alone takes seconds) are not the program's run time
    rows = []
    for stack in STACKS:
        median = statistics.median(timed(lambda stack=stack: run_program(stack)) for _ in range(runs))
        rows.append((f"program run under mocks, stack {stack} (median of {runs})", f"{median * 1000:.0f} ms"))
    return rows


SECTIONS = ("images", "cli", "throughput", "rollout", "program")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="wrk rounds (default 5)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per wrk round (default 10)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--baseline", metavar="REV", help="also measure the app as of this git revision")
    args = parser.parse_args()
    sections = args.only.split(",")
    baseline_dir = tempfile.TemporaryDirectory()
    if args.baseline:
        add_baseline(args.baseline, Path(baseline_dir.name))

    rows: list[tuple[str, str]] = []
    if "images" in sections:
        client = require_engine()
        bases = base_image_args(client)
        rows += image_arc(client, bases)
        rows += build_times(bases)
    if "cli" in sections:
        rows += cli_start(runs=30)
    if "throughput" in sections:
        rows += throughput(args.rounds, args.seconds)
    if "rollout" in sections:
        rows += rollout()
    if "program" in sections:
        rows += program_runs(runs=5)

    print(f"\n| measure ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores) | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
