"""A stand-in for an instance's metadata service (IMDSv2) that the agent is pointed at: a session
token from `PUT /latest/api/token`, every `GET /latest/meta-data/<path>` refused without it (401,
as IMDSv2 with `http_tokens = required` does), a document set by the test or 404 (EC2 User
Guide, "Use the Instance Metadata Service to access instance metadata")."""

from __future__ import annotations

import secrets
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.net import free_port


class MetadataService:
    def __init__(self) -> None:
        self.documents: dict[str, str] = {}
        self.tokens: set[str] = set()
        self.refused = 0  # requests without a valid token
        self.url = ""

    def set(self, path: str, body: str | None) -> None:
        if body is None:
            self.documents.pop(path, None)
        else:
            self.documents[path] = body


@contextmanager
def metadata_service(host: str = "127.0.0.1"):
    service = MetadataService()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _answer(self, status: int, body: str = "") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self._answer(400)
            token = secrets.token_urlsafe(16)
            service.tokens.add(token)
            self._answer(200, token)

        def do_GET(self) -> None:
            if self.headers.get("X-aws-ec2-metadata-token") not in service.tokens:
                service.refused += 1
                return self._answer(401)
            path = self.path.removeprefix("/latest/meta-data/")
            body = service.documents.get(path)
            self._answer(404) if body is None else self._answer(200, body)

    server = ThreadingHTTPServer((host, free_port()), Handler)
    service.url = f"http://{host}:{server.server_address[1]}/latest"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
