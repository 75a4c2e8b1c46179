#!/usr/bin/env bash
# Ask URL/health N times (default 6) and print who answered; exit 1 when none did, so that
# `make up` does not report success for a service nobody can reach.
set -uo pipefail
url=${1:?usage: answers.sh URL [N]}
count=${2:-6}
cli=$(dirname "$0")/../.venv/bin/restdemo-cli
answered=0
echo "answers from $url/health:"
for _ in $(seq "$count"); do
  if "$cli" show health --url "$url" --format '  {{.hostname}}  {{.version}}'; then
    answered=$((answered + 1))
  fi
done
if [ "$answered" -eq 0 ]; then
  echo "restdemo: none of $count requests to $url/health was answered healthy" >&2
  exit 1
fi
