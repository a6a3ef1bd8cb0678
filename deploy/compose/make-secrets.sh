#!/usr/bin/env bash
# Writes the secret files docker-compose.yml mounts (one value per file), once: an existing
# file is kept, so running it again never rotates a secret by accident.
#   deploy/compose/make-secrets.sh [dir]      (default: $DRIFTLINE_SECRETS_PATH or ./secrets)
# The folder is private to its owner (0700); the files inside are 0644 because the
# containers read them as their own non-root users (compose mounts each file by itself, so
# the folder's mode still keeps other host users out).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-${DRIFTLINE_SECRETS_PATH:-./secrets}}
mkdir -p "$dir"; chmod 0700 "$dir"
umask 022
put() {  # name, command printing the value
  [ -s "$dir/$1" ] && return 0
  "${@:2}" > "$dir/$1.tmp" && mv "$dir/$1.tmp" "$dir/$1" && echo "[secrets] wrote $dir/$1"
}
rand_hex() { openssl rand -hex "$1"; }
ed25519() { openssl genpkey -algorithm ed25519 2>/dev/null; }
put postgres_password rand_hex 24
put audit_writer_password rand_hex 24
put admin_token rand_hex 32
put grafana_admin_password rand_hex 16
put kek openssl rand -base64 32                       # the key-encryption key (32 bytes)
put webhook_secret sh -c 'printf "whsec_%s\n" "$(openssl rand -base64 24)"'
for key in jwt audit_signing reports_signing; do
  case $key in jwt) priv=$dir/jwt_private_key.pem ;; *) priv=$dir/${key}_key.pem ;; esac
  [ -s "$priv" ] || { ed25519 > "$priv.tmp" && mv "$priv.tmp" "$priv" && echo "[secrets] wrote $priv"; }
done
[ -s "$dir/jwt_public_key.pem" ] || openssl pkey -in "$dir/jwt_private_key.pem" -pubout > "$dir/jwt_public_key.pem"
[ -s "$dir/audit_public_key.pem" ] || openssl pkey -in "$dir/audit_signing_key.pem" -pubout > "$dir/audit_public_key.pem"
chmod 0644 "$dir"/*
echo "[secrets] $(ls "$dir" | wc -l) files in $dir"
