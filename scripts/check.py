"""`make check STACK=<stack>`: validate a stack file and list what the program would create for it,
with the program under the project's Pulumi mocks (tests/support/pulumi_program.py): no Pulumi
CLI, no cloud account, no Docker. What AWS and the providers would still refuse at `up` time is the
fidelity tier's business (`make test`).

  python scripts/check.py <stack> [--file stacks/Pulumi.<stack>.yaml]

Exit 0 with the resources by type; exit 1 with one line per problem, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def stack_file_config(path: Path) -> dict:
    """The stack file's `config:` over Pulumi.yaml's defaults, as the CLI hands them to the program."""
    if not path.is_file():
        raise ValueError(f"no stack file {path}")
    try:
        stack = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not YAML: {str(exc).splitlines()[0]}") from None
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    defaults = {
        key if ":" in key else f"{project['name']}:{key}": spec["default"]
        for key, spec in (project.get("config") or {}).items()
        if "default" in spec
    }
    return defaults | (stack.get("config") or {})


def main(argv: list[str] | None = None) -> int:
    from infra.config.settings import SettingsError, parse_settings
    from tests.support.pulumi_program import run_program, wire_config

    parser = argparse.ArgumentParser(prog="make check", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack")
    parser.add_argument("--file", type=Path, help="the stack file (default: stacks/Pulumi.<stack>.yaml)")
    args = parser.parse_args(argv)
    path = args.file or REPO / "stacks" / f"Pulumi.{args.stack}.yaml"
    if not args.file and not path.is_file():
        there = " ".join(
            sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in path.parent.glob("Pulumi.*.yaml"))
        )
        print(f"check: no stack '{args.stack}'; the stacks are: {there} (stacks/Pulumi.<stack>.yaml)", file=sys.stderr)
        return 2
    try:
        config = stack_file_config(path)
        parse_settings(wire_config(config))
    except (ValueError, SettingsError) as exc:
        lines = str(exc).splitlines()
        print(f"check: {args.stack}: {lines[0]}", *(line.strip() for line in lines[1:]), sep="\n  ", file=sys.stderr)
        return 1
    run = run_program(args.stack, config, preview=True)
    created = Counter(r.type for r in run.registered if r.custom)
    print(f"{args.stack}: the settings are valid; `pulumi up` would create {sum(created.values())} resources:")
    for typ, count in sorted(created.items()):
        print(f"  {count:4d}  {typ}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
