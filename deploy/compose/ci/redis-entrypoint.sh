#!/bin/sh
# Like the official redis image: without a configuration file, protected mode is off so
# clients on the container network may connect (set a password with --requirepass).
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --bind '* -::*' --protected-mode no "$@"
fi
exec "$@"
