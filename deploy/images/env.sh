# Source this for podman/compose commands against this checkout's private container storage:
#   . deploy/images/env.sh
# (deploy/images/tools.sh writes the two configuration files; nothing in /etc is used.)
_dl_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/../.." && pwd)"
export CONTAINERS_CONF="$_dl_root/.stack/cache/containers/containers.conf"
export CONTAINERS_STORAGE_CONF="$_dl_root/.stack/cache/containers/storage.conf"
# podman's Docker API socket (deploy/images/podman-api.sh starts it)
export DRIFTLINE_PODMAN_SOCK="${DRIFTLINE_PODMAN_SOCK:-$_dl_root/.stack/run/podman/podman.sock}"
export DOCKER_HOST="unix://$DRIFTLINE_PODMAN_SOCK"
export PATH="$_dl_root/.stack/cache/bin:$PATH"
unset _dl_root
