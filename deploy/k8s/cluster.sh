#!/usr/bin/env bash
# A private Kubernetes control plane on loopback for validating the Helm chart for real:
# etcd + kube-apiserver (server-side validation), kube-scheduler + kube-controller-manager
# (Deployments -> ReplicaSets -> Pods, Jobs, HPAs, namespaces) and KWOK (a fake kubelet: it
# manages fake Nodes and turns scheduled pods Running/Ready, Job pods Succeeded).
# No kubelet and no containers: images are never pulled.
#
#   deploy/k8s/cluster.sh start [DIR]   start (DIR defaults to .stack/k8s); prints the kubeconfig
#   deploy/k8s/cluster.sh stop  [DIR]   stop what start started (pids in DIR), API server first
#   deploy/k8s/cluster.sh status [DIR]
# Ports (loopback only; none of the shared stack's): K8S_ETCD_PORT (23379; +1 for peers),
# K8S_API_PORT (26443), K8S_SCHED_PORT (26459), K8S_CM_PORT (26457), K8S_KWOK_PORT (26480).
set -euo pipefail
cd "$(dirname "$0")/../.."
cmd=${1:-status}
W=$(realpath -m "${2:-.stack/k8s}")
BIN=${K8S_BIN:-$PWD/.stack/cache/k8s/bin}
ETCD_PORT=${K8S_ETCD_PORT:-23379} API_PORT=${K8S_API_PORT:-26443}
SCHED_PORT=${K8S_SCHED_PORT:-26459} CM_PORT=${K8S_CM_PORT:-26457} KWOK_PORT=${K8S_KWOK_PORT:-26480}
COMPONENTS=(kwok kube-scheduler kube-controller-manager kube-apiserver etcd)  # stop order

alive() { [ -f "$W/$1.pid" ] && kill -0 "$(cat "$W/$1.pid")" 2>/dev/null; }

stop_one() {
  local name=$1 p
  [ -f "$W/$name.pid" ] || return 0
  p=$(cat "$W/$name.pid")
  if kill -0 "$p" 2>/dev/null; then
    kill "$p" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
  fi
  rm -f "$W/$name.pid"
}

wait_for() {  # wait_for NAME SECONDS COMMAND...: poll until COMMAND succeeds, the process dies, or time runs out
  local name=$1 secs=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || { echo "$name exited; last log lines:" >&2; tail -20 "$W/$name.log" >&2; return 1; }
    [ "$(date +%s)" -lt "$deadline" ] || { echo "$name not ready in ${secs}s" >&2; tail -20 "$W/$name.log" >&2; return 1; }
    sleep 0.25
  done
}

start() {
  for t in etcd kube-apiserver kube-scheduler kube-controller-manager kwok kubectl; do
    [ -x "$BIN/$t" ] || { echo "$BIN/$t missing: run deploy/k8s/tools.sh" >&2; exit 1; }
  done
  if alive kube-apiserver; then echo "$W/kubeconfig"; return 0; fi
  for c in "${COMPONENTS[@]}"; do stop_one "$c"; done
  rm -rf "$W"; mkdir -p "$W/etcd" "$W/certs"
  local s; s=$(date +%s.%N)
  openssl genrsa -out "$W/sa.key" 2048 2>/dev/null
  openssl rsa -in "$W/sa.key" -pubout -out "$W/sa.pub" 2>/dev/null
  local token; token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$token,admin,admin,\"system:masters\"" > "$W/tokens.csv"
  cat > "$W/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: driftline-test, cluster: {server: "https://127.0.0.1:$API_PORT", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: "$token"}}]
contexts: [{name: driftline-test, context: {cluster: driftline-test, user: admin, namespace: default}}]
current-context: driftline-test
KC
  chmod 600 "$W/kubeconfig" "$W/tokens.csv"
  # setsid: the components do not get the caller's signals (a test runner's Ctrl-C stops them
  # through `stop`, which knows their pids)
  setsid "$BIN/etcd" --name driftline-test --data-dir "$W/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "driftline-test=http://127.0.0.1:$((ETCD_PORT + 1))" --listen-metrics-urls= \
    --unsafe-no-fsync --log-level warn > "$W/etcd.log" 2>&1 < /dev/null &
  echo $! > "$W/etcd.pid"
  setsid "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 \
    --secure-port="$API_PORT" --cert-dir="$W/certs" --token-auth-file="$W/tokens.csv" \
    --authorization-mode=RBAC --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=false \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$W/sa.pub" \
    --service-account-signing-key-file="$W/sa.key" --disable-admission-plugins=ServiceAccount \
    --advertise-address=127.0.0.1 --endpoint-reconciler-type=none > "$W/kube-apiserver.log" 2>&1 < /dev/null &
  echo $! > "$W/kube-apiserver.pid"
  wait_for kube-apiserver 90 "$BIN/kubectl" --kubeconfig "$W/kubeconfig" get --raw=/readyz
  setsid "$BIN/kube-controller-manager" --kubeconfig="$W/kubeconfig" --authentication-kubeconfig="$W/kubeconfig" \
    --authorization-kubeconfig="$W/kubeconfig" --bind-address=127.0.0.1 --secure-port="$CM_PORT" \
    --leader-elect=false --use-service-account-credentials=false \
    --service-account-private-key-file="$W/sa.key" --cluster-cidr=10.244.0.0/16 --allocate-node-cidrs=false \
    --controllers='*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ephemeral-volume,-csrsigning,-csrapproving,-csrcleaner,-bootstrapsigner,-tokencleaner' \
    > "$W/kube-controller-manager.log" 2>&1 < /dev/null &
  echo $! > "$W/kube-controller-manager.pid"
  setsid "$BIN/kube-scheduler" --kubeconfig="$W/kubeconfig" --authentication-kubeconfig="$W/kubeconfig" \
    --authorization-kubeconfig="$W/kubeconfig" --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" \
    --leader-elect=false > "$W/kube-scheduler.log" 2>&1 < /dev/null &
  echo $! > "$W/kube-scheduler.pid"
  setsid "$BIN/kwok" --kubeconfig="$W/kubeconfig" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake --manage-nodes-with-label-selector= \
    --manage-single-node= --cidr=10.244.0.0/16 --node-ip=127.0.0.1 --node-lease-duration-seconds=40 \
    --server-address="127.0.0.1:$KWOK_PORT" > "$W/kwok.log" 2>&1 < /dev/null &
  echo $! > "$W/kwok.pid"
  # three fake nodes in three zones, so topology spread and PodDisruptionBudgets mean something
  for i in 0 1 2; do
    cat <<NODE
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake}
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: kwok-node-$i
    topology.kubernetes.io/zone: zone-$i
    type: kwok
status:
  allocatable: {cpu: "16", memory: 64Gi, pods: "110"}
  capacity: {cpu: "16", memory: 64Gi, pods: "110"}
NODE
  done > "$W/nodes.yaml"
  "$BIN/kubectl" --kubeconfig "$W/kubeconfig" apply -f "$W/nodes.yaml" >/dev/null
  wait_for kwok 60 "$BIN/kubectl" --kubeconfig "$W/kubeconfig" wait --for=condition=Ready node --all --timeout=1s
  # the node lifecycle controller lifts the not-ready taint once KWOK reports the nodes Ready
  untainted() { [ -z "$("$BIN/kubectl" --kubeconfig "$W/kubeconfig" get nodes -o jsonpath='{.items[*].spec.taints}')" ]; }
  wait_for kube-controller-manager 60 untainted
  alive kube-scheduler || { tail -20 "$W/kube-scheduler.log" >&2; exit 1; }
  alive kube-controller-manager || { tail -20 "$W/kube-controller-manager.log" >&2; exit 1; }
  echo "kubernetes control plane + kwok ready in $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s ($W)" >&2
  echo "$W/kubeconfig"
}

case $cmd in
  start) start ;;
  stop) for c in "${COMPONENTS[@]}"; do stop_one "$c"; done ;;
  status) for c in "${COMPONENTS[@]}"; do
            if alive "$c"; then echo "$c running (pid $(cat "$W/$c.pid"))"; else echo "$c stopped"; fi
          done ;;
  *) echo "usage: $0 start|stop|status [DIR]" >&2; exit 2 ;;
esac
