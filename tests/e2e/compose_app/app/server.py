"""One role of the tests' multi-service app, named by ROLE.

GET /ready: 200 while serving (503 once SIGTERM came, for DRAIN_SECONDS, then it stops).
GET /: who answered (role, version: RELEASE, hostname), the secret `greeting` it reads from
/run/secrets/greeting when it has one, and when UPSTREAM names another service, that one's answer,
fetched by name over the stack's network.
POST /notes (when NOTES names a file, on a volume): the body appended as a line; GET /notes: the lines.
"""

import json
import os
import signal
import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DRAIN_SECONDS = 3.0
SECRET = "/run/secrets/greeting"
stopping = threading.Event()


def identity() -> dict:
    found = {
        "role": os.environ.get("ROLE", ""),
        "version": os.environ.get("RELEASE", ""),
        "hostname": socket.gethostname(),
    }
    if os.path.exists(SECRET):
        with open(SECRET) as secret:
            found["greeting"] = secret.read().strip()
    upstream = os.environ.get("UPSTREAM")
    if upstream:
        with urllib.request.urlopen(f"http://{upstream}/", timeout=2) as answer:
            found["upstream"] = json.load(answer)
    return found


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if stopping.is_set():
            return self.send(503, {"error": "stopping"})
        if self.path == "/ready":
            return self.send(200, {"ready": True})
        if self.path == "/":
            try:
                return self.send(200, identity())
            except OSError as exc:
                return self.send(502, {"error": str(exc)})
        if self.path == "/notes" and os.environ.get("NOTES"):
            with open(os.environ["NOTES"], "a+") as notes:
                notes.seek(0)
                return self.send(200, {"notes": notes.read().splitlines()})
        return self.send(404, {"error": "not found"})

    def do_POST(self):
        if stopping.is_set():
            return self.send(503, {"error": "stopping"})
        if self.path != "/notes" or not os.environ.get("NOTES"):
            return self.send(404, {"error": "not found"})
        line = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode().replace("\n", " ")
        with open(os.environ["NOTES"], "a") as notes:
            notes.write(line + "\n")
        return self.send(201, {"written": line})

    def send(self, status, document):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("0.0.0.0", 8080), Handler)

    def stop(*_):
        stopping.set()
        threading.Timer(DRAIN_SECONDS, server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
