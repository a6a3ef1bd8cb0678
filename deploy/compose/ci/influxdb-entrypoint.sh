#!/bin/sh
# Like the official influxdb:1.8 image: on first start (no meta data yet), INFLUXDB_DB is
# created through a temporary server on loopback; then influxd runs in the foreground.
set -eu
if [ -n "${INFLUXDB_DB:-}" ] && [ ! -d "$INFLUXDB_META_DIR" ]; then
  INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:8086 influxd >/tmp/influxd-init.log 2>&1 &
  pid=$!
  i=0; until curl -sf http://127.0.0.1:8086/ping >/dev/null; do
    i=$((i+1)); [ $i -lt 300 ] || { cat /tmp/influxd-init.log; exit 1; }; sleep 0.1; done
  curl -sf -XPOST http://127.0.0.1:8086/query --data-urlencode "q=CREATE DATABASE \"$INFLUXDB_DB\"" >/dev/null
  kill "$pid"; wait "$pid" || true
fi
exec influxd "$@"
