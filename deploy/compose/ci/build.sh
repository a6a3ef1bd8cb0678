#!/usr/bin/env bash
# Builds the local stand-ins of docker-compose.yml's third-party images (see Dockerfile here)
# from the local stack's artifacts, as localhost/driftline-ci/<name>:<tag>:
#   deploy/compose/ci/build.sh [kafka|postgres|redis|influxdb|prometheus ...]
# The Kafka jars and influxd come from `deploy/local/stack.py install` (cached in .stack/cache).
set -euo pipefail
cd "$(dirname "$0")/../../.."
. deploy/images/env.sh
ALL=(kafka postgres redis influxdb prometheus)
[ $# -gt 0 ] && names=("$@") || names=("${ALL[@]}")
bash deploy/images/mk-base.sh
python3 deploy/local/stack.py install >/dev/null
kafka_libs=$(ls -d .stack/cache/kafka-*/libs | sort -V | tail -1)
kafka_version=$(basename "$(dirname "$kafka_libs")"); kafka_version=${kafka_version#kafka-}
influxd=$(ls .stack/cache/bin/influxd-v* | sort -V | tail -1)
influx_version=$(basename "$influxd"); influx_version=${influx_version#influxd-v}
ctx=.stack/cache/ci-images/context
rm -rf "$ctx"; mkdir -p "$ctx"
cp -al "$kafka_libs" "$ctx/kafka-libs" 2>/dev/null || cp -a "$kafka_libs" "$ctx/kafka-libs"
rm -f "$ctx/kafka-libs/.complete"
cp -l "$influxd" "$ctx/influxd" 2>/dev/null || cp "$influxd" "$ctx/influxd"
cp deploy/local/kafka/log4j2.properties deploy/compose/ci/*.sh deploy/compose/ci/Dockerfile "$ctx/"
for name in "${names[@]}"; do
  case "$name" in
    kafka) tag=$kafka_version ;;
    influxdb) tag=$influx_version ;;
    postgres|redis|prometheus) tag=bookworm ;;
    *) echo "unknown image $name (one of: ${ALL[*]})" >&2; exit 2 ;;
  esac
  t0=$(date +%s)
  podman build --pull=never --format docker --layers -q -f "$ctx/Dockerfile" --target "$name" \
    -t "localhost/driftline-ci/$name:$tag" "$ctx" >/dev/null
  echo "[ci-images] localhost/driftline-ci/$name:$tag built in $(( $(date +%s) - t0 )) s"
done
