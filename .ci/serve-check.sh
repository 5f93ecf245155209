#!/usr/bin/env bash
# .ci/serve-check.sh: starts a ringgate command line in a network namespace of its own (so that
# the default ports are free whatever else runs here; needs root) and checks that it serves:
#   bash .ci/serve-check.sh COMMAND...
# Waits for GET /health on $METRICS (default 127.0.0.1:9500) to answer OK, sends a FastCGI
# GET /hello to each address in $FASTCGI (default 127.0.0.1:9000) and an SCGI GET /hello to
# each in $SCGI (default 127.0.0.1:9001) with deploy/ringgate-get.py (space-separated lists;
# empty for none), then SIGTERM: the process must exit 0 within 15 s. Prints the server's log
# on failure. Options, in the environment:
#   EXPECT_UID=N  the process must run as uid N (after chroot --userspec, setpriv, ...);
#   ACTIVATED=1   COMMAND is systemd-socket-activate, which starts ringgate on the first
#                 connection: the first FastCGI request goes out before /health is asked for,
#                 starts ringgate, and must be answered.
# Used by .ci/test-deb.sh (the installed package) and .ci/test-image.sh (the image).
set -euo pipefail

if [[ ${SERVE_CHECK_NETNS:-} != 1 ]]; then
    exec unshare --net env SERVE_CHECK_NETNS=1 bash "$0" "$@"
fi
ip link set lo up

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
get=$root/deploy/ringgate-get.py
metrics=${METRICS-127.0.0.1:9500}
fastcgi=${FASTCGI-127.0.0.1:9000}
scgi=${SCGI-127.0.0.1:9001}
log=$(mktemp)
pid=

fail() {
    echo "serve-check: FAIL: $*" >&2
    echo "--- server log ($*):" >&2
    sed 's/^/    /' "$log" >&2
    [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
    rm -f "$log"
    exit 1
}

"$@" >"$log" 2>&1 &
pid=$!

request() { # request fastcgi|scgi ADDR
    local out opt=
    [[ $1 == scgi ]] && opt=--scgi
    out=$(python3 "$get" $opt "$2" /hello 2>&1) || fail "$1 GET /hello on $2: $out"
    grep -q '^Hello, world!' <<<"$out" || fail "$1 GET /hello on $2 answered: $out"
    echo "ok   $1 GET /hello on $2: $(head -n1 <<<"$out")"
}

if [[ ${ACTIVATED:-} == 1 ]]; then
    first=${fastcgi%% *}
    sleep 0.2 # systemd-socket-activate's sockets are bound
    request fastcgi "$first"
    echo "     (that connection started it: socket activation)"
fi

# Ready: /health answers "OK" (the workers run and the listeners are bound before it does).
health=
for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || fail "exited before it served"
    if health=$(python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(f"http://{sys.argv[1]}/health", timeout=2).read().decode().strip())' \
        "$metrics" 2>/dev/null); then
        break
    fi
    sleep 0.1
done
[[ $health == OK ]] || fail "GET http://$metrics/health answered '${health}', not OK"
echo "ok   GET http://$metrics/health: $health"
# EXPECT_UID: the user the server must run as (after chroot --userspec, setpriv, ...).
if [[ -n ${EXPECT_UID:-} ]]; then
    uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
    [[ $uid == "$EXPECT_UID" ]] || fail "runs as uid $uid, not $EXPECT_UID"
    echo "ok   runs as uid $uid ($(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -d' ' -f1))"
fi

for addr in $fastcgi; do request fastcgi "$addr"; done
for addr in $scgi; do request scgi "$addr"; done

kill -TERM "$pid"
for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "still running 15 s after SIGTERM"
status=0
wait "$pid" || status=$?
pid=
[[ $status -eq 0 ]] || fail "exit status $status after SIGTERM"
echo "ok   SIGTERM: drained and exited 0"
rm -f "$log"
