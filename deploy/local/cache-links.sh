#!/usr/bin/env bash
# Downloads and builds that do not depend on where the checkout lives (Go modules and build
# cache, uv's wheels, Maven's Kafka jars, the built influxd, Docker Compose, the Kubernetes
# binaries, the Grafana schema, npm's download cache) are kept once per machine, in DRIFTLINE_CACHE_HOME
# (default ~/.cache/driftline), and linked into this checkout's .stack/cache. A fresh clone,
# as CI makes, then starts warm instead of rebuilding 15 minutes of Go. Everything bound to
# this checkout's path (podman's storage, the uv tool venv, built image contexts) stays in
# .stack/cache itself. A folder that already exists in .stack/cache is left as it is.
# DRIFTLINE_CACHE_HOME=none keeps every cache inside the checkout.
set -euo pipefail
cd "$(dirname "$0")/../.."
home="${DRIFTLINE_CACHE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/driftline}"
[ "$home" = none ] && exit 0
mkdir -p .stack/cache "$home"
kafka="kafka-$(sed -n 's:.*<kafka.version>\([^<]*\)</kafka.version>.*:\1:p' deploy/local/kafka/pom.xml)"
for d in go uv m2 "$kafka" bin k8s grafana-schema npm; do
  if [ ! -e ".stack/cache/$d" ] && [ ! -L ".stack/cache/$d" ]; then
    mkdir -p "$home/$d"
    ln -s "$home/$d" ".stack/cache/$d"
  fi
done
