"""GET /ready: 200 only while this node is an active swarm member (managers: reachable, in the quorum)."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
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


# A connection gets this long, in all, to send its request (a deadline, not a read timeout: a
# sender trickling a byte at a time is cut too; the answer, which waits on the engine, is not cut);
# this many are served at once, this many from one address, and one more is closed at once: slow or
# idle connections cannot pile up threads or starve the health check.
REQUEST_SECONDS = 2.0
MAX_CONNECTIONS = 16
MAX_PER_ADDRESS = 4


class BoundedServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most MAX_CONNECTIONS connections in handling at once, at most
    MAX_PER_ADDRESS from one address, each cut when its request is not in REQUEST_SECONDS after it opened."""

    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.lock = threading.Lock()
        self.per_address: Counter[str] = Counter()
        self.deadlines: dict[int, threading.Timer] = {}

    def request_read(self, request) -> None:
        """The request is in (or the connection over): its deadline no longer applies."""
        deadline = self.deadlines.pop(id(request), None)
        if deadline is not None:
            deadline.cancel()

    def process_request(self, request, client_address):
        address = client_address[0]
        with self.lock:
            admitted = self.per_address[address] < MAX_PER_ADDRESS and self.slots.acquire(blocking=False)
            if admitted:
                self.per_address[address] += 1
        if not admitted:
            self.shutdown_request(request)  # full: closed at once, not queued behind idle ones
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        deadline = threading.Timer(REQUEST_SECONDS, cut, args=(request,))
        deadline.daemon = True
        self.deadlines[id(request)] = deadline
        deadline.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.request_read(request)
            with self.lock:
                self.per_address[client_address[0]] -= 1
                if not self.per_address[client_address[0]]:
                    del self.per_address[client_address[0]]
            self.slots.release()


def cut(request: socket.socket) -> None:
    """End a connection past its deadline: the handler's pending read or write returns."""
    try:
        request.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


def serve(port: int, probe) -> ThreadingHTTPServer:
    """probe() -> (ready, reason). Returns the server; the caller runs serve_forever()."""

    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_SECONDS  # StreamRequestHandler: the connection's socket timeout

        def parse_request(self):
            parsed = super().parse_request()
            self.server.request_read(self.request)
            return parsed

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

    return BoundedServer(("0.0.0.0", port), Handler)
