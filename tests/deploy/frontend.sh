#!/usr/bin/env bash
# Drives one front end of deploy/ with real traffic, its file used as shipped (same addresses
# and ports), inside a network namespace of its own so that the shipped ports are free:
#
#   unshare --net bash tests/deploy/frontend.sh RINGGATE_BINARY FRONTEND [latency]
#
# With `latency`, it checks instead that requests are answered at once on a quiet server:
# rounds of 300 GET /hello one after another over one kept-alive client connection, timed by
# curl, until one round's 99th percentile is under 5 ms (three rounds at most; a stall, such as
# the ~16 ms wait of issue 21, is in every round). Run alone: a busy CPU hides a stall.
# FRONTEND: nginx | haproxy | apache | lighttpd | caddy. ringgate runs with its defaults
# (FastCGI 127.0.0.1:9000, SCGI 127.0.0.1:9001, metrics 127.0.0.1:9500). The front end is
# started from its deploy/ file, wrapped where the file is a snippet in the least main
# configuration the program needs (pid file, logs, modules), exactly as check-configs.sh does.
# Checks, through the FastCGI site (127.0.0.1:8080) and, where the front end speaks SCGI, the
# SCGI site (127.0.0.1:8081): GET /hello, a 1 MiB POST echoed byte for byte, a 4 MiB streamed
# response byte for byte, and a client that disconnects mid-response (ringgate must end that
# request: the in-flight gauge returns to 0 and /hello is still served).
set -euo pipefail

bin=$1
fe=$2
check=${3:-serve}
name=$fe
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

metric() { # metric SERIES: its value in ringgate's /metrics
    curl -sf http://127.0.0.1:9500/metrics | awk -v s="$1" '$1 == s { print $2 }'
}

"$bin" --workers 2 >"$work/ringgate.log" 2>&1 &
pids+=($!)
wait_port 9000
wait_port 9001
wait_port 9500

scgi=yes
case $fe in
nginx)
    start_nginx "$deploy/nginx/ringgate.conf"
    ;;
haproxy)
    scgi=no
    haproxy -f "$deploy/haproxy/ringgate.cfg" -db >"$work/haproxy.log" 2>&1 &
    pids+=($!)
    ;;
apache)
    mods=/usr/lib/apache2/modules
    cat >"$work/apache.conf" <<EOF
ServerRoot /etc/apache2
PidFile $work/apache.pid
ErrorLog $work/apache-error.log
LogLevel warn
DefaultRuntimeDir $work
Mutex file:$work default
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule proxy_module $mods/mod_proxy.so
LoadModule proxy_fcgi_module $mods/mod_proxy_fcgi.so
LoadModule proxy_scgi_module $mods/mod_proxy_scgi.so
ServerName localhost
Include $deploy/apache/ringgate.conf
EOF
    apache2 -f "$work/apache.conf" -DFOREGROUND >"$work/apache.log" 2>&1 &
    pids+=($!)
    ;;
lighttpd)
    mkdir -p "$work/www"
    cat >"$work/lighttpd.conf" <<EOF
server.document-root = "$work/www"
server.bind = "127.0.0.1"
server.port = 8080
server.pid-file = "$work/lighttpd.pid"
server.errorlog = "$work/lighttpd-error.log"
include "$deploy/lighttpd/ringgate.conf"
EOF
    lighttpd -D -f "$work/lighttpd.conf" >"$work/lighttpd.log" 2>&1 &
    pids+=($!)
    ;;
caddy)
    scgi=no
    HOME=$work XDG_DATA_HOME=$work XDG_CONFIG_HOME=$work \
        caddy run --adapter caddyfile --config "$deploy/caddy/Caddyfile" >"$work/caddy.log" 2>&1 &
    pids+=($!)
    ;;
*)
    fail "unknown front end"
    ;;
esac

ports=(8080)
[[ $scgi == yes ]] && ports+=(8081)
for port in "${ports[@]}"; do
    wait_port "$port"
done

if [[ $check == latency ]]; then
    urls=() # -o before each URL: the bodies go nowhere, the timings to stdout
    for _ in $(seq 1 300); do urls+=(-o /dev/null http://127.0.0.1:8080/hello); done
    curl -sS --max-time 10 "${urls[@]:0:30}" || fail "warm-up GETs"
    for round in 1 2 3; do
        # One curl, one connection, 300 transfers: time_total of each, in seconds.
        curl -sS --max-time 60 -w '%{http_code} %{time_total}\n' "${urls[@]}" \
            >"$work/times" || fail "300 GETs (round $round)"
        [[ $(grep -c '^200 ' "$work/times") == 300 ]] || fail "not every GET answered 200"
        read -r p50 p99 max < <(awk '{ print $2 * 1000 }' "$work/times" | sort -n |
            awk '{ v[NR] = $1 } END { print v[int(NR / 2)], v[int(NR * 0.99)], v[NR] }')
        echo "     $fe  300 GETs one at a time, round $round: p50 ${p50} ms, p99 ${p99} ms, max ${max} ms"
        if awk -v p="$p99" 'BEGIN { exit !(p < 5) }'; then
            exit 0
        fi
    done
    fail "p99 over 5 ms in every round: requests through $fe waited for something"
fi

# The payloads: 1 MiB of random bytes to echo, and what /stream?chunks=64&size=65536 sends
# (chunk k is 65536 bytes of 'a' + k % 26).
head -c 1048576 /dev/urandom >"$work/upload"
python3 - "$work/stream" <<'EOF'
import sys
with open(sys.argv[1], "wb") as f:
    for k in range(64):
        f.write(bytes([ord("a") + k % 26]) * 65536)
EOF

for port in "${ports[@]}"; do
    base=http://127.0.0.1:$port
    got=$(curl -sS --max-time 10 "$base/hello") || fail "GET /hello on $port"
    [[ $got == "Hello, world!" ]] || fail "GET /hello on $port answered '$got'"

    curl -sS --max-time 30 -o "$work/echoed" -H 'Content-Type: application/octet-stream' \
        --data-binary "@$work/upload" "$base/echo" || fail "POST /echo on $port"
    cmp -s "$work/upload" "$work/echoed" || fail "1 MiB echo on $port differs: $(wc -c <"$work/echoed") bytes back, $(head -c 300 "$work/echoed" | tr -c "[:print:]" .)"

    curl -sS --max-time 30 -o "$work/streamed" "$base/stream?chunks=64&size=65536" ||
        fail "GET /stream on $port"
    cmp -s "$work/stream" "$work/streamed" || fail "4 MiB stream on $port differs"

    # A client that goes away after one second of a five-second response.
    curl -sS --max-time 1 -o /dev/null "$base/stream?chunks=100&size=65536&delay_ms=50" \
        2>/dev/null && fail "the slow stream on $port ended within 1 s"
    for _ in $(seq 1 100); do
        [[ $(metric ringgate_requests_in_flight) == 0 ]] && break
        sleep 0.1
    done
    [[ $(metric ringgate_requests_in_flight) == 0 ]] ||
        fail "a request is still in flight 10 s after its client left ($port)"
    got=$(curl -sS --max-time 10 "$base/hello") || fail "GET /hello after the disconnect on $port"
    [[ $got == "Hello, world!" ]] || fail "GET /hello after the disconnect on $port: '$got'"
    echo "ok   $fe :$port  GET, 1 MiB echo, 4 MiB stream, client disconnect"
done
aborts=$(curl -sf http://127.0.0.1:9500/metrics | awk '/^ringgate_aborts_total/ { s += $2 } END { print s + 0 }')
echo "ok   $fe  ringgate counted $aborts aborted request(s)"
