#!/usr/bin/env bash
# Installs what the project needs on a fresh machine of this kind, then the Python
# workspace from uv.lock. Safe to run again: each step is skipped when it is done.
set -euo pipefail
cd "$(dirname "$0")/../.."

export UV_PYTHON_DOWNLOADS=never
export UV_CACHE_DIR="${UV_CACHE_DIR:-$PWD/.stack/cache/uv}"
TOOLS="$PWD/.stack/cache/tools"

python=${DRIFTLINE_PYTHON:-$(command -v python3.11 || command -v python3)}
"$python" - <<'PY' || { echo "Driftline needs Python 3.11 or newer (set DRIFTLINE_PYTHON)"; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# uv, the workspace's package manager, in a private tools venv (from PyPI)
if [ ! -x "$TOOLS/bin/uv" ]; then
  echo "[setup] installing uv into $TOOLS"
  "$python" -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q --disable-pip-version-check "uv>=0.5,<1"
fi

# system packages the local stack needs (Debian); java, maven and go are checked too
missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || missing+=(golang-go)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v prometheus >/dev/null || missing+=(prometheus)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)  # amtool and Alertmanager (alerting tests)
command -v npm >/dev/null || missing+=(nodejs npm)  # Grafana's dashboard schema check (deploy/grafana/schema)
python3 -c 'import cryptography' 2>/dev/null || missing+=(python3-cryptography)  # the stack's test CA
# compliance reports: WeasyPrint renders PDF with Pango and HarfBuzz, in DejaVu fonts
for lib in libpango-1.0.so.0:libpango-1.0-0 libpangoft2-1.0.so.0:libpangoft2-1.0-0 \
           libharfbuzz-subset.so.0:libharfbuzz-subset0; do
  ldconfig -p | grep -q "${lib%%:*}" || missing+=("${lib##*:}")
done
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
# the console's browser tests: Playwright (PyPI) drives Debian's Chromium (tests/e2e/test_console*.py)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

"$TOOLS/bin/uv" sync --frozen --python "$python" --all-packages -q
echo "[setup] Python workspace ready in .venv"

# Grafana's published dashboard schema (@grafana/schema) and TypeScript, pinned by
# deploy/grafana/schema/package-lock.json, into .stack/cache (tests/unit/test_dashboards.py)
schema_dir="$PWD/.stack/cache/grafana-schema"
if ! cmp -s "$PWD/deploy/grafana/schema/package-lock.json" "$schema_dir/package-lock.json" 2>/dev/null \
   || [ ! -d "$schema_dir/node_modules/@grafana/schema" ]; then
  mkdir -p "$schema_dir"
  cp "$PWD/deploy/grafana/schema/package.json" "$PWD/deploy/grafana/schema/package-lock.json" "$schema_dir/"
  (cd "$schema_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    && echo "[setup] Grafana dashboard schema in $schema_dir"
fi

# the OpenID Connect provider of the SSO tests (node's oidc-provider, pinned by
# tests/oidc/package-lock.json) into tests/oidc/node_modules; npm's cache is shared
# (.stack/cache/npm, linked to DRIFTLINE_CACHE_HOME by cache-links.sh)
oidc_dir="$PWD/tests/oidc" npm_cache="$PWD/.stack/cache/npm"
if ! cmp -s "$oidc_dir/package-lock.json" "$oidc_dir/node_modules/.driftline-lock" 2>/dev/null; then
  (cd "$oidc_dir" && npm ci --cache "$npm_cache" --prefer-offline \
     --no-audit --no-fund --loglevel=error >/dev/null) \
    && cp "$oidc_dir/package-lock.json" "$oidc_dir/node_modules/.driftline-lock" \
    && echo "[setup] OIDC test provider in $oidc_dir/node_modules"
fi
