#!/usr/bin/env bash
# Container tooling for the images, compose and testcontainers checks, installed by the
# project itself and cached under .stack/cache (nothing in /etc changes):
#   - podman, buildah, mmdebstrap, runc ... from Debian (apt-get, skipped when present);
#   - containers.conf / storage.conf under .stack/cache/containers, used through
#     CONTAINERS_CONF / CONTAINERS_STORAGE_CONF (see deploy/images/env.sh);
#   - Docker Compose v5 built from the Go module proxy into .stack/cache/bin (once).
# Safe to run again: each step is skipped when it is done.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="$PWD/.stack/cache"
COMPOSE_VERSION=v5.6.0

pkgs=(podman buildah mmdebstrap runc crun fuse-overlayfs uidmap containernetworking-plugins
      netavark aardvark-dns golang-github-containers-common slirp4netns catatonit conmon)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[containers] apt-get install ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# podman's configuration, private to this checkout. Its images and layers are kept once per
# machine in DRIFTLINE_CACHE_HOME, like the other path-independent caches
# (deploy/local/cache-links.sh), so a fresh clone reuses the layers built before; every
# build still runs, and --layers reuses only the steps whose inputs are unchanged.
# podman records its storage path, so it must be the same string for every checkout.
home="${DRIFTLINE_CACHE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/driftline}"
if [ "$home" = none ]; then store="$CACHE/containers"; else store="$home/containers"; fi
mkdir -p "$store/storage" "$store/run" "$CACHE/containers"
cat > "$CACHE/containers/containers.conf" <<CONF
[containers]
# host hard limits here: nofile 20000, nproc 32768 (root cannot raise them on this machine)
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
# crun refuses this machine's hybrid cgroup v1 + v2 layout; runc works
runtime = "runc"
CONF
cat > "$CACHE/containers/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$store/storage"
runroot = "$store/run"
CONF

# Docker Compose v5 from the Go module proxy (its go.mod has exclude directives, so
# `go install` refuses it: build inside the downloaded module)
if [ ! -x "$CACHE/bin/docker-compose-$COMPOSE_VERSION" ]; then
  go=$(command -v go || echo /usr/local/go/bin/go)
  echo "[containers] building docker compose $COMPOSE_VERSION with go (once; a few minutes)"
  export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS=-modcacherw \
         GOTOOLCHAIN=local CGO_ENABLED=0
  "$go" mod download "github.com/docker/compose/v5@$COMPOSE_VERSION" \
    || GOSUMDB=off "$go" mod download "github.com/docker/compose/v5@$COMPOSE_VERSION"
  mkdir -p "$CACHE/bin"
  (cd "$GOMODCACHE/github.com/docker/compose/v5@$COMPOSE_VERSION" && \
   "$go" build -trimpath -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" \
     -o "$CACHE/bin/docker-compose-$COMPOSE_VERSION.tmp" ./cmd)
  mv "$CACHE/bin/docker-compose-$COMPOSE_VERSION.tmp" "$CACHE/bin/docker-compose-$COMPOSE_VERSION"
fi
ln -sf "docker-compose-$COMPOSE_VERSION" "$CACHE/bin/docker-compose"
echo "[containers] podman $(podman --version | awk '{print $3}'), docker compose $COMPOSE_VERSION ready"
