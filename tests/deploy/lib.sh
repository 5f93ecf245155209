# Shared by the scripts in tests/deploy/ (sourced, after `name` is set to the script's subject):
# a scratch directory $work whose processes ($pids) are stopped on exit, `fail` (prints the
# logs in $work), `wait_addr` and an nginx runner for a deploy/nginx file inside http {}.
# Each script runs in a network namespace of its own (unshare --net), with loopback up.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
deploy=$root/deploy
work=$(mktemp -d)
chmod 0755 "$work"
pids=()
# A process that is gone or a zombie (exited, not yet reaped) no longer runs.
running() { [[ -e /proc/$1 ]] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
cleanup() {
    # SIGTERM first, so that a master process stops its workers (a SIGKILL would leave them
    # running, orphaned); SIGKILL whatever still runs 5 s later.
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
        local left=0
        for p in "${pids[@]}"; do running "$p" && left=1; done
        [[ $left == 0 ]] && break
        sleep 0.05
    done
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL $name: $*" >&2
    for log in "$work"/*.log; do
        echo "--- $log" >&2
        grep -v 'GET /hello' "$log" | tail -n 30 >&2
    done
    exit 1
}

wait_addr() { # wait_addr HOST PORT
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    fail "nothing listens on $1:$2"
}

wait_port() { # wait_port PORT (on 127.0.0.1)
    wait_addr 127.0.0.1 "$1"
}

# start_nginx SNIPPET: nginx with SNIPPET in http {} of the least main configuration it needs
# (the includes of fastcgi_params/scgi_params it makes resolve next to that main file).
start_nginx() {
    mkdir -p "$work/nginx"
    chmod 0777 "$work/nginx" # the workers run as www-data
    cp /etc/nginx/fastcgi_params /etc/nginx/scgi_params /etc/nginx/mime.types "$work/"
    cat >"$work/nginx.conf" <<CONF
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
worker_processes 1;
events {}
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    fastcgi_temp_path $work/nginx/fastcgi;
    scgi_temp_path $work/nginx/scgi;
    proxy_temp_path $work/nginx/proxy;
    uwsgi_temp_path $work/nginx/uwsgi;
    include mime.types;
    include $1;
}
CONF
    nginx -c "$work/nginx.conf" -g 'daemon off;' >"$work/nginx.log" 2>&1 &
    pids+=($!)
}

ip link set lo up
