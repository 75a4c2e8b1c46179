#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the page's browser tests (tests/support/browser.py).
# Idempotent; used by .ci/run and by developers on a Debian/Ubuntu box.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "browser: $(chromium --version 2>/dev/null)" >&2
  exit 0
fi
echo "browser: installing chromium and chromium-driver from Debian" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
