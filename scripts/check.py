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


ENCRYPTED = "<encrypted>"


def _encrypted(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def readable(config: dict) -> tuple[dict, list[str]]:
    """The config with what `pulumi config set --secret` wrote (`secure:` ciphertext, which only the
    CLI decrypts) stood in for, and the keys that had it. The stack's secrets stand in by the names the
    Compose file's external secrets need (their names are encrypted with their values); logins by none."""
    from infra.config.compose import ComposeError, load_app
    from infra.config.database import DATABASE_SECRET

    readable, encrypted, plain = dict(config), [], []
    for key, value in config.items():
        if _encrypted(value) or isinstance(value, list) and any(_encrypted(v) for v in value):
            encrypted.append(key)
            readable[key] = ENCRYPTED if _encrypted(value) else [v for v in value if not _encrypted(v)]
            # An entry set without --secret beside encrypted ones: the deploy cannot tell it from them.
            plain += [
                f"{key}[{i}]" for i, v in enumerate(value if isinstance(value, list) else []) if not _encrypted(v)
            ]
    if plain:
        raise ValueError(
            f"{', '.join(plain)} in plain text in the stack file, beside encrypted entries; set each with "
            "pulumi config set --secret --path (and rotate any value that was in plain text)"
        )
    if "restdemo:secrets" in encrypted:
        files = config.get("restdemo:composeFile") or []
        try:
            app = load_app([REPO / path for path in ([files] if isinstance(files, str) else files)]) if files else None
            needed = [source.name for source in app.secrets.values() if source.file is None] if app else []
        except ComposeError:
            needed = []  # parse_settings reports the file's problems
        if config.get("restdemo:database") and config.get("restdemo:platform") == "aws":
            needed = [name for name in needed if name != DATABASE_SECRET]  # RDS keeps the database's
        readable["restdemo:secrets"] = [f"{name}={ENCRYPTED}" for name in needed]
    if "restdemo:registryLogins" in encrypted:
        readable["restdemo:registryLogins"] = []
    return readable, encrypted


def stack_arguments(prog: str, description: str, argv: list[str] | None) -> tuple[argparse.Namespace, Path]:
    """`<stack> [--file F]` as `make check` and `make cost` take them: the arguments, the stack file."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("stack")
    parser.add_argument("--file", type=Path, help="the stack file (default: stacks/Pulumi.<stack>.yaml)")
    args = parser.parse_args(argv)
    return args, args.file or REPO / "stacks" / f"Pulumi.{args.stack}.yaml"


def main(argv: list[str] | None = None) -> int:
    from infra.config.settings import SettingsError, parse_settings
    from tests.support.pulumi_program import run_program, wire_config

    args, path = stack_arguments("make check", __doc__.split("\n\n")[0], argv)
    if not args.file and not path.is_file():
        there = " ".join(
            sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in path.parent.glob("Pulumi.*.yaml"))
        )
        print(f"check: no stack '{args.stack}'; the stacks are: {there} (stacks/Pulumi.<stack>.yaml)", file=sys.stderr)
        return 2
    try:
        config, encrypted = readable(stack_file_config(path))
        parse_settings(wire_config(config), frozenset(encrypted))
    except (ValueError, SettingsError) as exc:
        lines = str(exc).splitlines()
        print(f"check: {args.stack}: {lines[0]}", *(line.strip() for line in lines[1:]), sep="\n  ", file=sys.stderr)
        return 1
    run = run_program(args.stack, config, preview=True, secret_keys=encrypted)
    if encrypted:
        print(
            f"{args.stack}: {', '.join(encrypted)} {'is' if len(encrypted) == 1 else 'are'} encrypted in the stack "
            f"file: not read here (their values are checked at deploy)"
        )
    created = Counter(r.type for r in run.registered if r.custom)
    print(f"{args.stack}: the settings are valid; `pulumi up` would create {sum(created.values())} resources:")
    for typ, count in sorted(created.items()):
        print(f"  {count:4d}  {typ}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
