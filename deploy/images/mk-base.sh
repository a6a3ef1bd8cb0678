#!/usr/bin/env bash
# Builds a local stand-in for the public base image `python:3.11-slim` (Debian bookworm,
# Python 3.11) from Debian packages with mmdebstrap, and imports it into podman under the
# same name, for machines where no image registry is reachable. The stand-in trusts this
# machine's extra CA certificates (/usr/local/share/ca-certificates), so pip, uv and apt-get
# work inside builds behind an intercepting proxy. Skipped when the image exists.
#
#   deploy/images/mk-base.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/images/env.sh
NAME=docker.io/library/python:3.11-slim
if [ "${1:-}" != "--force" ] && podman image exists "$NAME"; then
  echo "[images] base $NAME exists (stand-in built from Debian packages)"
  exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/driftline-base.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "[images] building the stand-in for $NAME with mmdebstrap (once; about a minute)"
mmdebstrap --quiet --variant=apt \
  --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,passwd \
  --customize-hook='cp /usr/local/share/ca-certificates/*.crt "$1"/usr/local/share/ca-certificates/ 2>/dev/null || true; chroot "$1" update-ca-certificates >/dev/null' \
  --customize-hook='rm -f "$1"/usr/lib/python3.*/EXTERNALLY-MANAGED; rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
  bookworm "$tmp/rootfs.tar"
podman import --quiet \
  --change 'CMD ["python3"]' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV PYTHONUNBUFFERED=1' \
  --message "stand-in for $NAME built by deploy/images/mk-base.sh from Debian bookworm" \
  "$tmp/rootfs.tar" "$NAME" >/dev/null
echo "[images] $NAME ready ($(podman image inspect --format '{{.Size}}' "$NAME" | awk '{printf "%.0f MB", $1/1e6}'))"
