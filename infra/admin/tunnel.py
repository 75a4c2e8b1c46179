"""The Docker API through a Session Manager port forward (`adminAccess: session-manager`).

No CIDR is opened: the deploy job (or an operator) runs `python -m ops.tunnel <stack>`,
which forwards 127.0.0.1:TUNNEL_PORT to port 2376 on an in-service manager with
`aws ssm start-session --document-name AWS-StartPortForwardingSession`, and re-opens it on
another manager if it drops. The docker provider talks mutual TLS to 127.0.0.1, which the
server certificate names. On a first `up` the managers do not exist before the program
creates them: the tunnel waits for one, and the program waits for the tunnel before the
docker provider's first call.
"""

from __future__ import annotations

import socket
import time

TUNNEL_ADDRESS = "127.0.0.1"
TUNNEL_PORT = 23760
TUNNEL_WAIT_SECONDS = 600.0


def tunnel_host(port: int = TUNNEL_PORT) -> str:
    return f"tcp://{TUNNEL_ADDRESS}:{port}"


def wait_for_tunnel(port: int = TUNNEL_PORT, timeout: float = TUNNEL_WAIT_SECONDS) -> str:
    """The tunnel's host once something listens on it; a clear error after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((TUNNEL_ADDRESS, port), timeout=2):
                return tunnel_host(port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nothing listens on {TUNNEL_ADDRESS}:{port} after {timeout:g}s: adminAccess is session-manager, "
                    "so run `python -m ops.tunnel <stack>` beside `pulumi up` "
                    "(docs/operations.md: Reaching the Docker API)"
                ) from None
            time.sleep(2)
