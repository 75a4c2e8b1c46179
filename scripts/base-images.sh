#!/usr/bin/env bash
# Makes the Python base images that app/Dockerfile builds on, without a registry:
# these machines cannot pull python:* from Docker Hub, so we debootstrap Debian
# bookworm and `docker import` it. Elsewhere the Dockerfile's defaults (the
# official python images) are used instead and this script is not needed.
#
#   restdemo-base/python-build:bookworm    python3 + venv/ensurepip + CA certs
#   restdemo-base/python-runtime:bookworm  python3 only (no pip, no setuptools)
#   restdemo-base/haproxy:bookworm         haproxy: the e2e tier's load balancer
#   restdemo-base/postgres:bookworm        postgresql + python3-psycopg2: the e2e tier's database
#                                          (scripts/postgres-entrypoint.sh reads the official
#                                          image's POSTGRES_* environment) and its app's client
#   restdemo-base/python:bookworm-arm64    python3 + venv + CA certs for linux/arm64 (Graviton), built
#                                          under QEMU user emulation (scripts/docker-engine.sh registers
#                                          it); both stages of the image tier's arm64 build
#   restdemo-base/python-full:bookworm     with --full only: python3 + venv + dev headers +
#                                          build-essential + git + curl, standing in for the
#                                          full python:3.11-bookworm in the benchmark's image arc
#
# Reuses the images when they already exist.
set -euo pipefail

BUILD_IMAGE=${BUILD_IMAGE:-restdemo-base/python-build:bookworm}
RUNTIME_IMAGE=${RUNTIME_IMAGE:-restdemo-base/python-runtime:bookworm}
ARM64_IMAGE=${ARM64_IMAGE:-restdemo-base/python:bookworm-arm64}
HAPROXY_IMAGE=${HAPROXY_IMAGE:-restdemo-base/haproxy:bookworm}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-restdemo-base/postgres:bookworm}
FULL_IMAGE=${FULL_IMAGE:-restdemo-base/python-full:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'base-images: %s\n' "$*" >&2; }

exists() { docker image inspect "$1" >/dev/null 2>&1; }

# debootstrap DIR PACKAGES [ARCH]: a trimmed Debian bookworm root file system in DIR.
make_rootfs() {
  local root=$1 packages=$2 arch=${3:-}
  log "debootstrap bookworm ${arch:+for $arch }($packages) into $root"
  debootstrap ${arch:+--arch="$arch"} --variant=minbase --include="$packages" bookworm "$root" "$MIRROR" \
    >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
  # What no container needs: package lists and caches, docs, man pages, locales.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/var/log/*
}

# import DIR NAME [CMD_JSON [MORE_CHANGES...]]
import_rootfs() {
  local root=$1 name=$2 cmd=${3:-'["python3"]'}
  local changes=(-c 'ENV LANG=C.UTF-8' -c "CMD $cmd")
  for change in "${@:4}"; do changes+=(-c "$change"); done
  tar -C "$root" --numeric-owner -c . | docker import "${changes[@]}" - "$name" >/dev/null
  log "made $name ($(docker image inspect -f '{{.Size}}' "$name" | numfmt --to=iec))"
}

# import_foreign DIR NAME PLATFORM: `docker import` records the engine's own architecture (20.10
# ignores --platform), so the root file system goes in through a BuildKit build for PLATFORM.
import_foreign() {
  local root=$1 name=$2 platform=$3 context
  context=$(mktemp -d "$scratch/context.XXXXXX")
  tar -C "$root" --numeric-owner -cf "$context/rootfs.tar" .
  printf 'FROM scratch\nADD rootfs.tar /\nENV LANG=C.UTF-8\nCMD ["python3"]\n' >"$context/Dockerfile"
  DOCKER_BUILDKIT=1 /usr/bin/docker build -q --platform "$platform" -t "$name" "$context" >/dev/null
  log "made $name ($platform, $(docker image inspect -f '{{.Size}}' "$name" | numfmt --to=iec))"
}

scratch=$(mktemp -d /var/tmp/restdemo-rootfs.XXXXXX)
arm64=""
# The arm64 job too, should another image fail first: nothing outlives the script in $scratch.
trap '[ -z "$arm64" ] || { pkill -P "$arm64" 2>/dev/null || true; kill "$arm64" 2>/dev/null || true; }; wait; rm -rf "$scratch"' EXIT

# The arm64 base takes about 2 minutes under emulation: made beside the others, awaited at the end.
if exists "$ARM64_IMAGE"; then
  log "reusing $ARM64_IMAGE"
elif [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  ( make_rootfs "$scratch/arm64" python3,python3-venv,ca-certificates arm64
    import_foreign "$scratch/arm64" "$ARM64_IMAGE" linux/arm64 ) &
  arm64=$!
else
  log "no QEMU for arm64 (scripts/docker-engine.sh registers it): $ARM64_IMAGE not made"
fi

if exists "$BUILD_IMAGE" && exists "$RUNTIME_IMAGE"; then
  log "reusing $BUILD_IMAGE and $RUNTIME_IMAGE"
else
  make_rootfs "$scratch/python" python3,python3-venv,ca-certificates
  import_rootfs "$scratch/python" "$BUILD_IMAGE"
  # The runtime base drops what only building needs: ensurepip and its bundled
  # pip/setuptools wheels.
  rm -rf "$scratch"/python/usr/share/python-wheels "$scratch"/python/usr/lib/python3.11/ensurepip
  import_rootfs "$scratch/python" "$RUNTIME_IMAGE"
fi

if exists "$HAPROXY_IMAGE"; then
  log "reusing $HAPROXY_IMAGE"
else
  make_rootfs "$scratch/haproxy" haproxy
  import_rootfs "$scratch/haproxy" "$HAPROXY_IMAGE" '["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'
fi

if exists "$POSTGRES_IMAGE"; then
  log "reusing $POSTGRES_IMAGE"
else
  make_rootfs "$scratch/postgres" postgresql,python3,python3-psycopg2
  # Not the cluster the package's setup made: the entry point makes one in PGDATA.
  rm -rf "$scratch"/postgres/var/lib/postgresql/* "$scratch"/postgres/etc/postgresql/*
  install -m 0755 "$(dirname "$0")/postgres-entrypoint.sh" "$scratch/postgres/usr/local/bin/docker-entrypoint.sh"
  bin=$(cd "$scratch/postgres" && ls -d usr/lib/postgresql/*/bin | tail -1)
  import_rootfs "$scratch/postgres" "$POSTGRES_IMAGE" '["postgres"]' \
    'ENTRYPOINT ["docker-entrypoint.sh"]' "ENV PATH=/$bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    'ENV PGDATA=/var/lib/postgresql/data' 'EXPOSE 5432'
fi

if [ "${1:-}" = --full ]; then
  if exists "$FULL_IMAGE"; then
    log "reusing $FULL_IMAGE"
  else
    make_rootfs "$scratch/full" python3,python3-venv,python3-dev,build-essential,git,curl,ca-certificates
    import_rootfs "$scratch/full" "$FULL_IMAGE"
  fi
fi

if [ -n "$arm64" ]; then
  job=$arm64
  arm64=""
  wait "$job" || { log "making $ARM64_IMAGE failed"; exit 1; }
fi
