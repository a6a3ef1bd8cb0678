#!/usr/bin/env bash
# The CustomResourceDefinitions the chart's optional objects need on the test API server, into
# .stack/cache/k8s/crds (once):
#   ServiceMonitor, PrometheusRule   the Prometheus Operator's own CRDs, from its Go module
#                                    (example/prometheus-operator-crd) on the Go module proxy
#   KafkaTopic (Strimzi)             deploy/k8s/crds/kafkatopics.kafka.strimzi.io.yaml, a
#                                    stand-in written from Strimzi's API reference (Strimzi
#                                    ships its CRDs in release archives, not in a registry)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/.stack/cache/k8s/crds
PROM_OPERATOR=v0.81.0
mkdir -p "$OUT"
if [ ! -f "$OUT/monitoring.coreos.com_servicemonitors.yaml" ] || [ ! -f "$OUT/monitoring.coreos.com_prometheusrules.yaml" ]; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
  export GOMODCACHE=$ROOT/.stack/cache/go/mod GOFLAGS=-modcacherw GOTOOLCHAIN=local
  dir=$("$GO" mod download -json "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR" \
        | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  [ -d "$dir" ] || { echo "prometheus-operator $PROM_OPERATOR not downloaded" >&2; exit 1; }
  for f in servicemonitors prometheusrules; do
    install -m 0644 "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$f.yaml" "$OUT/"
  done
fi
install -m 0644 deploy/k8s/crds/kafkatopics.kafka.strimzi.io.yaml "$OUT/"
echo "$OUT"
