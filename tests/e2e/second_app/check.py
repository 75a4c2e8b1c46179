"""The second app's HEALTHCHECK: healthy while GET /ready answers 200."""

import os
import sys
import urllib.request

url = os.environ.get("CHECK_URL") or f"http://127.0.0.1:{os.environ['PORT']}/ready"
try:
    with urllib.request.urlopen(url, timeout=1.5) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError:
    sys.exit(1)
