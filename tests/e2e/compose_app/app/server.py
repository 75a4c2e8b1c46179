"""One role of the tests' multi-service app, named by ROLE.

GET /ready: 200 while serving (503 once SIGTERM came, for DRAIN_SECONDS, then it stops).
GET /: who answered (role, version: RELEASE, hostname), the secret `greeting` it reads from
/run/secrets/greeting when it has one, and when UPSTREAM names another service, that one's answer,
fetched by name over the stack's network.
POST /notes (when NOTES names a file, on a volume): the body appended as a line; GET /notes: the lines.
POST /rows (when the service mounts the stack's database: /run/secrets/database_url): the body
inserted as a row; GET /rows: every row, in the order written.
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
DATABASE_URL = "/run/secrets/database_url"
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
    if os.path.exists(DATABASE_URL):
        with open("/run/secrets/database_host") as host:
            found["database"] = host.read()
    upstream = os.environ.get("UPSTREAM")
    if upstream:
        with urllib.request.urlopen(f"http://{upstream}/", timeout=2) as answer:
            found["upstream"] = json.load(answer)
    return found


def rows(written: str | None = None) -> list[str]:
    """The rows table's lines, after `written` is inserted; a connection a request, from the URL's file
    as it is now (a rotated password reaches the next request)."""
    import psycopg2  # the admin role's only: its image's base has it (tests/e2e: restdemo-base/postgres)

    with open(DATABASE_URL) as url, psycopg2.connect(url.read(), connect_timeout=3) as connection:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS rows (id bigserial PRIMARY KEY, line text NOT NULL)")
            if written is not None:
                cursor.execute("INSERT INTO rows (line) VALUES (%s)", (written,))
            cursor.execute("SELECT line FROM rows ORDER BY id")
            return [line for (line,) in cursor.fetchall()]


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
        if self.path == "/rows" and os.path.exists(DATABASE_URL):
            return self.database(None)
        if self.path == "/notes" and os.environ.get("NOTES"):
            with open(os.environ["NOTES"], "a+") as notes:
                notes.seek(0)
                return self.send(200, {"notes": notes.read().splitlines()})
        return self.send(404, {"error": "not found"})

    def do_POST(self):
        if stopping.is_set():
            return self.send(503, {"error": "stopping"})
        line = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode().replace("\n", " ")
        if self.path == "/rows" and os.path.exists(DATABASE_URL):
            return self.database(line)
        if self.path != "/notes" or not os.environ.get("NOTES"):
            return self.send(404, {"error": "not found"})
        with open(os.environ["NOTES"], "a") as notes:
            notes.write(line + "\n")
        return self.send(201, {"written": line})

    def database(self, written: str | None):
        try:
            found = rows(written)
        except Exception as exc:  # the database not reachable: the request fails, and says why
            return self.send(502, {"error": str(exc).strip()[:300]})
        answered = {"version": os.environ.get("RELEASE", ""), "hostname": socket.gethostname(), "rows": found}
        return self.send(201 if written is not None else 200, answered)

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
