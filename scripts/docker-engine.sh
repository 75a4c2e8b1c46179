#!/usr/bin/env bash
# Makes a Docker engine available on this machine: installs it from Debian's
# packages when missing and starts dockerd in the background when none answers.
# Idempotent; used by .ci/run and by developers on a bare Debian/Ubuntu box.
set -euo pipefail

log() { printf 'docker-engine: %s\n' "$*" >&2; }

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1 \
   || ! command -v docker-registry >/dev/null 2>&1 || ! command -v haproxy >/dev/null 2>&1 \
   || ! command -v cloud-init >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1 \
   || ! command -v systemd-analyze >/dev/null 2>&1; then
  log "installing docker.io, docker-registry, debootstrap, haproxy, cloud-init, wrk, systemd from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    docker.io docker-registry debootstrap haproxy cloud-init wrk hyperfine systemd >/dev/null
fi

if docker info >/dev/null 2>&1; then
  log "engine already running"
  exit 0
fi

log "starting dockerd (log: /var/log/dockerd.log)"
nohup dockerd --data-root /var/lib/docker >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then log "engine up"; exit 0; fi
  sleep 0.5
done
log "dockerd did not answer within 30 s; see /var/log/dockerd.log"
exit 1
