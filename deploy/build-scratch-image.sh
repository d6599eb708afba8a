#!/usr/bin/env bash
# Builds the upstream-exporter:scratch image with podman, offline: compiles
# the release binary on this host, gathers it with the dynamic loader and
# libraries it links (from ldd; nothing when the binary is static) and the
# CA bundle into target/container/rootfs/, then builds
# deploy/Containerfile.scratch over that folder. Prints the image size.
#   bash deploy/build-scratch-image.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

image="${IMAGE:-localhost/upstream-exporter:scratch}"
cargo build --release --locked --quiet
binary=target/release/upstream-exporter

context=target/container
rm -rf "$context"
mkdir -p "$context/rootfs/etc/ssl/certs"
cp "$binary" "$context/rootfs/upstream-exporter"
# The release profile keeps symbols (strip = "debuginfo"); the image needs none.
if command -v strip >/dev/null 2>&1; then
  strip --strip-all "$context/rootfs/upstream-exporter"
fi
cp -L /etc/ssl/certs/ca-certificates.crt "$context/rootfs/etc/ssl/certs/ca-certificates.crt"

if ldd "$binary" >/dev/null 2>&1; then
  # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and the loader
  # "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
  ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
    while read -r lib; do
      mkdir -p "$context/rootfs$(dirname "$lib")"
      cp -L "$lib" "$context/rootfs$lib"
    done
  echo "dynamic binary: copied $(find "$context/rootfs" -name '*.so*' | wc -l) loader/library files"
else
  echo "static binary: no libraries needed"
fi

previous=$(podman image inspect "$image" --format '{{.Id}}' 2>/dev/null || true)
podman build --quiet -f deploy/Containerfile.scratch -t "$image" "$context" >/dev/null
# Drop the image this build replaced, so repeated CI runs leave no litter.
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect "$image" --format '{{.Id}}')" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi
size=$(podman image inspect "$image" --format '{{.Size}}')
config=$(podman image inspect "$image" --format '{{.Config.User}} {{.Config.ExposedPorts}} {{.Config.Entrypoint}}')
case "$config" in
  "65532:65532 map[10138/tcp:{}] [/upstream-exporter]") ;;
  *) echo "unexpected image config: $config" >&2; exit 1 ;;
esac
echo "built $image: $size bytes ($((size / 1024 / 1024)) MiB); binary in the image $(stat -c %s "$context/rootfs/upstream-exporter") bytes"
