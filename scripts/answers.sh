#!/usr/bin/env bash
# Ask URL + PATH (the stack's healthCheckPath, default /health) N times (default 6) and print who
# answered; exit 1 when none did, so that `make up` does not report success for a service nobody
# can reach (ops/answers.py).
set -uo pipefail
cd "$(dirname "$0")/.." && exec .venv/bin/python -m ops.answers "$@"
