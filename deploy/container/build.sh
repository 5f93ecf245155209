#!/usr/bin/env bash
# Builds the container image ringgate:VERSION (VERSION: the binary's own, the crate version)
# offline with buildah, from deploy/container/Containerfile: stages a root filesystem under
# target/container/rootfs (the binary, stripped of debug info; the shared libraries ldd lists,
# at the paths it lists them; etc/passwd and etc/group with the user 65532; the default
# config), then `buildah bud` FROM scratch. Run as root from anywhere:
#   bash deploy/container/build.sh [BINARY]
# BINARY defaults to target/release/ringgate, brought up to date with
# `cargo build --release --locked` first. Environment: STORAGE_DRIVER (buildah's, default
# vfs, which needs no kernel overlay support), IMAGE (default ringgate:VERSION).
# Prints the image name and its size; deploy/container/test.sh then runs it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/deploy/container
driver=${STORAGE_DRIVER:-vfs}

if [[ $# -ge 1 ]]; then
    bin=$1
else
    (cd "$root" && cargo build --release --locked --bin ringgate)
    bin=$root/target/release/ringgate
fi
version=$("$bin" --version | awk '{print $2}')
image=${IMAGE:-ringgate:$version}

ctx=$root/target/container
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/usr/bin" "$ctx/rootfs/etc/ringgate" "$ctx/rootfs/tmp"
chmod 1777 "$ctx/rootfs/tmp"

# The binary without its DWARF line tables (the symbol table stays, for backtraces).
objcopy --strip-debug "$bin" "$ctx/rootfs/usr/bin/ringgate"
chmod 0755 "$ctx/rootfs/usr/bin/ringgate"

# Every library the dynamic loader resolves, and the loader itself, copied (symlinks followed)
# to the path ldd shows, which is where the binary and the loader look for them.
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[[ -n $libs ]] || { echo "build.sh: ldd found no libraries for $bin" >&2; exit 1; }
for lib in $libs; do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
done

# The unprivileged user the image runs as (the "nonroot" uid/gid of distroless images).
printf 'root:x:0:0:root:/root:/sbin/nologin\nringgate:x:65532:65532:ringgate:/nonexistent:/sbin/nologin\n' \
    >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nringgate:x:65532:\n' >"$ctx/rootfs/etc/group"
install -m 0644 "$here/ringgate.toml" "$ctx/rootfs/etc/ringgate/ringgate.toml"

# The stored image is replaced: a previous one of the same name is removed first, so that
# repeated builds do not pile up in the vfs storage (every layer is a full copy there).
buildah --storage-driver "$driver" rmi -f "$image" >/dev/null 2>&1 || true
buildah --storage-driver "$driver" bud --layers=false --build-arg "VERSION=$version" \
    -f "$here/Containerfile" -t "$image" "$ctx"

size=$(buildah --storage-driver "$driver" images --format '{{.Size}}' "$image")
echo "built $image ($size; binary $(du -h "$ctx/rootfs/usr/bin/ringgate" | cut -f1))"
