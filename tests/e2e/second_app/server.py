"""The second app: GET /ready answers who and which version it is, as JSON, while it is ready.

On SIGTERM it turns unready (503), so the load balancer's check takes it out, answers what is in
flight for DRAIN_SECONDS, then stops: a rollout fails no request.
"""

import json
import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DRAIN_SECONDS = 3.0
draining = threading.Event()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] != "/ready":
            self.answer(404, {"error": "not found"})
        elif draining.is_set():
            self.answer(503, {"error": "draining"})
        else:
            self.answer(
                200,
                {
                    "service": "second-app",
                    "version": os.environ.get("VER", "unknown"),
                    "hostname": socket.gethostname(),
                    "greeting": os.environ.get("GREETING", ""),
                },
            )

    def answer(self, status, document):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler)

    def drain(*_):
        draining.set()
        threading.Timer(DRAIN_SECONDS, server.shutdown).start()

    signal.signal(signal.SIGTERM, drain)
    server.serve_forever()


if __name__ == "__main__":
    main()
