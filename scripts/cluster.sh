#!/usr/bin/env bash
# A local OrleansChat cluster without Docker: private PostgreSQL and Redis, 3 silos, 2 gateways, nginx in front
# (CLUSTER_SILOS / CLUSTER_GATEWAYS change the counts).
# Usage: scripts/cluster.sh up|down|status|stop NAME...|restart NAME   (docs/cluster.md explains every process and setting)
# Everything lives under .cluster/ in the repository (data, pid files, logs; CLUSTER_DIR moves it) and listens
# on 127.0.0.1 only.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
state="${CLUSTER_DIR:-$repo/.cluster}"
run="$state/run"
logs="$state/logs"

# Fixed addresses (tools and tests rely on them); the two private servers' ports can be moved if taken.
# CLUSTER_PORT_OFFSET shifts every port at once, so a second cluster (a test run) can live beside a first one.
offset="${CLUSTER_PORT_OFFSET:-0}"
silo_count="${CLUSTER_SILOS:-3}"
gateway_count="${CLUSTER_GATEWAYS:-2}"
for setting in CLUSTER_PORT_OFFSET="$offset" CLUSTER_SILOS="$silo_count" CLUSTER_GATEWAYS="$gateway_count"; do
  [[ "${setting#*=}" =~ ^[0-9]+$ ]] || { echo "cluster: $setting is not a whole number" >&2; exit 2; }
done
if [ "$silo_count" -lt 1 ] || [ "$gateway_count" -lt 1 ]; then
  echo "cluster: CLUSTER_SILOS and CLUSTER_GATEWAYS must be at least 1" >&2
  exit 2
fi
nginx_port=$((8080 + offset))
chat_url="http://127.0.0.1:$nginx_port"
# Silo i (from 1) listens on 11111+i-1 with its client gateway on 30000+i-1 and HTTP (/metrics, /healthz,
# /readyz) on 8090+i; gateway j on 8081+j-1.
silo_port() { echo $((11111 + offset + $1 - 1)); }
silo_http_port() { echo $((8090 + offset + $1)); }
silo_gateway_port() { echo $((30000 + offset + $1 - 1)); }
gateway_port() { echo $((8081 + offset + $1 - 1)); }
pg_port="${CLUSTER_POSTGRES_PORT:-$((15432 + offset))}"
redis_port="${CLUSTER_REDIS_PORT:-$((16379 + offset))}"

cluster_id="orleanschat"
service_id="OrleansChat"
messages="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=orleanschat"

say() { echo "cluster: $*" >&2; }
die() {
  say "$*"
  [ "${command:-}" != up ] || say "what did start keeps running: scripts/cluster.sh status | down"
  exit 1
}

# --- pid files: run/NAME.pid and run/NAME.addr; the role is NAME without its trailing digits ------------

alive() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

record() { echo "$2" > "$run/$1.pid"; echo "$3" > "$run/$1.addr"; }

names() { [ -d "$run" ] && find "$run" -name '*.pid' -printf '%f\n' | sed 's/\.pid$//' | sort -V || true; }

# Waits until "$@" succeeds, up to $1 seconds; fails early when process $2 (a pid, or "" for none) died.
wait_for() {
  local seconds=$1 pid=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.3
  done
}

# Something (another engineer's cluster, a system service) already answers on 127.0.0.1:$1.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Fails unless every port of a component that is about to start is free: a clear line, not a bind error in a log.
require_free() {
  local what=$1 port; shift
  for port in "$@"; do
    ! port_taken "$port" || die "$what: port $port on 127.0.0.1 is already in use by another process"
  done
}

# A restarted process keeps its predecessor's log next to it (the readiness check reads only the new one).
fresh_log() { [ ! -f "$logs/$1.log" ] || mv -f "$logs/$1.log" "$logs/$1.log.prev"; }

# --- PostgreSQL: runs as the postgres user when we are root (initdb refuses root) ----------------------

pg_bin() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -n "$bin" ] && [ -x "$bin/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
  echo "$bin"
}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_postgres() {
  local bin data="$state/postgres"
  bin="$(pg_bin)"
  require_free PostgreSQL "$pg_port"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$data"
    chmod 700 "$data"
    as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C >"$logs/postgres-initdb.log" 2>&1 \
      || die "initdb failed, see $logs/postgres-initdb.log"
  fi
  touch "$logs/postgres.log"
  [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$logs/postgres.log"
  as_pg "$bin/pg_ctl" -D "$data" -l "$logs/postgres.log" -w -t 60 \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$data" start >/dev/null \
    || die "PostgreSQL did not start, see $logs/postgres.log"
  record postgres "$(head -1 "$data/postmaster.pid")" "127.0.0.1:$pg_port"
  if [ -z "$("$bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'orleanschat'")" ]; then
    "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres orleanschat
  fi
}

start_redis() {
  require_free Redis "$redis_port"
  mkdir -p "$state/redis"
  # Membership: kept across a Redis restart (append-only file, fsync every second). A Redis that came back
  # empty would have forgotten every silo: no table to find the cluster in, to heartbeat to or to vote in.
  redis-server --bind 127.0.0.1 --port "$redis_port" --daemonize yes --pidfile "$run/redis.pid" \
    --dir "$state/redis" --logfile "$logs/redis.log" --save "" --appendonly yes --appendfsync everysec \
    || die "redis-server did not start, see $logs/redis.log"
  wait_for 10 "" redis-cli -h 127.0.0.1 -p "$redis_port" ping || die "Redis does not answer, see $logs/redis.log"
  echo "127.0.0.1:$redis_port" > "$run/redis.addr"
}

# --- .NET processes: built once, run from the build output with the project folder as content root -------

build() {
  [ "${CLUSTER_SKIP_BUILD:-0}" = 1 ] && return
  say "building src/Silo and src/Gateway (Release)"
  for project in Silo Gateway; do
    dotnet build "$repo/src/$project" -c Release --nologo -v q >"$logs/build-$project.log" 2>&1 \
      || die "build of src/$project failed, see $logs/build-$project.log"
  done
}

executable() {
  local exe
  exe="$(ls "$repo/src/$1"/bin/Release/net*/"OrleansChat.$1" 2>/dev/null | sort -V | tail -1)"
  [ -n "$exe" ] || die "no build output for src/$1: run without CLUSTER_SKIP_BUILD=1"
  echo "$exe"
}

orleans_env=(
  "Orleans__Clustering__ProviderType=Redis"
  "Orleans__Clustering__ConnectionString=127.0.0.1:$redis_port"
  "Orleans__ClusterId=$cluster_id"
  "Orleans__ServiceId=$service_id"
)

# `env` adds the cluster's settings to the environment this script inherited, so a variable the caller
# exported (Gateway__RateLimit__PerSecond=...) reaches every silo and gateway.
start_silo() {
  local i=$1 exe pid
  exe="$(executable Silo)"
  require_free "silo$i" "$(silo_port "$i")" "$(silo_gateway_port "$i")" "$(silo_http_port "$i")"
  fresh_log "silo$i"
  (cd "$repo/src/Silo" && exec env "${orleans_env[@]}" \
    "Orleans__Endpoints__AdvertisedIPAddress=127.0.0.1" \
    "Orleans__Endpoints__SiloPort=$(silo_port "$i")" \
    "Orleans__Endpoints__GatewayPort=$(silo_gateway_port "$i")" \
    "Silo__HttpPort=$(silo_http_port "$i")" \
    "ConnectionStrings__Messages=$messages" \
    "$exe" >"$logs/silo$i.log" 2>&1 </dev/null) &
  pid=$!
  record "silo$i" "$pid" "127.0.0.1:$(silo_port "$i")"
}

start_gateway() {
  local i=$1 exe pid
  exe="$(executable Gateway)"
  require_free "gateway$i" "$(gateway_port "$i")"
  fresh_log "gateway$i"
  (cd "$repo/src/Gateway" && exec env "${orleans_env[@]}" "Cluster__Mode=Client" \
    "$exe" --urls "http://127.0.0.1:$(gateway_port "$i")" >"$logs/gateway$i.log" 2>&1 </dev/null) &
  pid=$!
  record "gateway$i" "$pid" "127.0.0.1:$(gateway_port "$i")"
}

wait_silo() {
  wait_for 90 "$(cat "$run/$1.pid")" silo_ready "${1#silo}" \
    || die "$1 did not start; last lines of $logs/$1.log:$(echo; tail -5 "$logs/$1.log")"
  say "$1 up at $(cat "$run/$1.addr") (HTTP http://127.0.0.1:$(silo_http_port "${1#silo}"))"
}

wait_gateway() {
  wait_for 90 "$(cat "$run/$1.pid")" gateway_ready "$(cat "$run/$1.addr")" \
    || die "$1 is not ready; last lines of $logs/$1.log:$(echo; tail -5 "$logs/$1.log")"
  say "$1 up at http://$(cat "$run/$1.addr")"
}

# Ready: an active member of the cluster (GET /readyz on its HTTP port answers 200).
silo_ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(silo_http_port "$1")/readyz" || true)" = 200 ]; }

# Ready means GET /readyz answers 200. A gateway without /readyz (404) counts as ready when /healthz is 200.
gateway_ready() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' "http://$1/readyz" || true)"
  [ "$code" = 200 ] && return 0
  [ "$code" = 404 ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$1/healthz" || true)" = 200 ]
}

# --- nginx: a private instance (own prefix, config, pid, logs and temp paths), never the system service ---

start_nginx() {
  local dir="$state/nginx"
  require_free nginx "$nginx_port"
  mkdir -p "$dir/tmp"
  local j upstreams=""
  for ((j = 1; j <= gateway_count; j++)); do
    upstreams+="        server 127.0.0.1:$(gateway_port "$j") max_fails=1 fail_timeout=5s;"$'\n'
  done
  cat >"$dir/nginx.conf" <<EOF
# Generated by scripts/cluster.sh up: edits are overwritten.
worker_processes 1;
daemon on;
pid $run/nginx.pid;
error_log $logs/nginx-error.log warn;

events {
    worker_connections 4096;
}

http {
    access_log $logs/nginx-access.log;
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;

    # WebSocket: pass the upgrade on; plain requests keep upstream keep-alive (empty Connection header).
    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      '';
    }

    upstream gateways {
${upstreams}        keepalive 16;
    }

    server {
        listen 127.0.0.1:$nginx_port;

        location / {
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            # A chat socket is quiet for long stretches; the gateway's pings keep it alive, not nginx.
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
            # A gateway that is down: try another one (only for requests not sent yet).
            proxy_next_upstream error timeout http_502 http_503;
        }
    }
}
EOF
  local nginx
  nginx="$(command -v nginx || echo /usr/sbin/nginx)"
  "$nginx" -e "$logs/nginx-error.log" -p "$dir" -c "$dir/nginx.conf" -t >"$logs/nginx-test.log" 2>&1 \
    || die "nginx configuration rejected, see $logs/nginx-test.log"
  "$nginx" -e "$logs/nginx-error.log" -p "$dir" -c "$dir/nginx.conf" || die "nginx did not start, see $logs/nginx-error.log"
  wait_for 10 "" test -s "$run/nginx.pid" || die "nginx wrote no pid file, see $logs/nginx-error.log"
  echo "127.0.0.1:$nginx_port" > "$run/nginx.addr"
}

# --- commands ----------------------------------------------------------------------------------------------

up() {
  "$repo/scripts/prereqs.sh" postgresql redis-server nginx
  mkdir -p "$run" "$logs"
  build

  alive postgres || { say "starting PostgreSQL on 127.0.0.1:$pg_port"; start_postgres; }
  alive redis || { say "starting Redis on 127.0.0.1:$redis_port"; start_redis; }

  local i name started=()
  for ((i = 1; i <= silo_count; i++)); do
    alive "silo$i" || { start_silo "$i"; started+=("silo$i"); }
  done
  for name in "${started[@]}"; do wait_silo "$name"; done

  started=()
  for ((i = 1; i <= gateway_count; i++)); do
    alive "gateway$i" || { start_gateway "$i"; started+=("gateway$i"); }
  done
  for name in "${started[@]}"; do wait_gateway "$name"; done

  alive nginx || { say "starting nginx on 127.0.0.1:$nginx_port"; start_nginx; }
  wait_for 10 "" curl -sf -o /dev/null "$chat_url/healthz" || say "warning: $chat_url/healthz does not answer yet"

  status || true
  local gateways
  gateways="http://127.0.0.1:$(gateway_port 1)"
  for ((i = 2; i <= gateway_count; i++)); do gateways+=", http://127.0.0.1:$(gateway_port "$i")"; done
  echo "OrleansChat is up: $chat_url   (gateways $gateways; logs in $logs)"
}

# Stops one recorded process: politely, then by force after $2 seconds. Only the pid we started.
stop() {
  local name=$1 grace=$2 pid
  [ -f "$run/$name.pid" ] || return 0
  pid="$(cat "$run/$name.pid")"
  if kill -0 "$pid" 2>/dev/null; then
    case "$name" in
      postgres) as_pg "$(pg_bin)/pg_ctl" -D "$state/postgres" -m fast -w stop >/dev/null || kill "$pid" ;;
      nginx) kill -QUIT "$pid" ;;
      *) kill -TERM "$pid" ;;
    esac
    local deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name (pid $pid) did not stop within ${grace}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$run/$name.pid" "$run/$name.addr"
}

down() {
  local name
  stop nginx 10
  for name in $(names | grep '^gateway'); do stop "$name" 15 & done
  wait
  for name in $(names | grep '^silo'); do stop "$name" 30 & done
  wait
  stop redis 10
  stop postgres 30
  say "down (data kept in $state/postgres; delete $state to start from scratch)"
}

# One line per running process: ROLE PID ADDRESS. Exit status 1 when a recorded process is not running.
status() {
  local name pid ok=0
  for name in postgres redis $(names | grep -E '^silo') $(names | grep -E '^gateway') nginx; do
    [ -f "$run/$name.pid" ] || continue
    pid="$(cat "$run/$name.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      echo "${name%%[0-9]*} $pid $(cat "$run/$name.addr" 2>/dev/null || echo -)"
    else
      say "$name (pid $pid) is not running"
      ok=1
    fi
  done
  return $ok
}

# Stops the named processes (as recorded: postgres, redis, silo1, gateway2, nginx, ...); `up` starts them again.
stop_named() {
  local name
  [ $# -gt 0 ] || { echo "usage: $0 stop NAME..." >&2; exit 2; }
  for name in "$@"; do
    [ -f "$run/$name.pid" ] || die "no process named $name is recorded in $run"
    stop "$name" 30
  done
}

# Stops one silo or gateway gracefully (as `stop` does) and starts it again with the same ports and settings
# (the CLUSTER_* variables must be those `up` had), then waits until it is ready as `up` does.
restart_named() {
  [ $# -eq 1 ] || { echo "usage: $0 restart NAME   (NAME: silo1, gateway2, ...)" >&2; exit 2; }
  local name=$1 role index count address
  [[ "$name" =~ ^(silo|gateway)([1-9][0-9]*)$ ]] \
    || die "restart: only silos and gateways can be restarted (silo1, gateway2, ...), not '$name'; stop it and run up"
  role=${BASH_REMATCH[1]}
  index=${BASH_REMATCH[2]}
  if [ "$role" = silo ]; then count=$silo_count; address="127.0.0.1:$(silo_port "$index")"
  else count=$gateway_count; address="127.0.0.1:$(gateway_port "$index")"; fi
  if [ -f "$run/$name.addr" ]; then
    [ "$(cat "$run/$name.addr")" = "$address" ] \
      || die "restart: $name was started at $(cat "$run/$name.addr") but these settings put it at $address (use the CLUSTER_PORT_OFFSET of up)"
  elif [ ! -f "$run/$name.pid" ] && [ "$index" -gt "$count" ]; then
    die "restart: no $name in $run (CLUSTER_$(echo "$role" | tr '[:lower:]' '[:upper:]')S=$count)"
  fi
  [ ! -f "$run/redis.addr" ] || [ "$(cat "$run/redis.addr")" = "127.0.0.1:$redis_port" ] \
    || die "restart: Redis was started at $(cat "$run/redis.addr"), these settings say 127.0.0.1:$redis_port"

  stop "$name" 30
  if [ "$role" = silo ]; then start_silo "$index"; wait_silo "$name"
  else start_gateway "$index"; wait_gateway "$name"; fi
}

command="${1:-}"
case "$command" in
  up) up ;;
  down) down ;;
  status) status ;;
  stop) shift; stop_named "$@" ;;
  restart) shift; restart_named "$@" ;;
  *) echo "usage: $0 up|down|status|stop NAME...|restart NAME" >&2; exit 2 ;;
esac
