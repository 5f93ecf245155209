#!/bin/bash
# CGI executor benchmark (README, "Running CGI scripts"): ringgate --cgi against fcgiwrap -c N
# on the same scripts (a C hello built from hello.c and a shell hello), the server and its
# scripts pinned to core 0, ringgate-load pinned to core 1, interleaved per cell.
#   cargo build --release --bin ringgate -p ringgate-load
#   bash benches/cgi/fcgiwrap.sh target/release/ringgate     (needs fcgiwrap and gcc)
# Env: SCRIPTS="hello-c hello-sh", CONCS="1 4 32", ROUNDS=1, DUR=4s.
# Prints per run: script, concurrency, server, req/s, p99, core 0's busy time per request.
set -u
rg=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
load=$(realpath "$here/../../target/release/ringgate-load")
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT
gcc -O2 -o "$root/hello-c" "$here/hello.c"
printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nHello, world!\\n"\n' >"$root/hello-sh"
chmod 0755 "$root/hello-c" "$root/hello-sh"
dur=${DUR:-4s}
port=9700
# Busy time of core 0 (where the server and every script it spawns run), in ticks: the CPU a
# request costs there, children and kernel included, whoever accounts for it.
cpu() { awk '$1 == "cpu0" { print $2+$3+$4+$7+$8 }' /proc/stat; }
for script in ${SCRIPTS:-hello-c hello-sh}; do
  for c in ${CONCS:-1 4 32}; do
   for round in $(seq 1 ${ROUNDS:-1}); do
    for server in ringgate fcgiwrap; do
      port=$((port+1))
      if [[ $server == ringgate ]]; then
        taskset -c 0 $rg --workers 1 --no-pin --io epoll --fastcgi 127.0.0.1:$port --scgi 127.0.0.1:$((port+500)) --no-metrics --cgi $root --cgi-max-running 64 >/dev/null 2>&1 &
      else
        taskset -c 0 /usr/sbin/fcgiwrap -c $c -s tcp:127.0.0.1:$port >/dev/null 2>&1 &
      fi
      pid=$!; sleep 0.7
      t0=$(cpu $pid)
      out=$(taskset -c 1 $load -t fastcgi://127.0.0.1:$port -k -c $c --document-root $root -u /$script --duration $dur 2>&1)
      t1=$(cpu $pid)
      kill $pid 2>/dev/null; wait $pid 2>/dev/null; pkill -f "fcgiwrap -c $c -s tcp:127.0.0.1:$port" 2>/dev/null
      reqs=$(echo "$out" | grep -oE '[0-9]+ requests' | head -1 | cut -d' ' -f1)
      errs=$(echo "$out" | grep -oiE '[0-9]+ (errors|failed)' | head -1)
      rps=$(echo "$out" | grep -oE '[0-9.]+k? req/s' | head -1)
      p99=$(echo "$out" | grep -oE 'p99[ =:]+[0-9.]+ ?[mµu]?s' | head -1)
      per=$(python3 -c "print(round(($t1-$t0)*10000/max(1,${reqs:-0}),1))")
      echo "$script c=$c $server: $rps $p99 cpu ${per}us/req (${reqs} requests; $errs)"
    done
   done
  done
done
