#!/usr/bin/env bash
# Checks the compose deployment on a machine WITHOUT a Docker engine (this project's machines): what can be
# checked without running containers. docs/deploy.md says what this does and does not prove.
#   deploy/validate.sh            compose file, cross-file consistency, nginx config, health probe syntax,
#                                 Prometheus and Grafana files (scrape jobs, provisioning, dashboard queries)
#   deploy/validate.sh --publish  also replay both Dockerfiles' build stages (restore + publish, ~1-2 min)
# Needs python3 with PyYAML and nginx; uses `docker compose` or `docker-compose` when either is installed, and
# promtool (Debian package prometheus) when installed.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
ok() { echo "ok    $*"; }
bad() { echo "FAIL  $*"; failed=1; }

# 1. The compose file as Compose itself reads it. docker-compose 1.x predates two keys used here, the
#    top-level `name` and `restart: true` under depends_on (Compose 2.17): it reads a copy without them.
if docker compose version >/dev/null 2>&1; then
  if docker compose -f "$repo/docker-compose.yml" config -q; then ok "docker compose config"; else bad "docker compose config"; fi
elif command -v docker-compose >/dev/null; then
  grep -v -E '^name: |^ +restart: true$' "$repo/docker-compose.yml" > "$repo/.validate-compose.yml"
  if docker-compose -p orleanschat -f "$repo/.validate-compose.yml" config -q; then
    ok "docker-compose $(docker-compose version --short) config (without name and depends_on restart)"
  else
    bad "docker-compose config"
  fi
  rm -f "$repo/.validate-compose.yml"
else
  echo "skip  no docker compose / docker-compose: only the checks below"
fi

# 2. What ties the files together: one cluster, ports, service names, the health probe.
if python3 - "$repo" <<'EOF'
import re, sys, yaml
repo = sys.argv[1]
compose = yaml.safe_load(open(f"{repo}/docker-compose.yml"))
services = compose["services"]
problems = []
def need(cond, what):
    if not cond: problems.append(what)
silo_file = open(f"{repo}/deploy/Dockerfile.silo").read()
gateway_file = open(f"{repo}/deploy/Dockerfile.gateway").read()
orleans = [name for name, s in services.items() if "Orleans__ClusterId" in (s.get("environment") or {})]
need({"silo", "gateway1", "gateway2"} <= set(orleans), "silo, gateway1 and gateway2 all carry the Orleans keys")
for key in ("Orleans__ClusterId", "Orleans__ServiceId", "Orleans__Clustering__ProviderType", "Orleans__Clustering__ConnectionString"):
    values = {services[n]["environment"].get(key) for n in orleans}
    need(len(values) == 1 and None not in values, f"{key} is set and the same on {orleans}: {values}")
redis_host = services["silo"]["environment"]["Orleans__Clustering__ConnectionString"].split(":")[0]
need(redis_host in services, f"the Redis connection string names a service ({redis_host})")
silo = services["silo"]["environment"]
need("Orleans__Endpoints__AdvertisedIPAddress" not in silo, "silos leave AdvertisedIPAddress to Orleans")
for kind in ("Silo", "Gateway"):
    port = str(silo[f"Orleans__Endpoints__{kind}Port"])
    need(silo[f"Orleans__Endpoints__{kind}ListeningEndpoint"] == f"0.0.0.0:{port}", f"{kind} listens on 0.0.0.0:{port}")
    need(re.search(rf"^EXPOSE .*\b{port}\b", silo_file, re.M), f"Dockerfile.silo exposes {port}")
silo_http = re.fullmatch(r"http://\+:(\d+)", str(silo.get("ASPNETCORE_URLS", "")))
need(silo_http, "silos serve HTTP on every address of their container (ASPNETCORE_URLS=http://+:PORT)")
if silo_http:
    port = silo_http.group(1)
    need(re.search(rf"^EXPOSE .*\b{port}\b", silo_file, re.M), f"Dockerfile.silo exposes {port}")
    need(re.search(rf'"http", "{port}", "/healthz"', silo_file), f"the silo image probes /healthz on {port}")
    probe = (services["silo"].get("healthcheck") or {}).get("test") or []
    need(probe[-3:] == ["http", port, "/readyz"], f"compose probes the silos' /readyz on {port}: {probe}")
need("ports" not in services["silo"], "the silos publish nothing on the host")
for name, s in services.items():
    for published in s.get("ports") or []:
        need(name == "nginx" or str(published).startswith("127.0.0.1:"), f"{name} publishes {published} on 127.0.0.1 only")
need("Host=postgres;" in silo["ConnectionStrings__Messages"] and "postgres" in services, "the silos' store is the postgres service")
for g in ("gateway1", "gateway2"):
    env = services[g]["environment"]
    need(env.get("Cluster__Mode") == "Client", f"{g}: Cluster__Mode=Client")
    need("ConnectionStrings__Messages" not in env, f"{g}: no database")
url_port = re.search(r"^ENV ASPNETCORE_URLS=http://\+:(\d+)$", gateway_file, re.M)
need(url_port, "Dockerfile.gateway listens on every address (ASPNETCORE_URLS)")
nginx = open(f"{repo}/deploy/nginx.conf").read()
upstreams = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", nginx, re.M)
need({h for h, _ in upstreams} == {"gateway1", "gateway2"}, f"nginx upstreams are the gateway services: {upstreams}")
need(url_port and all(p == url_port.group(1) for _, p in upstreams), "nginx uses the gateways' port")
listen = re.search(r"^\s*listen\s+(\d+);", nginx, re.M)
need(listen and f"8080:{listen.group(1)}" in services["nginx"]["ports"], "nginx is published on 8080")
for name, s in services.items():
    for dep, cond in (s.get("depends_on") or {}).items():
        need(dep in services, f"{name} depends on an existing service ({dep})")
        if cond.get("condition") == "service_healthy":
            has = "healthcheck" in services[dep] or dep == "silo"  # the silo image has its HEALTHCHECK
            need(has, f"{dep} has a health check ({name} waits for it)")
need("HEALTHCHECK" in silo_file, "the silo image has a HEALTHCHECK")
for p in problems: print("FAIL ", p)
sys.exit(1 if problems else 0)
EOF
then ok "cluster keys, ports, service names and probes agree across compose, Dockerfiles and nginx.conf"; else bad "consistency"; fi

# 2b. Prometheus and Grafana: their files parse, Prometheus scrapes every gateway and the silos, Grafana gets
#     its data source and dashboards where compose mounts them, and the dashboards ask for series that exist.
#     Writes every dashboard query to $work/dashboard-rules.yml for promtool (step 2c).
if python3 - "$repo" "$work/dashboard-rules.yml" <<'EOF'
import glob, json, os, re, sys, yaml
repo, rules_out = sys.argv[1:3]

# Every orleanschat_ series the dashboards may use, as Prometheus names it (OpenTelemetry's exporter: dots to
# _, the unit as a suffix such as _seconds, _total on counters, _bucket on histograms).
# THIS LIST MUST MATCH src/: the instruments of src/Gateway/GatewayMetrics.cs,
# src/Gateway/Connections/ConnectionRegistry.cs and src/Grains/ChatDiagnostics.cs. Add a name here when an
# instrument is added there; remove or rename it here when it is removed or renamed there.
KNOWN_SERIES = {
    # gateways
    "orleanschat_connections",
    "orleanschat_connections_opened_total",
    "orleanschat_connections_closed_total",
    "orleanschat_frames_in_total",
    "orleanschat_events_out_total",
    "orleanschat_errors_total",
    "orleanschat_messages_posted_total",
    "orleanschat_messages_received_total",
    "orleanschat_messages_delivered_total",
    "orleanschat_slow_consumer_closes_total",
    "orleanschat_flow_control_holds_total",
    "orleanschat_flow_control_sender_waits_total",
    "orleanschat_subscriptions_renewals_total",
    "orleanschat_gaps_detected_total",
    "orleanschat_messages_backfilled_total",
    "orleanschat_post_duration_seconds_bucket",
    "orleanschat_join_duration_seconds_bucket",
    "orleanschat_delivery_latency_seconds_bucket",
    "orleanschat_gateway_rooms",
    "orleanschat_outbound_queued",
    "orleanschat_outbound_queue_max",
    # silos
    "orleanschat_rooms_active",
    "orleanschat_messages_stored_total",
    "orleanschat_store_batch_size_bucket",
    "orleanschat_store_commit_duration_seconds_bucket",
    "orleanschat_store_statement_rows_bucket",
    "orleanschat_store_failures_total",
    "orleanschat_notification_timeouts_total",
    "orleanschat_flow_control_hold_expiries_total",
    "orleanschat_subscriptions_expired_total",
}

problems = []
def need(cond, what):
    if not cond: problems.append(what)
def load_yaml(path):
    """The file as a mapping; {} (and a problem) when it does not parse or is no mapping."""
    try:
        doc = yaml.safe_load(open(path))
    except Exception as e:
        problems.append(f"{os.path.relpath(path, repo)} does not parse: {e}")
        return {}
    need(isinstance(doc, dict), f"{os.path.relpath(path, repo)} is a YAML mapping")
    return doc if isinstance(doc, dict) else {}

services = yaml.safe_load(open(f"{repo}/docker-compose.yml"))["services"]
def mounts(service):
    """Bind mounts in short syntax, "./host/path:/container/path[:ro]": {host path: (container path, mode)}."""
    found = {}
    for volume in services.get(service, {}).get("volumes") or []:
        parts = str(volume).split(":")
        if parts[0].startswith("./"):
            found[os.path.normpath(parts[0])] = (parts[1], parts[2] if len(parts) > 2 else "rw")
    return found
def container_port(service):
    ports = [str(p).split(":")[-1] for p in services.get(service, {}).get("ports") or []]
    return ports[0] if ports else None

# Prometheus: mounted where it reads its configuration; scrapes every gateway service and the silo replicas.
need("prometheus" in services and str(services["prometheus"].get("image", "")).startswith("prom/prometheus"),
     "compose has a prometheus service (prom/prometheus)")
config_at = mounts("prometheus").get("deploy/prometheus.yml")
need(config_at and config_at[1] == "ro", "compose mounts deploy/prometheus.yml read-only into prometheus")
need(config_at and f"--config.file={config_at[0]}" in (services.get("prometheus", {}).get("command") or []),
     "prometheus' --config.file is where deploy/prometheus.yml is mounted")
prom = load_yaml(f"{repo}/deploy/prometheus.yml")
need(str((prom.get("global") or {}).get("scrape_interval")) == "5s", "Prometheus scrapes every 5s")
jobs = {job.get("job_name"): job for job in prom.get("scrape_configs") or []}
gateway_file = open(f"{repo}/deploy/Dockerfile.gateway").read()
gateway_port = re.search(r"^ENV ASPNETCORE_URLS=http://\+:(\d+)$", gateway_file, re.M).group(1)
gateways = sorted(name for name, s in services.items() if (s.get("environment") or {}).get("Cluster__Mode") == "Client")
gateway_targets = {f"{g}:{gateway_port}" for g in gateways}
gateway_jobs = [job for job in jobs.values()
                if {t for c in job.get("static_configs") or [] for t in c.get("targets") or []} == gateway_targets]
need(gateways and gateway_jobs, f"a scrape job names every gateway service on its port: {sorted(gateway_targets)}")
silo_url = re.fullmatch(r"http://\+:(\d+)", str(services["silo"]["environment"].get("ASPNETCORE_URLS", "")))
silo_jobs = [job for job in jobs.values() for sd in job.get("dns_sd_configs") or []
             if "silo" in (sd.get("names") or []) and sd.get("type") == "A"
             and silo_url and str(sd.get("port")) == silo_url.group(1)]
need(silo_jobs, "a scrape job finds the silo replicas by DNS (type A, name silo, the silos' HTTP port)")
for job in gateway_jobs + silo_jobs:
    need(job.get("metrics_path", "/metrics") == "/metrics", f"job {job.get('job_name')} scrapes /metrics")

# Grafana: credentials, provisioning mounted read-only, a data source at a compose service, the dashboards'
# folder where the provider reads.
need("grafana" in services and str(services["grafana"].get("image", "")).startswith("grafana/grafana"),
     "compose has a grafana service (grafana/grafana)")
grafana_env = services.get("grafana", {}).get("environment") or {}
need("${GRAFANA_ADMIN_PASSWORD" in str(grafana_env.get("GF_SECURITY_ADMIN_PASSWORD", "")),
     "Grafana's admin password comes from GRAFANA_ADMIN_PASSWORD")
need(str(grafana_env.get("GF_AUTH_ANONYMOUS_ENABLED", "")).lower() == "false", "Grafana has anonymous access off")
grafana_mounts = mounts("grafana")
need(grafana_mounts.get("deploy/grafana/provisioning") == ("/etc/grafana/provisioning", "ro"),
     "compose mounts deploy/grafana/provisioning read-only as /etc/grafana/provisioning")
dashboards_at = grafana_mounts.get("deploy/grafana/dashboards")
need(dashboards_at and dashboards_at[1] == "ro", "compose mounts deploy/grafana/dashboards read-only into grafana")
provisioning = sorted(glob.glob(f"{repo}/deploy/grafana/provisioning/**/*.y*ml", recursive=True))
need(provisioning, "Grafana provisioning files exist")
uids, providers = set(), 0
for path in provisioning:
    doc = load_yaml(path)
    for source in doc.get("datasources") or []:
        uids.add(source.get("uid"))
        url = re.fullmatch(r"http://([\w-]+):(\d+)", str(source.get("url", "")))
        need(url and url.group(1) in services and url.group(2) == container_port(url.group(1)),
             f"data source {source.get('uid')} points at a compose service's port: {source.get('url')}")
    for provider in doc.get("providers") or []:
        providers += 1
        need(dashboards_at and (provider.get("options") or {}).get("path") == dashboards_at[0],
             f"dashboard provider {provider.get('name')} reads where deploy/grafana/dashboards is mounted")
need("prometheus" in uids, "a data source with uid prometheus is provisioned")
need(providers, "a dashboard provider is provisioned")

# Dashboards: parse; data sources provisioned; every orleanschat_ series known. Queries go to promtool.
rules = []
dashboards = sorted(glob.glob(f"{repo}/deploy/grafana/dashboards/*.json"))
need(dashboards, "deploy/grafana/dashboards has dashboards")
for path in dashboards:
    name = os.path.relpath(path, repo)
    try:
        dashboard = json.load(open(path))
    except Exception as e:
        problems.append(f"{name} does not parse: {e}")
        continue
    need(dashboard.get("uid") and dashboard.get("title"), f"{name} has a uid and a title")
    panels = dashboard.get("panels") or []
    panels = panels + [inner for panel in panels for inner in panel.get("panels") or []]   # collapsed rows
    ids = [panel.get("id") for panel in panels]
    need(len(ids) == len(set(ids)), f"{name}: panel ids are unique")
    for panel in panels:
        for item in [panel] + (panel.get("targets") or []):
            uid = (item.get("datasource") or {}).get("uid")
            need(uid is None or uid in uids or uid.startswith("$"), f"{name}: '{panel.get('title')}' uses data source {uid}")
        for target in panel.get("targets") or []:
            expr = target.get("expr") or ""
            for series in sorted(set(re.findall(r"\borleanschat_\w*", expr)) - KNOWN_SERIES):
                problems.append(f"{name}: '{panel.get('title')}' asks for {series}, not in KNOWN_SERIES (src/)")
            if expr:
                rules.append({"record": f"dashboard_query_{len(rules) + 1}",
                              "expr": re.sub(r"\$__(rate_interval|interval|range)\b", "1m", expr)})
with open(rules_out, "w") as out:
    yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, out)
print(f"      {len(rules)} queries in {len(dashboards)} dashboard(s); scrape jobs: {', '.join(sorted(jobs))}")
for p in dict.fromkeys(problems): print("FAIL ", p)
sys.exit(1 if problems else 0)
EOF
then ok "Prometheus scrapes gateways and silos; Grafana provisioning and dashboards parse and use known series"; else bad "Prometheus/Grafana"; fi

# 2c. With promtool: Prometheus' own reading of its configuration, and every dashboard query parsed as PromQL
#     (Grafana's $__rate_interval and friends replaced by 1m).
if command -v promtool >/dev/null; then
  version="$(promtool --version 2>&1 | awk 'NR == 1 {print $3}')"
  if promtool check config --syntax-only "$repo/deploy/prometheus.yml" >"$work/promtool.out" 2>&1; then
    ok "promtool $version check config deploy/prometheus.yml"
  else
    cat "$work/promtool.out"; bad "promtool check config"
  fi
  if [ -s "$work/dashboard-rules.yml" ] && promtool check rules "$work/dashboard-rules.yml" >"$work/promtool.out" 2>&1; then
    ok "promtool $version: every dashboard query parses as PromQL"
  else
    cat "$work/promtool.out"; bad "dashboard queries as PromQL"
  fi
else
  echo "skip  no promtool: neither deploy/prometheus.yml nor the dashboard queries read by Prometheus' own parser"
fi

# 3. nginx.conf, with only what a test here needs changed: the upstream names resolve in compose only,
#    listen and pid move to 127.0.0.1 and a temporary directory. nginx -t binds nothing.
sed -e 's/server gateway[12]:8080/server 127.0.0.1:8080/' -e 's/listen 8080;/listen 127.0.0.1:18080;/' \
  -e "s#pid /run/nginx.pid;#pid $work/nginx.pid;#" "$repo/deploy/nginx.conf" > "$work/nginx.conf"
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
if "$nginx_bin" -t -q -p "$work/" -e /dev/stderr -c "$work/nginx.conf"; then ok "nginx -t ($("$nginx_bin" -v 2>&1 | sed 's/.*: //'))"; else bad "nginx -t"; fi

# 4. The health probe parses, and fails on a closed port.
if bash -n "$repo/deploy/healthcheck.sh" && ! bash "$repo/deploy/healthcheck.sh" tcp 1 2>/dev/null; then ok "healthcheck.sh"; else bad "healthcheck.sh"; fi

# 5. Optionally, each Dockerfile's build stage replayed here: its COPY lines into an empty /src stand-in
#    (bin/obj left out as .dockerignore does), then its RUN lines, /app mapped to an output directory.
if [ "${1:-}" = --publish ]; then
  for image in silo gateway; do
    if python3 - "$repo" "deploy/Dockerfile.$image" "$work/$image" <<'EOF'
import os, shlex, shutil, subprocess, sys
repo, dockerfile, work = sys.argv[1:4]
src, app = os.path.join(work, "src"), os.path.join(work, "app")
os.makedirs(src)
text = open(os.path.join(repo, dockerfile)).read().replace("\\\n", "")
for line in text.splitlines():
    word, _, rest = line.strip().partition(" ")
    if word == "FROM" and os.listdir(src):
        break                                    # the runtime stage: not replayed
    if word == "COPY":
        *sources, dest = shlex.split(rest)
        target = os.path.join(src, dest)          # every file COPY here names a directory (ends in /)
        for source in sources:
            full = os.path.join(repo, source)
            if os.path.isdir(full):
                shutil.copytree(full, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("bin", "obj"))
            else:
                os.makedirs(target, exist_ok=True)
                shutil.copy2(full, target)
    elif word == "RUN":
        run = subprocess.run(rest.replace(" /app", " " + app), shell=True, cwd=src,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if run.returncode != 0:
            print(run.stdout[-4000:])
            sys.exit(1)
EOF
    then ok "Dockerfile.$image build stage: restore + publish from the copied files alone"; else bad "Dockerfile.$image build stage"; fi
  done
fi

exit $failed
