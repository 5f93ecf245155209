#!/usr/bin/env bash
# .ci/test-deb.sh: checks the Debian package that `cargo deb` built, then installs it and runs
# what it installed.
#   bash .ci/test-deb.sh [PACKAGE.deb]    (root; default: the newest target/debian/ringgate_*.deb)
# 1. Contents: the binary in /usr/bin, the systemd units in /lib/systemd/system, the config for
#    them as the conffile /etc/ringgate/ringgate.toml, the example config in
#    /usr/share/doc/ringgate; the version is the crate's.
# 2. `dpkg --root` into a scratch root (a real dpkg install, with its database), then from
#    there: `ringgate --check-config` on the installed config, and the installed binary with
#    the installed config serving on the sockets the installed socket units name (TCP ones as
#    they are, Unix ones moved under a temporary directory), passed the way systemd passes them
#    (systemd-socket-activate, LISTEN_FDNAMES from FileDescriptorName=), as user nobody,
#    checked by .ci/serve-check.sh in a network namespace of its own.
# 3. With CI=true (or INSTALL_ON_HOST=1): `dpkg -i` on this machine, the same checks on
#    /usr/bin/ringgate and /etc/ringgate/ringgate.toml, `systemd-analyze verify` on the
#    installed units, then `dpkg --purge ringgate`.
# Called by .ci/run after `cargo deb`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deb=${1:-$(ls -t "$root"/target/debian/ringgate_*.deb 2>/dev/null | head -n1)}
[[ -n $deb && -f $deb ]] || {
    echo "test-deb.sh: no package: build it with cargo deb (cargo install --locked cargo-deb)" >&2
    exit 1
}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp" # the scratch root is read (and its sockets made) by an unprivileged user
fail() { echo "FAIL $*" >&2; exit 1; }

echo "package $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Architecture\|Depends\|Installed-Size\):/  &/p'

# --- 1. Contents ---------------------------------------------------------------------------------
[[ $(dpkg-deb -f "$deb" Package) == ringgate ]] || fail "package name"
[[ $(dpkg-deb -f "$deb" Version) == "$version"-* ]] || fail "version is not $version"
files=$(dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's#^\./#/#')
for f in /usr/bin/ringgate /lib/systemd/system/ringgate.service \
    /lib/systemd/system/ringgate-fastcgi.socket /lib/systemd/system/ringgate-scgi.socket \
    /etc/ringgate/ringgate.toml /usr/share/doc/ringgate/ringgate.example.toml \
    /usr/share/doc/ringgate/copyright; do
    grep -qx "$f" <<<"$files" || fail "$f is not in the package"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/ringgate/ringgate.toml ||
    fail "/etc/ringgate/ringgate.toml is not a conffile"
echo "ok   contents: binary, units, conffile /etc/ringgate/ringgate.toml, example config"

# serves INSTROOT: the binary and config installed under INSTROOT ("" for this machine), fed
# the sockets its socket units name.
serves() {
    local instroot=$1 listen=() names=() unit addr name
    for unit in ringgate-fastcgi ringgate-scgi; do
        unit=$instroot/lib/systemd/system/$unit.socket
        name=$(sed -n 's/^FileDescriptorName=//p' "$unit")
        [[ -n $name ]] || fail "$unit has no FileDescriptorName="
        for addr in $(sed -n 's/^ListenStream=//p' "$unit"); do
            if [[ $addr == /* ]]; then
                addr=$tmp/run/$(basename "$addr")
                mkdir -p "$tmp/run"
                chown nobody "$tmp/run"
            fi
            listen+=(-l "$addr")
            names+=("$name")
        done
    done
    local fastcgi=() scgi=() i
    for i in "${!names[@]}"; do
        addr=${listen[$((2 * i + 1))]}
        [[ $addr == /* ]] && addr=unix:$addr
        if [[ ${names[$i]} == fastcgi ]]; then fastcgi+=("$addr"); else scgi+=("$addr"); fi
    done
    echo "--- $instroot/usr/bin/ringgate --config $instroot/etc/ringgate/ringgate.toml on" \
        "${listen[*]} (names ${names[*]})"
    # As an unprivileged user, as under the unit's DynamicUser=.
    ACTIVATED=1 EXPECT_UID=$(id -u nobody) FASTCGI=${fastcgi[*]} SCGI=${scgi[*]} bash "$root/.ci/serve-check.sh" \
        setpriv --reuid=nobody --regid=nogroup --clear-groups systemd-socket-activate "${listen[@]}" --fdname="$(IFS=:; echo "${names[*]}")" \
        "$instroot/usr/bin/ringgate" --config "$instroot/etc/ringgate/ringgate.toml"
}

check_installed() { # check_installed INSTROOT DPKG-OPTIONS...
    local instroot=$1
    shift
    [[ $(dpkg "$@" --status ringgate | sed -n 's/^Status: //p') == "install ok installed" ]] ||
        fail "dpkg does not list ringgate as installed"
    "$instroot/usr/bin/ringgate" --version
    "$instroot/usr/bin/ringgate" --check-config --config "$instroot/etc/ringgate/ringgate.toml" \
        >/dev/null || fail "ringgate --check-config refused the installed config"
    echo "ok   ringgate --check-config --config $instroot/etc/ringgate/ringgate.toml"
    serves "$instroot"
}

# --- 2. A scratch root ---------------------------------------------------------------------------
# dpkg needs its database there; the libraries the package depends on are the host's (the
# binary runs from the host's root), hence --force-depends. No maintainer scripts run (the
# package has none), so nothing needs a shell inside the scratch root.
scratch=$tmp/root
mkdir -p "$scratch/var/lib/dpkg/info" "$scratch/var/lib/dpkg/updates"
touch "$scratch/var/lib/dpkg/status" "$scratch/var/lib/dpkg/available"
dpkg --root="$scratch" --force-depends --install "$deb"
echo "ok   dpkg --root=$scratch --install"
check_installed "$scratch" --root="$scratch"
dpkg --root="$scratch" --purge ringgate >/dev/null
[[ ! -e $scratch/usr/bin/ringgate && ! -e $scratch/etc/ringgate/ringgate.toml ]] ||
    fail "dpkg --purge left files behind"
echo "ok   dpkg --root=$scratch --purge removes everything"

# --- 3. This machine -----------------------------------------------------------------------------
if [[ ${CI:-} == true || ${INSTALL_ON_HOST:-} == 1 ]]; then
    dpkg --install "$deb"
    echo "ok   dpkg --install (this machine)"
    check_installed ""
    # The installed units as systemd reads them, ExecStart= now pointing at an installed binary.
    out=$(systemd-analyze verify --man=no /lib/systemd/system/ringgate.service \
        /lib/systemd/system/ringgate-fastcgi.socket /lib/systemd/system/ringgate-scgi.socket 2>&1) &&
        [[ -z $out ]] || fail "systemd-analyze verify on the installed units: $out"
    echo "ok   systemd-analyze verify /lib/systemd/system/ringgate*"
    dpkg --purge ringgate >/dev/null
    echo "ok   dpkg --purge ringgate (this machine)"
else
    echo "skip dpkg --install on this machine (set CI=true or INSTALL_ON_HOST=1)"
fi
echo "test-deb.sh: $(basename "$deb") passed"
