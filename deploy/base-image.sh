#!/usr/bin/env bash
# Make the image's base, tollhouse-base:bookworm, without any container registry: a minimal Debian
# bookworm root filesystem from debootstrap (Debian packages only), imported into the local engine.
#   apt-get install -y debootstrap docker.io     (or podman: ENGINE=podman)
#   deploy/base-image.sh [MIRROR]
set -euo pipefail
MIRROR="${1:-http://deb.debian.org/debian}"
ENGINE="${ENGINE:-docker}"
TAG="${TAG:-tollhouse-base:bookworm}"
DIR="$(mktemp -d /tmp/tollhouse-rootfs.XXXXXX)"
trap 'rm -rf "$DIR"' EXIT
debootstrap --variant=minbase bookworm "$DIR" "$MIRROR"
# Security and point-release updates, as a stock Debian image has them.
cat >"$DIR/etc/apt/sources.list" <<LIST
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
LIST
rm -rf "$DIR"/var/cache/apt/archives/*.deb "$DIR"/var/lib/apt/lists/*
tar -C "$DIR" -c . | "$ENGINE" import --change 'CMD ["/bin/bash"]' - "$TAG"
"$ENGINE" image ls "$TAG"
