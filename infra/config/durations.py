"""Go-style durations ("15s", "1m30s", "500ms"), as Docker and Swarm write them.

Settings accept any Go duration; what goes to the docker provider is the form the
provider reads back from the daemon, so a second preview shows no diff: Go's
time.Duration.String() shortened by the provider's `shortDur` ("5m0s" reads back as
"5m", "1h0m0s" as "1h"; kreuzwerker/terraform-provider-docker, structures_service.go).
"""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration; ValueError when it does not parse."""
    text = str(text).strip()
    if text == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(f"{text!r} is not a duration; write it like 500ms, 15s, 1m30s or 2h")
    return total


def go_duration(seconds: float) -> str:
    """Go's canonical spelling: 0s, 500ms, 15s, 1m30s, 5m0s, 1h0m0s."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        millis = seconds * 1000
        return f"{millis:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    secs_text = f"{secs:g}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{secs_text}"
    if minutes:
        return f"{int(minutes)}m{secs_text}"
    return secs_text


def docker_duration(seconds: float) -> str:
    """The docker provider's read-back form (`shortDur`): Go's spelling without a trailing
    zero-seconds or zero-minutes part: 15s, 1m30s, 5m, 1h, 1h30m."""
    text = go_duration(seconds)
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return text
