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

# QEMU user emulation, for building and running linux/arm64 images (Graviton): Debian registers
# its handlers with the F flag, so they work inside containers and BuildKit's RUN steps too.
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  if ! command -v qemu-aarch64-static >/dev/null 2>&1 || ! command -v update-binfmts >/dev/null 2>&1; then
    log "installing qemu-user-static and binfmt-support from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support >/dev/null
  fi
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64
  log "arm64 binaries run under $(head -2 /proc/sys/fs/binfmt_misc/qemu-aarch64 | tail -1)"
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
