#!/usr/bin/env bash
# The web console's npm steps (console/, docs/console.md), each skipped when it is done:
#   install  npm ci into console/node_modules, again only when package-lock.json changed
#            (npm's download cache: .stack/cache/npm, linked machine-wide by cache-links.sh)
#   build    install, then `npm run build` into console/dist only when a source changed
#            (a hash of every file under console/ but node_modules and dist, kept in dist)
#   lint     install, then ESLint, `tsc --noEmit` and the generated API types against docs/openapi
#            (npm run lint, npm run typecheck, npm run check:api)
#   test     install, then Vitest (npm test: vitest run)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="$PWD/console"
export npm_config_cache="$PWD/.stack/cache/npm"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
command -v npm >/dev/null || { echo "[console] npm is missing: run make setup"; exit 1; }
# (a checkout from before the console app existed has nothing to do here)
[ -f "$dir/package.json" ] || { echo "[console] no console/package.json: nothing to do"; exit 0; }

quiet() {  # a step's output only when it fails
  local out
  if ! out=$(cd "$dir" && "$@" 2>&1); then
    echo "$out"
    echo "[console] failed: $*"
    exit 1
  fi
}

install() {
  local stamp="$dir/node_modules/.driftline-package-lock.json"
  if ! cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null; then
    echo "[console] npm ci"
    quiet npm ci --prefer-offline --loglevel=error
    cp "$dir/package-lock.json" "$stamp"
  fi
}

sources_hash() {
  (cd "$dir" && find . \( -path ./node_modules -o -path ./dist \) -prune -o -type f -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

build() {
  install
  local stamp="$dir/dist/.driftline-sources" want
  want=$(sources_hash)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -f "$dir/dist/index.html" ]; then
    echo "[console] npm run build"
    quiet npm run --silent build
    echo "$want" >"$stamp"
  fi
}

case "${1:-build}" in
  install) install ;;
  build) build ;;
  lint) install; (cd "$dir" && npm run --silent lint && npm run --silent typecheck && npm run --silent check:api) ;;
  test) install; (cd "$dir" && npm test --silent) ;;
  *) echo "usage: $0 install|build|lint|test"; exit 2 ;;
esac
