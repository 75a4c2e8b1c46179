"""The smallest RSGI app granian can serve: the ceiling restdemo's /health is compared to.

Served by scripts/bench.py with the same granian settings as restdemo, in the same run.
"""

BODY = b'{"hostname":"bench","version":"bench"}'
HEADERS = [("content-type", "application/json"), ("content-length", str(len(BODY)))]


async def app(scope, proto):
    proto.response_bytes(200, HEADERS, BODY)
