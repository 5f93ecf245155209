#!/usr/bin/env bash
# .ci/test-image.sh: runs the container image that deploy/container/build.sh built, without a
# container engine (none runs here): mounts the image's filesystem with buildah and runs its
# binary there with chroot as the image's user 65532, in a network namespace of its own.
#   bash .ci/test-image.sh            (root; IMAGE, STORAGE_DRIVER as for build.sh)
# Checks: the image's user is 65532 and its entrypoint the binary; `--check-config` accepts
# the image's default config and every ringgate.toml of the Kubernetes ConfigMaps
# (deploy/kubernetes/*.yaml); the binary serves FastCGI and SCGI and GET /health with the
# image's default config and with the Deployment's ConfigMap mounted over /etc/ringgate, as
# uid 65532, and with the sidecar's on its Unix socket as uid 101 (.ci/serve-check.sh).
# Called by .ci/run after the build.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
driver=${STORAGE_DRIVER:-vfs}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)
image=${IMAGE:-ringgate:$version}
bah() { buildah --storage-driver "$driver" "$@"; }

bah inspect --type image "$image" >/dev/null 2>&1 || {
    echo "test-image.sh: no image $image: build it with bash deploy/container/build.sh" >&2
    exit 1
}
echo "image $image: $(bah images --format '{{.Size}}' "$image")"

user=$(bah inspect --type image --format '{{.OCIv1.Config.User}}' "$image")
entrypoint=$(bah inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' "$image")
[[ $user == 65532:65532 ]] || { echo "FAIL image user is '$user', not 65532:65532" >&2; exit 1; }
[[ $entrypoint == "[/usr/bin/ringgate]" ]] || { echo "FAIL entrypoint $entrypoint" >&2; exit 1; }
echo "ok   runs as $user, entrypoint $entrypoint"

ctr=$(bah from --pull=never "$image")
mnt=
cleanup() {
    [[ -n $mnt ]] && bah umount "$ctr" >/dev/null 2>&1
    bah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
mnt=$(bah mount "$ctr")
as_user() { chroot --userspec=65532:65532 "$mnt" "$@"; }

as_user /usr/bin/ringgate --version
as_user /usr/bin/ringgate --check-config --config /etc/ringgate/ringgate.toml >/dev/null
echo "ok   --check-config /etc/ringgate/ringgate.toml (the image's default)"

# The ConfigMaps' configs, as the pod sees them: each one's ringgate.toml at
# /etc/ringgate/ringgate.toml (the Deployment mounts the ConfigMap over /etc/ringgate).
mkdir -p "$mnt/k8s"
python3 - "$root/deploy/kubernetes" "$mnt/k8s" <<'PY'
import glob, os, sys, yaml
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.yaml"))):
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc["kind"] == "ConfigMap" and "ringgate.toml" in doc.get("data", {}):
            out = os.path.join(sys.argv[2], doc["metadata"]["name"] + ".toml")
            open(out, "w").write(doc["data"]["ringgate.toml"])
            print(f"{os.path.basename(path)}: ConfigMap {doc['metadata']['name']} -> {out}")
PY
chmod -R a+rX "$mnt/k8s"
found=0
for f in "$mnt"/k8s/*.toml; do
    as_user /usr/bin/ringgate --check-config --config "/k8s/$(basename "$f")" >/dev/null
    echo "ok   --check-config on ConfigMap $(basename "$f" .toml)'s ringgate.toml"
    found=$((found + 1))
done
[[ $found -ge 1 ]] || { echo "FAIL no ConfigMap with a ringgate.toml" >&2; exit 1; }

echo "--- serving with the image's default config, as uid 65532"
EXPECT_UID=65532 bash "$root/.ci/serve-check.sh" chroot --userspec=65532:65532 "$mnt" \
    /usr/bin/ringgate --config /etc/ringgate/ringgate.toml

echo "--- serving with the Deployment's ConfigMap (deploy/kubernetes/configmap.yaml), as uid 65532"
cp "$mnt/k8s/ringgate.toml" "$mnt/etc/ringgate/ringgate.toml"
EXPECT_UID=65532 bash "$root/.ci/serve-check.sh" chroot --userspec=65532:65532 "$mnt" \
    /usr/bin/ringgate --config /etc/ringgate/ringgate.toml
echo "--- serving with the sidecar's ConfigMap (deploy/kubernetes/sidecar.yaml), as uid 101"
# As in that pod: uid 101 (the pod's runAsUser), FastCGI on a Unix socket in an emptyDir
# mounted at /run/ringgate, no SCGI.
mkdir -p "$mnt/run/ringgate"
chown 101:101 "$mnt/run/ringgate"
cp "$mnt/k8s/web-ringgate-sidecar.toml" "$mnt/etc/ringgate/ringgate.toml"
# The client reaches the socket through a short link: the mount point's path is longer than
# a Unix socket address may be.
short=$(mktemp -d)
ln -s "$mnt/run/ringgate" "$short/run"
EXPECT_UID=101 FASTCGI=unix:$short/run/fcgi.sock SCGI= bash "$root/.ci/serve-check.sh" \
    chroot --userspec=101:101 "$mnt" /usr/bin/ringgate --config /etc/ringgate/ringgate.toml
rm -rf "$short"
echo "test-image.sh: $image passed"
