#!/usr/bin/env bash
# Makes the Python base images that app/Dockerfile builds on, without a registry:
# these machines cannot pull python:* from Docker Hub, so we debootstrap Debian
# bookworm and `docker import` it. Elsewhere the Dockerfile's defaults (the
# official python images) are used instead and this script is not needed.
#
#   restdemo-base/python-build:bookworm    python3 + venv/ensurepip + CA certs
#   restdemo-base/python-runtime:bookworm  python3 only (no pip, no setuptools)
#
# Reuses the images when they already exist.
set -euo pipefail

BUILD_IMAGE=${BUILD_IMAGE:-restdemo-base/python-build:bookworm}
RUNTIME_IMAGE=${RUNTIME_IMAGE:-restdemo-base/python-runtime:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'base-images: %s\n' "$*" >&2; }

if docker image inspect "$BUILD_IMAGE" >/dev/null 2>&1 \
   && docker image inspect "$RUNTIME_IMAGE" >/dev/null 2>&1; then
  log "reusing $BUILD_IMAGE and $RUNTIME_IMAGE"
  exit 0
fi

root=$(mktemp -d /var/tmp/restdemo-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT

log "debootstrap bookworm into $root"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$root" "$MIRROR" >/var/tmp/restdemo-debootstrap.log 2>&1 \
  || { tail -20 /var/tmp/restdemo-debootstrap.log >&2; exit 1; }

# What no container needs: package lists and caches, docs, man pages, locales.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/var/log/*

import() {
  tar -C "$root" --numeric-owner -c . | docker import \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' - "$1" >/dev/null
  log "made $1 ($(docker image inspect -f '{{.Size}}' "$1" | numfmt --to=iec))"
}

import "$BUILD_IMAGE"
# The runtime base drops what only building needs: ensurepip and its bundled
# pip/setuptools wheels, and the venv module's pip bootstrap.
rm -rf "$root"/usr/share/python-wheels "$root"/usr/lib/python3.11/ensurepip
import "$RUNTIME_IMAGE"
