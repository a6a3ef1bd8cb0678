#!/bin/sh
# Like apache/kafka's image: every KAFKA_* variable becomes a server property
# (KAFKA_ADVERTISED_LISTENERS -> advertised.listeners; `__` -> `_`, `___` -> `-`), the
# storage is formatted with CLUSTER_ID on first start, then the broker runs in the foreground.
set -eu
conf=/opt/kafka/config/server.properties
: > "$conf"
env | grep '^KAFKA_' | grep -v -E '^KAFKA_(HEAP_OPTS|OPTS|JVM_PERFORMANCE_OPTS)=' | while IFS= read -r kv; do
  key=${kv%%=*}; value=${kv#*=}
  prop=$(echo "${key#KAFKA_}" | tr 'A-Z' 'a-z' | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')
  printf '%s=%s\n' "$prop" "$value" >> "$conf"
done
logdirs=$(sed -n 's/^log\.dirs=//p' "$conf"); logdirs=${logdirs:-/tmp/kraft-combined-logs}
grep -q '^log.dirs=' "$conf" || echo "log.dirs=$logdirs" >> "$conf"
cp=/opt/kafka/libs/*
log4j="-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -Dkafka.logs.dir=/tmp"
if [ ! -f "${logdirs%%,*}/meta.properties" ]; then
  : "${CLUSTER_ID:?set CLUSTER_ID (a base64 UUID) to format the storage}"
  java -cp "$cp" $log4j kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$conf" --ignore-formatted >/dev/null
fi
exec java ${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
  -Djava.awt.headless=true $log4j ${KAFKA_OPTS:-} -cp "$cp" kafka.Kafka "$conf"
