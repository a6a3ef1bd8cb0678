#!/usr/bin/env bash
# Builds the Driftline images with podman from deploy/images/Dockerfile (no registry needed):
#   deploy/images/build.sh [service ...]     (default: all six services and tools)
# Images: ghcr.io/driftline/<name>:<version> (deploy/images/README.md). The build context is
# the working tree; DRIFTLINE_IMAGES_FROM=<git revision> builds a revision instead (exported
# with `git archive`, so uncommitted edits stay out of the images). The base is the local
# stand-in of python:3.11-slim (mk-base.sh), passed by tag: PYTHON_BASE in the Dockerfile
# defaults to the public image pinned by tag and digest.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/images/env.sh
VERSION=${DRIFTLINE_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)}
PREFIX=${DRIFTLINE_IMAGE_PREFIX:-ghcr.io/driftline}
BASE=${DRIFTLINE_PYTHON_BASE:-docker.io/library/python:3.11-slim}
ALL=(ingestion drift-detection alerting audit compliance-report console tools)
[ $# -gt 0 ] && names=("$@") || names=("${ALL[@]}")
bash deploy/images/mk-base.sh
ctx=.
if [ -n "${DRIFTLINE_IMAGES_FROM:-}" ]; then
  rev=$(git rev-parse --short "$DRIFTLINE_IMAGES_FROM")
  ctx=.stack/cache/images/src-$rev
  rm -rf "$ctx"; mkdir -p "$ctx"
  git archive "$rev" | tar -x -C "$ctx"
  echo "[images] building from revision $rev"
fi
for name in "${names[@]}"; do
  if [ "$name" = console ]; then
    # the console image copies console/dist: npm run build first (skipped when up to date);
    # for a revision, the SPA is built in the exported tree (its own npm ci, from the cache)
    if [ "$ctx" = . ]; then
      bash deploy/local/console.sh build
    else
      mkdir -p "$ctx/.stack/cache" && ln -sfn "$PWD/.stack/cache/npm" "$ctx/.stack/cache/npm"
      (cd "$ctx" && bash deploy/local/console.sh build)
    fi
    [ -f "$ctx/console/dist/index.html" ] || { echo "[images] no console/dist/index.html" >&2; exit 1; }
  fi
done
for name in "${names[@]}"; do
  case "$name" in
    tools) target=tools ;;
    compliance-report) target=compliance-report ;;
    console) target=console ;;
    ingestion|drift-detection|alerting|audit) target=service ;;
    *) echo "unknown image $name (one of: ${ALL[*]})" >&2; exit 2 ;;
  esac
  t0=$(date +%s)
  podman build --pull=never --format docker --layers -q \
    -f "$ctx/deploy/images/Dockerfile" --target "$target" \
    --build-arg PYTHON_BASE="$BASE" --build-arg SERVICE="$name" --build-arg VERSION="$VERSION" \
    -t "$PREFIX/$name:$VERSION" "$ctx" >/dev/null
  echo "[images] $PREFIX/$name:$VERSION built in $(( $(date +%s) - t0 )) s"
done
