#!/usr/bin/env bash
# Checks every file under deploy/ with the program that reads it:
#   nginx -t, haproxy -c, apache2 -t, lighttpd -tt    front-end configs (in throwaway wrappers)
#   caddy validate                                    the Caddyfile
#   ringgate --check-config                           ringgate's own TOML files (build it first)
#   systemd-analyze verify                            the systemd units
#   promtool check config / check rules / test rules  Prometheus config, rules, rule tests
#   python3 (json, yaml, tomllib) + promtool          Grafana dashboard JSON and PromQL syntax,
#                                                     Kubernetes manifests' internal consistency
# Each front-end file is also driven with real traffic, as shipped, by
# `cargo test --test deploy_frontends`. Metric names used by the dashboard and the rules are checked against src/metrics/names.rs by
# `cargo test --test deploy_configs`, which CI runs too.
#
# A missing program is a failure when CI=true and a skip otherwise. Exits non-zero if any check
# failed. Usage: bash deploy/check-configs.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deploy=$root/deploy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
skipped=0

have() { command -v "$1" >/dev/null 2>&1; }

# check NAME TOOL COMMAND...: runs COMMAND if TOOL is installed; its output is shown on failure.
# Output mentioning a warning counts as a failure too (several of these tools warn and exit 0).
check() {
    local name=$1 tool=$2 out
    shift 2
    if ! have "$tool"; then
        if [[ ${CI:-} == true ]]; then
            echo "FAIL $name: $tool is not installed"
            failed=$((failed + 1))
        else
            echo "skip $name: $tool is not installed"
            skipped=$((skipped + 1))
        fi
        return 0
    fi
    if out=$("$@" 2>&1) && ! grep -qiE '\[warn|warning' <<<"$out"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        sed 's/^/     /' <<<"$out"
        failed=$((failed + 1))
    fi
}

# A Python 3 that has PyYAML (Debian: python3-yaml) and tomllib (3.11+).
python=
for p in python3 /usr/bin/python3; do
    if have "$p" && "$p" -c 'import yaml, tomllib' 2>/dev/null; then
        python=$p
        break
    fi
done

# --- nginx: the snippet goes in http {}, so wrap it in a minimal main config -----------------
nginx_t() { # nginx_t NAME SNIPPET
    local dir=$tmp/nginx-$1
    mkdir -p "$dir"
    cp /etc/nginx/fastcgi_params /etc/nginx/scgi_params "$dir/"
    cat >"$dir/nginx.conf" <<EOF
pid $dir/nginx.pid;
error_log $dir/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $dir/body;
    fastcgi_temp_path $dir/fastcgi;
    scgi_temp_path $dir/scgi;
    proxy_temp_path $dir/proxy;
    uwsgi_temp_path $dir/uwsgi;
    include $2;
}
EOF
    nginx -t -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log"
}
check "nginx/ringgate.conf (nginx -t)" nginx nginx_t main "$deploy/nginx/ringgate.conf"
check "nginx/ringgate-pool.conf (nginx -t)" nginx nginx_t pool "$deploy/nginx/ringgate-pool.conf"
check "nginx/ringgate-git.conf (nginx -t)" nginx nginx_t git "$deploy/nginx/ringgate-git.conf"
check "nginx/ringgate-cgi-bin.conf (nginx -t)" nginx nginx_t cgi-bin "$deploy/nginx/ringgate-cgi-bin.conf"

# --- HAProxy: a complete config; -dW turns warnings into errors --------------------------------
check "haproxy/ringgate.cfg (haproxy -c)" haproxy haproxy -dW -c -f "$deploy/haproxy/ringgate.cfg"
check "haproxy/ringgate-pool.cfg (haproxy -c)" haproxy haproxy -dW -c -f "$deploy/haproxy/ringgate-pool.cfg"

# --- Apache: a minimal server config that loads the modules the site needs ----------------------
apache_t() {
    local dir=$tmp/apache mods=/usr/lib/apache2/modules
    mkdir -p "$dir"
    cat >"$dir/httpd.conf" <<EOF
ServerRoot $dir
DefaultRuntimeDir $dir
PidFile $dir/httpd.pid
ErrorLog $dir/error.log
ServerName localhost
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so

LoadModule proxy_module $mods/mod_proxy.so
LoadModule proxy_fcgi_module $mods/mod_proxy_fcgi.so
LoadModule proxy_scgi_module $mods/mod_proxy_scgi.so
Include $deploy/apache/ringgate.conf
EOF
    apache2 -t -f "$dir/httpd.conf"
}
check "apache/ringgate.conf (apache2 -t)" apache2 apache_t

# --- lighttpd: -tt also loads the modules -------------------------------------------------------
lighttpd_t() {
    local dir=$tmp/lighttpd
    mkdir -p "$dir/www"
    cat >"$dir/lighttpd.conf" <<EOF
server.document-root = "$dir/www"
server.bind = "127.0.0.1"
server.port = 8080
server.modules = ()
include "$deploy/lighttpd/ringgate.conf"
EOF
    lighttpd -tt -f "$dir/lighttpd.conf"
}
check "lighttpd/ringgate.conf (lighttpd -tt)" lighttpd lighttpd_t

# --- Caddy ------------------------------------------------------------------------------------
caddy_validate() {
    HOME=$tmp XDG_DATA_HOME=$tmp XDG_CONFIG_HOME=$tmp \
        caddy validate --adapter caddyfile --config "$deploy/caddy/Caddyfile"
}
check "caddy/Caddyfile (caddy validate)" caddy caddy_validate

# --- ringgate's own configs, checked by ringgate (RINGGATE=path, default: the debug build) ------
ringgate=${RINGGATE:-$root/target/debug/ringgate}
if [[ ! -x $ringgate ]]; then
    ringgate=ringgate-is-not-built # check() then skips, or fails under CI=true
fi
for conf in ringgate.example.toml ringgate-pool-member.toml systemd/ringgate.toml; do
    check "$conf (ringgate --check-config)" "$ringgate" "$ringgate" --config "$deploy/$conf" --check-config
done

# --- systemd: verify the units (ExecStart pointed at /bin/true: ringgate is not installed) ------
systemd_verify() {
    local dir=$tmp/systemd out
    mkdir -p "$dir"
    for f in "$deploy"/systemd/*; do
        sed 's#^ExecStart=/usr/bin/ringgate #ExecStart=/bin/true #' "$f" >"$dir/$(basename "$f")"
    done
    # verify warns (and exits 0) on unknown keys and bad values: any output is a failure.
    out=$(cd "$dir" && systemd-analyze verify --man=no ./*.service ./*.socket 2>&1) || {
        echo "$out"
        return 1
    }
    [[ -z $out ]] || {
        echo "$out"
        return 1
    }
    grep -qx 'FileDescriptorName=fastcgi' "$dir/ringgate-fastcgi.socket"
    grep -qx 'FileDescriptorName=scgi' "$dir/ringgate-scgi.socket"
}
check "systemd units (systemd-analyze verify)" systemd-analyze systemd_verify

# --- Prometheus -----------------------------------------------------------------------------------
check "prometheus/prometheus.yml (promtool check config)" promtool \
    promtool check config "$deploy/prometheus/prometheus.yml"
check "prometheus/ringgate-rules.yml (promtool check rules)" promtool \
    promtool check rules "$deploy/prometheus/ringgate-rules.yml"
check "prometheus/ringgate-rules.test.yml (promtool test rules)" promtool \
    bash -c "cd '$deploy/prometheus' && promtool test rules ringgate-rules.test.yml"

# --- Grafana: valid JSON, and every query valid PromQL ---------------------------------------------
dashboard=$deploy/grafana/ringgate-dashboard.json
dashboard_promql() {
    # Each panel query becomes a recording rule (Grafana's variables replaced by values) so that
    # promtool parses it.
    "$python" - "$dashboard" "$tmp/dashboard-rules.yml" <<'EOF'
import json, sys, yaml
dash = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
walk(dash["panels"])
assert exprs, "no queries in the dashboard"
rules = []
for i, (title, e) in enumerate(exprs):
    e = e.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$instance", ".*")
    assert "$" not in e, f"{title}: unknown variable in {e}"
    rules.append({"record": f"dashboard:query_{i}", "expr": e})
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"{len(rules)} queries")
EOF
    promtool check rules "$tmp/dashboard-rules.yml"
}
check "grafana/ringgate-dashboard.json (json.tool)" "$python" \
    "$python" -m json.tool "$dashboard" /dev/null
if [[ -n $python ]]; then
    check "grafana/ringgate-dashboard.json queries (promtool check rules)" promtool dashboard_promql
else
    check "grafana/ringgate-dashboard.json queries" python3-with-yaml false
fi

# --- Kubernetes: no cluster here, so check what can be checked offline -----------------------------
k8s_check() {
    "$python" - "$deploy/kubernetes" "$tmp" <<'EOF'
import glob, os, sys, tomllib, yaml
kdir, tmp = sys.argv[1], sys.argv[2]
docs = []
for path in sorted(glob.glob(os.path.join(kdir, "*.yaml"))):
    for d in yaml.safe_load_all(open(path)):
        if d:
            for key in ("apiVersion", "kind", "metadata"):
                assert key in d, f"{path}: a document without {key}"
            assert d["metadata"].get("name"), f"{path}: {d['kind']} without a name"
            docs.append((os.path.basename(path), d))
by_kind = lambda k: [(p, d) for p, d in docs if d["kind"] == k]
configmaps = {d["metadata"]["name"]: d for _, d in by_kind("ConfigMap")}
deployments = by_kind("Deployment")
assert deployments, "no Deployment"
def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())
for path, d in deployments:
    name = f"{path}: Deployment {d['metadata']['name']}"
    tpl = d["spec"]["template"]
    labels = tpl["metadata"]["labels"]
    assert selects(d["spec"]["selector"]["matchLabels"], labels), f"{name}: selector misses its pods"
    notes = tpl["metadata"].get("annotations", {})
    volumes = {v["name"]: v for v in tpl["spec"].get("volumes", [])}
    ports = {}
    for c in tpl["spec"]["containers"]:
        cname = f"{name} container {c['name']}"
        res = c.get("resources", {})
        assert res.get("requests") and res.get("limits"), f"{cname}: set resources requests and limits"
        cports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        ports.update(cports)
        for probe in ("readinessProbe", "livenessProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if isinstance(port, str):
                assert port in cports, f"{cname}: {probe} names unknown port {port}"
        for m in c.get("volumeMounts", []):
            assert m["name"] in volumes, f"{cname}: mounts unknown volume {m['name']}"
        if "--config" in c.get("args", []):
            config = c["args"][c["args"].index("--config") + 1]
            mount = next(m for m in c["volumeMounts"] if config.startswith(m["mountPath"]))
            cm = configmaps[volumes[mount["name"]]["configMap"]["name"]]
            key = mount.get("subPath") or os.path.relpath(config, mount["mountPath"])
            conf = tomllib.loads(cm["data"][key])
            for section in ("listeners",):
                assert section in conf, f"{cname}: config has no [{section}]"
            port = conf["metrics"].rsplit(":", 1)[1]
            assert notes.get("prometheus.io/port") == port, f"{name}: scrape port is not {port}"
            assert cports.get("metrics") == int(port), f"{cname}: metrics port is not {port}"
            for proto, addrs in conf["listeners"].items():
                for a in addrs:
                    if not a.startswith("unix:"):
                        p = int(a.rsplit(":", 1)[1])
                        assert p in cports.values(), f"{cname}: listener {a} has no containerPort"
                    else:
                        sock_dir = os.path.dirname(a[len("unix:"):])
                        assert any(m["mountPath"] == sock_dir for m in c["volumeMounts"]), \
                            f"{cname}: socket directory {sock_dir} is not a shared volume"
        if c["name"] == "nginx":
            # The front end's config is checked by nginx -t below.
            mount = next(m for m in c["volumeMounts"] if m["mountPath"].startswith("/etc/nginx"))
            cm = configmaps[volumes[mount["name"]]["configMap"]["name"]]
            out = os.path.join(tmp, f"k8s-{d['metadata']['name']}-nginx.conf")
            open(out, "w").write(cm["data"][mount["subPath"]])
            print(out)
    assert notes.get("prometheus.io/scrape") == "true", f"{name}: not annotated for scraping"
    assert labels.get("app.kubernetes.io/part-of") == "ringgate", f"{name}: scrape job will skip it"
    d["_ports"] = ports
for kind in ("Service", "PodDisruptionBudget"):
    for path, s in by_kind(kind):
        sel = s["spec"]["selector"]
        sel = sel.get("matchLabels", sel)
        targets = [d for _, d in deployments if selects(sel, d["spec"]["template"]["metadata"]["labels"])]
        assert targets, f"{path}: {kind} {s['metadata']['name']} selects no Deployment's pods"
        if kind == "Service":
            for p in s["spec"]["ports"]:
                tp = p.get("targetPort", p["port"])
                ok = tp in targets[0]["_ports"] if isinstance(tp, str) else tp in targets[0]["_ports"].values()
                assert ok, f"{path}: Service port {p['name']} targets unknown port {tp}"
assert by_kind("PodDisruptionBudget"), "no PodDisruptionBudget"
scrape = yaml.safe_load(open(os.path.join(kdir, "prometheus-scrape.yml")))
assert scrape["scrape_configs"][0]["kubernetes_sd_configs"], "prometheus-scrape.yml: no pod discovery"
EOF
}
k8s_nginx() {
    local conf
    for conf in "$tmp"/k8s-*-nginx.conf; do
        nginx_t "k8s-$(basename "$conf" .conf)" "$conf" || return 1
    done
}
if [[ -n $python ]]; then
    check "kubernetes/*.yaml (structure, embedded ringgate.toml)" "$python" k8s_check
    check "kubernetes/sidecar.yaml nginx config (nginx -t)" nginx k8s_nginx
else
    check "kubernetes/*.yaml" python3-with-yaml false
fi

# --- The container image's config and the manifests' API schemas -----------------------------------
# (tests/deploy_kubernetes.rs checks the manifests further; .ci/test-image.sh runs the image.)
check "container/ringgate.toml (ringgate --check-config)" "$ringgate" \
    "$ringgate" --config "$deploy/container/ringgate.toml" --check-config
check "kubernetes/*.yaml (kubernetes-validate --strict, Kubernetes 1.30)" kubernetes-validate \
    kubernetes-validate --strict --quiet --kubernetes-version 1.30 "$deploy"/kubernetes/*.yaml

echo "deploy/check-configs.sh: $passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
