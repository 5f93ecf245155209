#!/usr/bin/env bash
# Runs deploy/systemd/ as systemd would, in a scratch root and a network namespace of its own:
#
#   unshare --net bash tests/deploy/systemd.sh RINGGATE_BINARY
#
# The sockets are the ListenStream= lines of ringgate-fastcgi.socket and ringgate-scgi.socket
# (their /run paths moved under the scratch root), named by their FileDescriptorName=, passed
# by systemd-socket-activate to the service's ExecStart= (the binary path and
# /etc/ringgate/ringgate.toml mapped to the built binary and deploy/systemd/ringgate.toml,
# which is what the package installs there). Then nginx, with deploy/nginx/ringgate.conf as
# shipped, serves through it on both protocols; SIGTERM must drain and exit 0.
set -euo pipefail

bin=$1
name=systemd
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
units=$deploy/systemd

# key FILE KEY: every value of KEY= in a unit file.
key() { sed -n "s/^$2=//p" "$1"; }

listen=()
names=()
for unit in ringgate-fastcgi.socket ringgate-scgi.socket; do
    name=$(key "$units/$unit" FileDescriptorName)
    while read -r addr; do
        [[ $addr == /run/* ]] && addr=$work/root$addr && mkdir -p "$(dirname "$addr")"
        listen+=(-l "$addr")
        names+=("$name")
    done < <(key "$units/$unit" ListenStream)
done
exec_start=$(key "$units/ringgate.service" ExecStart)
exec_start=${exec_start//\/usr\/bin\/ringgate/$bin}
exec_start=${exec_start//\/etc\/ringgate\/ringgate.toml/$units/ringgate.toml}
fdnames=$(IFS=:; echo "${names[*]}")
echo "systemd-socket-activate ${listen[*]} --fdname=$fdnames $exec_start"

# shellcheck disable=SC2086 # ExecStart= is split into words, as systemd does.
systemd-socket-activate "${listen[@]}" --fdname="$fdnames" -E RUST_LOG=info $exec_start \
    >"$work/ringgate.log" 2>&1 &
rg=$!
pids+=($rg)
wait_port 9000
wait_port 9001

start_nginx "$deploy/nginx/ringgate.conf"
wait_port 8080
wait_port 8081

for port in 8080 8081; do
    got=$(curl -sS --max-time 10 "http://127.0.0.1:$port/hello") || fail "GET /hello on $port"
    [[ $got == "Hello, world!" ]] || fail "GET /hello on $port answered '$got'"
done
# Every inherited socket is served, the Unix ones included.
for sock in "$work"/root/run/ringgate/*.sock; do
    python3 - "$sock" <<'EOF' || fail "nothing accepts on $sock"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
EOF
done
health=$(curl -sS --max-time 5 http://127.0.0.1:9500/health) || fail "GET /health"
[[ $health == OK ]] || fail "/health answered '$health'"
grep -q 'listening protocol="scgi"' "$work/ringgate.log" || fail "no SCGI socket inherited"

kill -TERM "$rg"
status=0
wait "$rg" || status=$?
[[ $status == 0 ]] || fail "exit status $status after SIGTERM"
echo "ok   systemd units: socket activation (${#names[@]} sockets), nginx on both protocols, drain"
