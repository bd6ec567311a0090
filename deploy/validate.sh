#!/usr/bin/env bash
# Checks the compose deployment on a machine WITHOUT a Docker engine (this project's machines): what can be
# checked without running containers. docs/deploy.md says what this does and does not prove.
#   deploy/validate.sh            compose file, cross-file consistency, nginx config, health probe syntax
#   deploy/validate.sh --publish  also replay both Dockerfiles' build stages (restore + publish, ~1-2 min)
# Needs python3 with PyYAML and nginx; uses `docker compose` or `docker-compose` when either is installed.
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
need(re.search(rf'"tcp", "{silo["Orleans__Endpoints__GatewayPort"]}"', silo_file), "the silo probe checks its GatewayPort")
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
