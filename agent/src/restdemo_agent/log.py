"""One structured line per action, on stdout (the awslogs driver ships it)."""

from __future__ import annotations

import json
import time


def log(action: str, **fields) -> None:
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "action": action, **fields}
    print(json.dumps(line, default=str), flush=True)
