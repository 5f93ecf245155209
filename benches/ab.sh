#!/bin/bash
# A/B of ringgate builds (or of the demo against an example, or against the floor): server CPU
# per request and throughput of /hello, one worker pinned to core 0, ringgate-load pinned to
# core 1, rounds interleaved. Usage (after cargo build --release -p ringgate-load --examples):
#   bash benches/ab.sh epoll 3 "-c 4 -d 16 -k" demo=target/release/ringgate \
#       axum=target/release/examples/axum
# NAME=BIN@IO runs BIN on backend IO instead of the first argument's, and NAME=BIN@IO,OPT,...
# adds server options to that run only (ready=target/release/ringgate@uring,--recv-buffers,0);
# a BIN named floor_server (loadtest/examples) is the canned-response floor. METRICS=on keeps
# metrics on; EXTRA="..." adds server options to every run. Ends with each NAME's medians.
io=$1; rounds=$2; load=$3; shift 3
metrics_flag=--no-metrics
[ "${METRICS:-off}" = on ] && metrics_flag="--metrics 127.0.0.1:0"
port=9400
log=$(mktemp); trap 'rm -f $log' EXIT
for r in $(seq 1 $rounds); do
  for spec in "$@"; do
    name=${spec%%=*}; bin=${spec#*=}; bio=$io; opts=""
    case $bin in *@*) bio=${bin#*@}; bin=${bin%@*};; esac
    case $bio in *,*) opts=${bio#*,}; opts=${opts//,/ }; bio=${bio%%,*};; esac
    if [ "$(basename $bin)" = floor_server ]; then
      taskset -c 0 $bin 127.0.0.1:$port > /dev/null 2>&1 &
    else
      taskset -c 0 $bin --io $bio --workers 1 --no-pin --fastcgi 127.0.0.1:$port --scgi 127.0.0.1:$((port+1)) $metrics_flag $EXTRA $opts > /dev/null 2>&1 &
    fi
    pid=$!; sleep 0.5
    t0=$(awk '{print $14+$15}' /proc/$pid/stat)
    out=$(taskset -c 1 $(dirname "${BASH_SOURCE[0]}")/../target/release/ringgate-load -t fastcgi://127.0.0.1:$port $load --duration 4s 2>&1)
    t1=$(awk '{print $14+$15}' /proc/$pid/stat)
    kill $pid; wait $pid 2>/dev/null
    reqs=$(echo "$out" | grep -oE '[0-9]+ requests' | head -1 | cut -d' ' -f1)
    rps=$(echo "$out" | grep -oE '[0-9.]+k? req/s' | head -1)
    p99=$(echo "$out" | grep -oE 'p99[ =:]+[0-9.]+ ?[mµu]s' | head -1)
    cpu_us=$(python3 -c "print(round(($t1-$t0)*10000/max(1,${reqs:-0}),2))")
    echo "$name round $r: $rps $p99 server CPU ${cpu_us} us/req ($reqs requests)"
    port=$((port+2))
  done
done | tee $log
python3 -c '
import re, statistics, sys
cpu = {}
for line in sys.stdin:
    m = re.search(r"CPU ([0-9.]+) us/req", line)
    if m:
        cpu.setdefault(line.split()[0], []).append(float(m.group(1)))
for name, v in cpu.items():
    print(f"{name}: median server CPU {statistics.median(v):.2f} us/req over {len(v)} rounds")
' < $log
