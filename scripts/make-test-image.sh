#!/usr/bin/env bash
# Builds a tiny local image from Debian's static busybox: no registry needed.
set -euo pipefail
image="${1:-meshlet-test/busybox:latest}"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc"
cp /bin/busybox "$root/bin/busybox"
for applet in sh echo cat sleep ls true false yes head tail dd env id wc seq printf grep sed; do
  ln -s busybox "$root/bin/$applet"
done
echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >"$root/etc/passwd"
tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' - "$image" >/dev/null
echo "imported $image"
