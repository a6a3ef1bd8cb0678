#!/bin/sh
# Without systemd, podman never schedules HEALTHCHECKs (it uses systemd timers). This loop
# runs them every ${1:-2} s for every running container that has one, so compose's
# `up --wait` and `depends_on: condition: service_healthy` can progress.
# Started and stopped by deploy/images/podman-api.sh. Uses this checkout's podman storage.
while :; do
  for c in $(podman ps -q --filter health=starting) $(podman ps -q --filter health=healthy) \
           $(podman ps -q --filter health=unhealthy); do
    podman healthcheck run "$c" >/dev/null 2>&1 &
  done
  wait
  sleep "${1:-2}"
done
