#!/bin/bash
# Latency as users meet it, not only CPU at saturation: open-loop load (a constant rate, each
# request's latency counted from its intended send time) and front ends driven one request at
# a time and at 32 connections. Every run puts the default io_uring path beside the epoll path
# and (directly) the floor, interleaved round by round; each server is one worker pinned to
# core 0, each generator pinned to core 1. Prints one line per run and, at the end, the
# medians over the rounds.
#
#   cargo build --release --bin ringgate -p ringgate-load --examples
#   bash benches/latency.sh [ROUNDS]            # default 3 rounds
#
# One at a time (ringgate-load, closed loop, 1 connection, 4 s): FastCGI kept alive, FastCGI
# with a connection per request, FastCGI multiplexed 4 deep, SCGI; on the receive ring
# (ring: --recv-buffers 64), readiness reads (uring, the default) and epoll: req/s, p50, p99, p99.9.
# Direct (ringgate-load, FastCGI kept alive): for 1 and 32 connections, the capacity of the
# epoll path is measured first (closed loop, 4 s); then open loop at 1,000 req/s and at 50%
# and 90% of that capacity, 5 s each: p50, p99, p99.9. Through nginx (kept-alive upstream,
# tests/frontends/nginx.conf.in) and HAProxy (multiplexed, tests/frontends/haproxy.cfg.in):
# wrk -t1 for 5 s at 1 and 32 connections: req/s and p50/p99. BIN=... picks the ringgate
# binary; SERVERS="uring epoll floor" picks the servers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-3}
bin=${BIN:-target/release/ringgate}
load=target/release/ringgate-load
floor=target/release/examples/floor_server
servers=${SERVERS:-uring epoll floor}
work=$(mktemp -d)
results=$work/results
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
    [[ -f $work/fe.pid ]] && kill "$(cat "$work/fe.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
port=9700

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

start_server() { # start_server NAME: FastCGI on $port
    port=$((port + 2))
    case $1 in
    floor) taskset -c 0 "$floor" "127.0.0.1:$port" >/dev/null 2>&1 & ;;
    uring) taskset -c 0 "$bin" --workers 1 --no-pin --no-metrics --fastcgi "127.0.0.1:$port" --scgi "127.0.0.1:$((port + 1))" >/dev/null 2>&1 & ;;
    ring) taskset -c 0 "$bin" --recv-buffers 64 --workers 1 --no-pin --no-metrics --fastcgi "127.0.0.1:$port" --scgi "127.0.0.1:$((port + 1))" >/dev/null 2>&1 & ;;
    epoll) taskset -c 0 "$bin" --io epoll --workers 1 --no-pin --no-metrics --fastcgi "127.0.0.1:$port" --scgi "127.0.0.1:$((port + 1))" >/dev/null 2>&1 & ;;
    esac
    server_pid=$!
    wait_port "$port"
}

stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=; }

# gen ARGS...: ringgate-load against the current server (FastCGI, kept alive); prints "rps
# p50 p99 p99.9 errors" (ms). gen_to URL ARGS...: the same against URL, as ARGS say.
gen() { gen_to "fastcgi://127.0.0.1:$port" -k "$@"; }
gen_to() {
    local url=$1
    shift
    taskset -c 1 "$load" -t "$url" "$@" --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
l = d["latency_ms"]
print("%.0f %.3f %.3f %.3f %d" % (d["throughput_rps"], l["p50"], l["p99"], l["p99_9"], d["errors_total"]))'
}

echo "# one request at a time (closed loop, 1 connection, 4 s); latency in ms"
for mode in fastcgi-kept-alive fastcgi-per-request fastcgi-mpx4 scgi; do
    for r in $(seq 1 "$rounds"); do
        for s in uring ring epoll; do
            start_server "$s"
            case $mode in
            fastcgi-kept-alive) args=(fastcgi://127.0.0.1:$port -k) ;;
            fastcgi-per-request) args=(fastcgi://127.0.0.1:$port) ;;
            fastcgi-mpx4) args=(fastcgi://127.0.0.1:$port -k -d 4) ;;
            scgi) args=(scgi://127.0.0.1:$((port + 1))) ;;
            esac
            read -r rps p50 p99 p999 errors < <(gen_to "${args[@]}" -c 1 --duration 4s --warmup 500ms)
            stop_server
            line="one-at-a-time $mode $s"
            echo "$line round $r: $rps req/s p50 $p50 p99 $p99 p99.9 $p999 errors $errors"
            echo "$line|$rps|$p50|$p99|$p999" >>"$results"
        done
    done
done

echo "# direct, FastCGI kept alive; latency in ms"
for conns in 1 32; do
    start_server epoll
    read -r capacity _ < <(gen -c "$conns" --duration 4s)
    stop_server
    echo "capacity of epoll at $conns connection(s): $capacity req/s (closed loop)"
    for rate in 1000 $((capacity / 2)) $((capacity * 9 / 10)); do
        for r in $(seq 1 "$rounds"); do
            for s in $servers; do
                start_server "$s"
                read -r rps p50 p99 p999 errors < <(gen -c "$conns" -r "$rate" --duration 5s --warmup 1s)
                stop_server
                line="direct c=$conns rate=$rate $s"
                echo "$line round $r: $rps req/s p50 $p50 p99 $p99 p99.9 $p999 errors $errors"
                echo "$line|$rps|$p50|$p99|$p999" >>"$results"
            done
        done
    done
done

# Front ends: the config templates of the integration tests, filled in here.
render() { # render TEMPLATE HTTP_PORT FASTCGI SCGI
    sed -e "s#@DIR@#$work#g" -e "s#@HTTP_PORT@#$2#g" -e "s#@FASTCGI@#$3#g" -e "s#@SCGI@#$4#g" \
        -e "s#@SCGI_HTTP_PORT@#$(($2 + 1))#g" "$1"
}
start_frontend() { # start_frontend nginx|haproxy HTTP_PORT
    case $1 in
    nginx)
        render tests/frontends/nginx.conf.in "$2" "127.0.0.1:$port" "127.0.0.1:$((port + 1))" >"$work/nginx.conf"
        taskset -c 1 nginx -c "$work/nginx.conf" -e "$work/nginx.err" >/dev/null 2>&1 &
        ;;
    haproxy)
        render tests/frontends/haproxy.cfg.in "$2" "127.0.0.1:$port" "" >"$work/haproxy.cfg"
        taskset -c 1 haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 &
        ;;
    esac
    echo $! >"$work/fe.pid"
    wait_port "$2"
}
stop_frontend() { kill "$(cat "$work/fe.pid")"; wait "$(cat "$work/fe.pid")" 2>/dev/null || true; rm -f "$work/fe.pid"; }

ms() { # wrk's latency figure (e.g. 250.00us, 1.20ms, 2.00s) in ms
    python3 -c 'import re,sys; v,u=re.match(r"([0-9.]+)(us|ms|s)$",sys.argv[1]).groups(); print(round(float(v)*{"us":1e-3,"ms":1,"s":1e3}[u],3))' "$1"
}

echo "# through front ends (wrk -t1, 5 s): req/s, latency in ms"
for fe in nginx haproxy; do
    command -v "$fe" >/dev/null || { echo "$fe: not installed, skipped"; continue; }
    for conns in 1 32; do
        for r in $(seq 1 "$rounds"); do
            for s in $servers; do
                [[ $s == floor ]] && continue # the floor speaks FastCGI only to ringgate-load
                start_server "$s"
                http=$((port + 40))
                start_frontend "$fe" "$http"
                out=$(taskset -c 1 wrk -t1 -c"$conns" -d5s --latency "http://127.0.0.1:$http/hello")
                stop_frontend
                stop_server
                rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
                p50=$(ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
                p99=$(ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
                line="$fe c=$conns $s"
                echo "$line round $r: $rps req/s p50 $p50 p99 $p99"
                echo "$line|$rps|$p50|$p99|" >>"$results"
            done
        done
    done
done

echo "# medians over $rounds round(s)"
python3 - "$results" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    key, *vals = line.rstrip("\n").split("|")
    runs.setdefault(key, []).append([float(v) if v else None for v in vals])
for key, rows in runs.items():
    cols = list(zip(*rows))
    med = [statistics.median(c) if None not in c else None for c in cols]
    names = ["req/s", "p50", "p99", "p99.9"]
    print(key + ": " + ", ".join(f"{n} {v:g}" for n, v in zip(names, med) if v is not None))
EOF
