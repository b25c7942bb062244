#!/bin/sh
# The entrypoint of the services in docker-compose.yml and docker-compose.join.yml.
#
# `run` (the default): on first start (no config in the data volume yet) link the meshlet
# account to its owner with `meshlet init`, then `exec meshlet run`, so Docker's SIGTERM
# reaches the daemon (which stops its replicas before it exits) and a restarted container
# adopts what still runs. `appview`: `exec meshlet appview`, its seeds given as handles.
# Anything else: `exec meshlet "$@"`.
#
# Environment (besides what `meshlet run --help` and `meshlet appview --help` list):
#   MESHLET_HANDLE, MESHLET_PASSWORD   the meshlet's account (an app password on a real PDS)
#   MESHLET_PDS                        its PDS (default: the owner's)
#   MESHLET_OWNER_PDS, MESHLET_OWNER_HANDLE, MESHLET_OWNER_PASSWORD
#                                      the owner, for the first start's link only (the PDS
#                                      defaults to the meshlet's)
#   MESHLET_CREATE=1                   create the meshlet account if it does not exist
#   MESHLET_CLUSTER_NAME, MESHLET_CLUSTER_MEMBERS
#                                      a cluster of owners given as handles or DIDs (comma
#                                      separated); handles are resolved by the owner's PDS
#                                      (MESHLET_CLUSTER, NAME=DID,DID, takes DIDs only)
#   MESHLET_APPVIEW_SEED_HANDLES       appview seeds as handles or DIDs, resolved the same way
#   MESHLET_INIT_WAIT                  seconds to keep retrying while the PDS starts (120)
set -eu

say() { echo "meshlet-entrypoint: $*" >&2; }
die() { say "$*"; exit 1; }

# the meshlet and its owner are usually on the same PDS: either one stands for both
export MESHLET_PDS="${MESHLET_PDS:-${MESHLET_OWNER_PDS:-}}"
export MESHLET_OWNER_PDS="${MESHLET_OWNER_PDS:-$MESHLET_PDS}"

# A handle → its DID, asked of the owner's PDS (handles of a local dev PDS resolve nowhere else).
resolve() {
  case "$1" in did:*) echo "$1"; return 0 ;; esac
  node -e '
    const [pds, handle] = process.argv.slice(1)
    fetch(`${pds}/xrpc/com.atproto.identity.resolveHandle?handle=${encodeURIComponent(handle)}`)
      .then((r) => r.json())
      .then((j) => { if (!j.did) throw new Error(j.message ?? "no DID"); console.log(j.did) })
      .catch((e) => { console.error(`cannot resolve ${handle}: ${e.message}`); process.exit(1) })
  ' "$MESHLET_OWNER_PDS" "$1"
}

# Retries while the PDS comes up (compose starts services together); anything else fails.
retry() {
  deadline=$(( $(date +%s) + ${MESHLET_INIT_WAIT:-120} ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 2
  done
}

# Handles or DIDs (comma separated) → DIDs (comma separated).
resolve_all() {
  [ -n "$MESHLET_OWNER_PDS" ] || die "set MESHLET_OWNER_PDS (or MESHLET_PDS) to resolve handles"
  dids=""
  for m in $(echo "$1" | tr ',' ' '); do
    did="$(retry resolve "$m")" || die "$m: cannot resolve it through $MESHLET_OWNER_PDS"
    dids="${dids:+$dids,}$did"
  done
  echo "$dids"
}

mode="${1:-run}"
if [ $# -gt 0 ]; then shift; fi

case "$mode" in
  appview)
    if [ -n "${MESHLET_APPVIEW_SEED_HANDLES:-}" ]; then
      MESHLET_APPVIEW_SEEDS="$(resolve_all "$MESHLET_APPVIEW_SEED_HANDLES")" || exit 1
      export MESHLET_APPVIEW_SEEDS
    fi
    exec meshlet appview "$@"
    ;;
  run) ;;
  *) exec meshlet "$mode" "$@" ;;
esac

data="${MESHLET_DATA_DIR:-/var/lib/meshlet}"
config="$data/config.json"
export MESHLET_DATA_DIR="$data"
[ -n "$MESHLET_PDS" ] || die "set MESHLET_PDS (the meshlet account's PDS) or MESHLET_OWNER_PDS"

# The daemon talks to the engine through its socket: say how to fix access in one line,
# before the daemon would fail on its first container.
sock=/var/run/docker.sock
if [ "${MESHLET_DRIVER:-docker}" = docker ]; then
  [ -S "$sock" ] || die "no Docker socket at $sock: mount it (- /var/run/docker.sock:/var/run/docker.sock)"
  [ -r "$sock" ] && [ -w "$sock" ] \
    || die "uid $(id -u) cannot use $sock (group $(stat -c %g "$sock")): set DOCKER_GID=$(stat -c %g "$sock") for the meshlet services"
fi

if [ ! -f "$config" ]; then
  : "${MESHLET_HANDLE:?set MESHLET_HANDLE (the meshlet account)}"
  : "${MESHLET_PASSWORD:?set MESHLET_PASSWORD (the meshlet account)}"
  : "${MESHLET_OWNER_HANDLE:?set MESHLET_OWNER_HANDLE and MESHLET_OWNER_PASSWORD for the first start (the owner links the meshlet)}"
  say "first start: linking $MESHLET_HANDLE to $MESHLET_OWNER_HANDLE"
  create=""
  [ "${MESHLET_CREATE:-}" = 1 ] && create="--create"
  retry meshlet init --meshlet-pds "$MESHLET_PDS" --meshlet-handle "$MESHLET_HANDLE" --meshlet-password "$MESHLET_PASSWORD" \
    $create --name "${MESHLET_NAME:-$MESHLET_HANDLE}" --data-dir "$data" \
    || die "could not link $MESHLET_HANDLE to $MESHLET_OWNER_HANDLE (see above)"
fi

if [ -n "${MESHLET_CLUSTER_MEMBERS:-}" ]; then
  members="$(resolve_all "$MESHLET_CLUSTER_MEMBERS")" || exit 1
  export MESHLET_CLUSTER="${MESHLET_CLUSTER:+$MESHLET_CLUSTER;}${MESHLET_CLUSTER_NAME:-commune}=$members"
fi

exec meshlet run --config "$config" "$@"
