#!/bin/sh
# Builds the local base images when the public registry cannot be reached (docker/README.md,
# "Building without Docker Hub"): Debian bookworm from Debian's own mirror with debootstrap,
# imported as an image, then a Node.js image and a PostgreSQL + Redis image built from it.
#   docker/local/make-base.sh            # as root, with dockerd running
# Images: strokeaid/debian:bookworm (python on PATH), strokeaid/debian-node:bookworm,
# strokeaid/services:bookworm. The host's CA bundle goes into the base image, so pip, npm
# and apt inside later builds trust what the host trusts (a TLS-inspecting proxy included).
set -eu
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE="${BASE_IMAGE:-strokeaid/debian:bookworm}"
NODE="${NODE_BASE_IMAGE:-strokeaid/debian-node:bookworm}"
SERVICES="${SERVICES_IMAGE:-strokeaid/services:bookworm}"
CA="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
here="$(cd "$(dirname "$0")" && pwd)"

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
  if [ -n "${ROOTFS:-}" ]; then
    root="$ROOTFS"  # a bookworm tree debootstrapped before (the same packages as below)
  else
    root="$(mktemp -d /tmp/strokeaid-rootfs.XXXXXX)"
    trap 'rm -rf "$root"' EXIT
    echo "debootstrap bookworm from $MIRROR"
    debootstrap --variant=minbase \
      --include=python3,python3-venv,python-is-python3,ca-certificates \
      bookworm "$root" "$MIRROR" >/dev/null
  fi
  echo "deb $MIRROR bookworm main" > "$root/etc/apt/sources.list"
  if [ -f "$CA" ]; then
    cp "$CA" "$root/usr/local/share/ca-certificates-host.crt"
    cp "$CA" "$root/etc/ssl/certs/ca-certificates.crt"
  fi
  rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/usr/local/share/ca-certificates-host.crt' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates-host.crt' \
    --change 'ENV REQUESTS_CA_BUNDLE=/usr/local/share/ca-certificates-host.crt' \
    --change 'CMD ["python"]' \
    - "$BASE"
  if [ -z "${ROOTFS:-}" ]; then rm -rf "$root"; trap - EXIT; fi
fi
DOCKER_BUILDKIT=0 docker build -q --force-rm --build-arg "BASE=$BASE" -t "$NODE" -f "$here/node.Dockerfile" "$here"
DOCKER_BUILDKIT=0 docker build -q --force-rm --build-arg "BASE=$BASE" -t "$SERVICES" -f "$here/services.Dockerfile" "$here"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^strokeaid/'
