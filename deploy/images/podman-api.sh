#!/usr/bin/env bash
# podman's Docker-compatible API on a private unix socket, plus the health pump (without
# systemd, podman never runs HEALTHCHECKs by itself; compose's `--wait` and
# `depends_on: service_healthy` need them). Both are this checkout's own processes, tracked
# by pid files in .stack/run/podman and stopped by pid.
#   deploy/images/podman-api.sh start|stop|status
# Then: . deploy/images/env.sh  (DOCKER_HOST=unix://.../podman.sock)
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/images/env.sh
RUN=$(dirname "$DRIFTLINE_PODMAN_SOCK")
mkdir -p "$RUN"
alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }
answers() { curl -sf --max-time 2 --unix-socket "$DRIFTLINE_PODMAN_SOCK" http://d/_ping >/dev/null 2>&1; }
case "${1:-status}" in
  start)
    if ! alive api; then
      rm -f "$DRIFTLINE_PODMAN_SOCK"
      setsid podman system service --time=0 "unix://$DRIFTLINE_PODMAN_SOCK" \
        >"$RUN/api.log" 2>&1 < /dev/null &
      echo $! > "$RUN/api.pid"
    fi
    if ! alive pump; then
      setsid sh deploy/images/health-pump.sh 2 >"$RUN/pump.log" 2>&1 < /dev/null &
      echo $! > "$RUN/pump.pid"
    fi
    for _ in $(seq 1 100); do answers && break; sleep 0.1; done
    answers || { echo "podman's API did not answer on $DRIFTLINE_PODMAN_SOCK:"; tail "$RUN/api.log"; exit 1; }
    echo "[containers] podman API on unix://$DRIFTLINE_PODMAN_SOCK (pid $(cat "$RUN/api.pid")), health pump pid $(cat "$RUN/pump.pid")"
    ;;
  stop)
    for p in pump api; do
      if alive "$p"; then
        pid=$(cat "$RUN/$p.pid")
        kill -- "-$pid" 2>/dev/null || kill "$pid"   # its own session: the pump's children too
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      fi
      rm -f "$RUN/$p.pid"
    done
    rm -f "$DRIFTLINE_PODMAN_SOCK"
    echo "[containers] podman API and health pump stopped"
    ;;
  status)
    for p in api pump; do alive "$p" && echo "$p: pid $(cat "$RUN/$p.pid")" || echo "$p: stopped"; done
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
