"""Who answers at the stack's URL: `make up` and `make status` end with it (scripts/answers.sh).

Asks `<url><path>` N times (the stack's healthCheckPath, restdemo's /health by default), prints a
line per answer (the replica and version when the answer names them, as restdemo's does, else its
status), and exits 1 when none was a 200: a deploy that nobody can reach is not reported done.
HTTPS certificates are verified against what the system trusts (SSL_CERT_FILE too).
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 5


def answer_line(status: int, body: bytes) -> str:
    """`  <hostname>  <version>` for an answer that names them, else `  HTTP <status>`."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict) and all(isinstance(document.get(f), str) for f in ("hostname", "version")):
        return f"  {document['hostname']}  {document['version']}"
    return f"  HTTP {status}"


def ask(url: str) -> tuple[int, bytes]:
    """One GET on a fresh connection; the status and body, or OSError (a non-200 is not an error here)."""
    request = urllib.request.Request(url, headers={"Connection": "close", "User-Agent": "restdemo-answers"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()) as got:
            return got.status, got.read(65536)
    except urllib.error.HTTPError as error:
        return error.code, b""


def reason(error: OSError) -> str:
    inner = getattr(error, "reason", None)
    return str(inner if inner is not None else error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/answers.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the stack's url output")
    parser.add_argument("count", nargs="?", type=int, default=6, help="how many requests (default 6)")
    parser.add_argument("path", nargs="?", default="/health", help="the stack's healthCheckPath (default /health)")
    args = parser.parse_args(argv)
    target = args.url.rstrip("/") + args.path
    print(f"answers from {target}:")
    answered = 0
    for _ in range(args.count):
        try:
            status, body = ask(target)
        except http.client.HTTPException as error:  # something answered, not in HTTP
            print(f"  no answer: not HTTP ({type(error).__name__})", file=sys.stderr)
            continue
        except (OSError, ValueError) as error:  # ValueError: not an http(s) URL
            print(f"  no answer: {reason(error) if isinstance(error, OSError) else error}", file=sys.stderr)
            continue
        print(answer_line(status, body))
        answered += status == 200
    if not answered:
        print(f"restdemo: none of {args.count} requests to {target} was answered healthy", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
