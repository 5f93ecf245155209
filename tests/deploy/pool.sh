#!/usr/bin/env bash
# Three ringgate "machines" behind a load balancer configured as shipped, under load, in a
# network namespace of its own:
#
#   unshare --net bash tests/deploy/pool.sh RINGGATE_BINARY haproxy|nginx
#
# The machines are the shipped pool addresses 10.0.0.11-13 (added to the namespace's loopback),
# each running ringgate with deploy/ringgate-pool-member.toml, its addresses narrowed to its
# own. The load balancer runs deploy/haproxy/ringgate-pool.cfg or deploy/nginx/ringgate-pool.conf.
# Two runs of tests/deploy/load.py (8 keep-alive clients) against it, each with one member taken down 2 s in:
#   drain: SIGTERM: no client request may fail;
#   kill:  SIGKILL: the member must be out of rotation within the health-check interval
#          (HAProxy: inter 1 s x fall 2, plus a margin), and the failed requests are reported.
# Prints one line per run: requests, failures, and (kill) the time from the kill to the last
# failed request, i.e. until the member was out of rotation.
set -euo pipefail

bin=$1
lb=$2
name="pool $lb"
# shellcheck source=tests/deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for i in 1 2 3; do ip addr add "10.0.0.1$i/32" dev lo; done

declare -A member
start_member() { # start_member N
    local host=10.0.0.1$1
    "$bin" --config "$deploy/ringgate-pool-member.toml" --workers 1 \
        --fastcgi "$host:9000" --scgi "$host:9001" --metrics "$host:9500" \
        >>"$work/ringgate$1.log" 2>&1 &
    member[$1]=$!
    pids+=($!)
    wait_addr "$host" 9000
    wait_addr "$host" 9500
}

start_lb() {
    case $lb in
    haproxy)
        haproxy -f "$deploy/haproxy/ringgate-pool.cfg" -db >"$work/lb.log" 2>&1 &
        pids+=($!)
        ;;
    nginx)
        start_nginx "$deploy/nginx/ringgate-pool.conf"
        ;;
    *) fail "unknown load balancer" ;;
    esac
    wait_addr 127.0.0.1 8080
}

for i in 1 2 3; do start_member "$i"; done
start_lb
# Every member answers before the runs start.
for _ in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:8080/hello || true; done
sleep 2.5

# Run 1: drain member 1 two seconds into an eight-second run: nothing may fail.
read -r requests failed _ < <(python3 "$root/tests/deploy/load.py" http://127.0.0.1:8080/hello 8 2 "${member[1]}" 15)
wait "${member[1]}" || fail "member 1 did not exit 0 after its drain"
[[ $failed == 0 ]] || fail "drain: $failed of $requests requests failed"
echo "ok   pool $lb drain: $requests requests, 0 failed; member 1 drained and exited 0"

# Run 2: kill member 2 two seconds into an eight-second run (member 1 is back first). HAProxy
# must mark it DOWN within its health-check interval (inter 1 s x fall 2, plus a margin);
# nginx, with no active checks, takes it out on its first failed attempt and retries that.
start_member 1
sleep 3
python3 "$root/tests/deploy/load.py" http://127.0.0.1:8080/hello 8 2 "${member[2]}" 9 >"$work/kill.out" &
load=$!
sleep 2
start_ns=$(date +%s%N)
out_ms=-
if [[ $lb == haproxy ]]; then
    for _ in $(seq 1 200); do
        grep -q 'ringgate2 is DOWN' "$work/lb.log" && break
        sleep 0.02
    done
    grep -q 'ringgate2 is DOWN' "$work/lb.log" || fail "kill: ringgate2 never marked DOWN"
    out_ms=$((($(date +%s%N) - start_ns) / 1000000))
    ((out_ms <= 3500)) || fail "kill: ringgate2 marked DOWN only after ${out_ms} ms"
fi
wait "$load"
read -r requests failed last_failure_ms <"$work/kill.out"
wait "${member[2]}" 2>/dev/null || true
echo "ok   pool $lb kill: $requests requests, $failed failed (the last ${last_failure_ms} ms after the kill); marked down after ${out_ms} ms"
