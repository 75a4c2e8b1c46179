"""GET /ready: 200 only while this node is an active swarm member (managers: reachable, in the quorum)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def readiness(swarm_info: dict, role: str) -> tuple[bool, str]:
    """From `docker info`'s Swarm section: is this node ready for its role?"""
    state = swarm_info.get("LocalNodeState")
    if state != "active":
        return False, f"swarm state {state or 'unknown'}"
    if role == "manager" and not swarm_info.get("ControlAvailable"):
        return False, "not a reachable manager"
    if role == "manager" and swarm_info.get("Error"):
        # ControlAvailable stays true on a manager that lost its quorum; only Error tells.
        return False, f"swarm error: {swarm_info['Error'][:200]}"
    return True, "active"


def serve(port: int, probe) -> ThreadingHTTPServer:
    """probe() -> (ready, reason). Returns the server; the caller runs serve_forever()."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/ready":
                self.send_error(404)
                return
            ready, reason = probe()
            body = json.dumps({"ready": ready, "reason": reason}).encode()
            self.send_response(200 if ready else 503)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # one line per action is logged by the agent, not per probe
            pass

    return ThreadingHTTPServer(("0.0.0.0", port), Handler)
