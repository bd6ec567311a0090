#!/usr/bin/env bash
# One command, one comparison table: the same load-tool scenarios against a plain SignalR chat, SignalR with
# its Redis backplane, our gateway alone (embedded silo) and our multi-process cluster, one target at a time.
# Usage: bench/run.sh [fanout|rooms|max|idle|durable ...]   (none: the first four, in that order; bench/README.md explains)
#   BENCH_TARGETS="signalr signalr-redis embedded cluster"   a subset (always run in this order)
#   BENCH_SECONDS=N      passed to every run as --seconds N (a short check; the scenarios have their own default)
#   BENCH_WARMUP=N       seconds of unrecorded load on each target before its scenarios (default 20; 0: none)
#   BENCH_SKIP_BUILD=1   use the existing Release builds
#   BENCH_ARGS="..."     more load-tool options for every run, e.g. "--clients 1 --senders 1" (after the scenario's)
#   BENCH_LOADTOOL=CMD   run CMD instead of the built load tool (to test this script)
# Everything listens on 127.0.0.1; output, logs and result files go to bench/out/<UTC timestamp>/.
# shellcheck disable=SC2317  # (the functions called only from main, which always exits, look unreachable to it)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/bench/out/$(date -u +%Y%m%dT%H%M%SZ)"
logs="$out/logs"

all_scenarios=(fanout rooms max idle durable)
default_scenarios=(fanout rooms max idle)
all_targets=(signalr signalr-redis embedded cluster)

# Fixed benchmark ports, away from the developer cluster's (8080-8090, 11111.., 30000.., 15432, 16379).
signalr_ports=(9101 9102)
signalr_redis_port=9179
embedded_port=9111
cluster_offset=1000 # cluster: gateways 9081/9082, nginx 9080, silos 12111/12112 (31000/31001), PostgreSQL 16432, Redis 17379
# The gateway's per-connection send limit (20/s) and per-address connection limits (every load-tool client
# comes from 127.0.0.1) would measure the limits, not the server.
rate_limit_env=(Gateway__RateLimit__PerSecond=1000000 Gateway__RateLimit__Burst=1000000
  Gateway__Limits__HandshakesPerSecond=1000000 Gateway__Limits__HandshakeBurst=1000000 Gateway__Limits__ConnectionsPerAddress=1000000)

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }
contains() { local x=$1 y; shift; for y in "$@"; do [ "$x" = "$y" ] && return 0; done; return 1; }

# --- processes this script started: every one is stopped on exit, Ctrl-C or failure ----------------------

started=()         # pids of the current target's processes
cluster_up=0       # scripts/cluster.sh up ran for the current target: `down` it
cluster_env=()

# Starts "$@" in the background in directory $2 with output to $logs/$1.log; sets $pid.
spawn() {
  local name=$1 dir=$2; shift 2
  (cd "$dir" && exec "$@" >"$logs/$name.log" 2>&1 </dev/null) &
  pid=$!
  started+=("$pid")
}

stop_pid() {
  local pid=$1 deadline=$((SECONDS + 15))
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid did not stop within 15 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop_target() {
  local i
  if [ "$cluster_up" = 1 ]; then
    env "${cluster_env[@]}" "$repo/scripts/cluster.sh" down >>"$logs/cluster.log" 2>&1 \
      || say "scripts/cluster.sh down failed, see $logs/cluster.log"
    cluster_up=0
  fi
  # Last started first: the SignalR nodes before the Redis they unsubscribe from on the way out.
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do stop_pid "${started[$i]}"; done
  started=()
}

on_exit() {
  local status=$?
  trap - EXIT INT TERM
  if [ ${#started[@]} -gt 0 ] || [ "$cluster_up" = 1 ]; then
    say "stopping what this script started"
    stop_target
  fi
  exit "$status"
}
trap on_exit EXIT
trap 'say "interrupted"; exit 130' INT
trap 'exit 143' TERM

# --- readiness --------------------------------------------------------------------------------------------

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_free() {
  local port
  for port in "$@"; do
    if port_taken "$port"; then say "port $port on 127.0.0.1 is already in use by another process"; return 1; fi
  done
}

http_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ]; }

# Waits up to $1 seconds until "$@" succeeds; fails at once when process $2 is gone.
wait_for() {
  local seconds=$1 pid=$2 deadline; shift 2
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.3
  done
}

# Prints the 1-minute load average and warns about builds and test runs, which would skew the numbers.
check_quiet() {
  local load busy
  sleep 3
  load="$(cut -d' ' -f1 /proc/loadavg)"
  say "load average (1 min): $load on $(nproc) cores"
  busy="$(pgrep -af 'dotnet (build|test|run|publish)|testhost|vstest|chromium|playwright' | grep -v "^$$ " || true)"
  if [ -n "$busy" ]; then
    say "warning: other heavy processes are running, the figures will be lower than on a quiet machine:"
    echo "$busy" | cut -c1-160 | sed 's/^/bench:   /' >&2
  fi
}

# --- targets: each start_* sets urls, protocol and pids (every server process, for the load tool's CPU/RSS) --

signalr_exe="$repo/bench/baselines/SignalRChat/bin/Release/net10.0/OrleansChat.Bench.SignalRChat"
gateway_exe="$repo/src/Gateway/bin/Release/net10.0/OrleansChat.Gateway"

start_signalr_node() {
  local name=$1 port=$2; shift 2
  require_free "$port" || return 1
  spawn "$name" "$repo/bench/baselines/SignalRChat" "$signalr_exe" --urls "http://127.0.0.1:$port" "$@"
  wait_for 60 "$pid" http_ok "http://127.0.0.1:$port/healthz" \
    || { say "$name did not become ready; last lines of $logs/$name.log:"; tail -5 "$logs/$name.log" >&2; return 1; }
  pids+=("$pid")
}

start_signalr() {
  protocol=signalr
  urls="ws://127.0.0.1:${signalr_ports[0]}/chat"
  start_signalr_node signalr "${signalr_ports[0]}"
}

start_signalr_redis() {
  local dir="$out/signalr-redis"
  protocol=signalr
  urls="ws://127.0.0.1:${signalr_ports[0]}/chat,ws://127.0.0.1:${signalr_ports[1]}/chat"
  require_free "$signalr_redis_port" || return 1
  mkdir -p "$dir"
  # The backplane only relays: nothing to persist.
  spawn redis "$dir" redis-server --bind 127.0.0.1 --port "$signalr_redis_port" --dir "$dir" \
    --save "" --appendonly no --daemonize no
  wait_for 10 "$pid" redis-cli -h 127.0.0.1 -p "$signalr_redis_port" ping \
    || { say "redis-server did not start, see $logs/redis.log"; return 1; }
  pids+=("$pid")
  start_signalr_node signalr1 "${signalr_ports[0]}" --redis "127.0.0.1:$signalr_redis_port" || return 1
  start_signalr_node signalr2 "${signalr_ports[1]}" --redis "127.0.0.1:$signalr_redis_port"
}

start_embedded() {
  protocol=orleanschat
  urls="ws://127.0.0.1:$embedded_port/ws"
  require_free "$embedded_port" || return 1
  # The project folder is the content root, as with `dotnet run` (appsettings.json, wwwroot).
  spawn gateway "$repo/src/Gateway" env "${rate_limit_env[@]}" "$gateway_exe" --urls "http://127.0.0.1:$embedded_port"
  wait_for 90 "$pid" http_ok "http://127.0.0.1:$embedded_port/readyz" \
    || { say "the gateway did not become ready; last lines of $logs/gateway.log:"; tail -5 "$logs/gateway.log" >&2; return 1; }
  pids+=("$pid")
}

start_cluster() {
  local name run="$out/cluster/run"
  protocol=orleanschat
  urls="ws://127.0.0.1:$((8081 + cluster_offset))/ws,ws://127.0.0.1:$((8082 + cluster_offset))/ws"
  cluster_env=(CLUSTER_DIR="$out/cluster" CLUSTER_PORT_OFFSET="$cluster_offset" CLUSTER_SILOS=2 CLUSTER_GATEWAYS=2
    CLUSTER_SKIP_BUILD=1 "${rate_limit_env[@]}")
  cluster_up=1
  env "${cluster_env[@]}" "$repo/scripts/cluster.sh" up >"$logs/cluster.log" 2>&1 \
    || { say "scripts/cluster.sh up failed; last lines of $logs/cluster.log:"; tail -5 "$logs/cluster.log" >&2; return 1; }
  # PostgreSQL's postmaster, Redis, the silos and the gateways; not nginx (the clients go to the gateways).
  for name in postgres redis silo1 silo2 gateway1 gateway2; do
    [ -f "$run/$name.pid" ] || { say "cluster: no $name recorded in $run"; return 1; }
    pids+=("$(cat "$run/$name.pid")")
  done
}

# --- the run ----------------------------------------------------------------------------------------------

main() {
  scenarios=("$@")
  [ ${#scenarios[@]} -gt 0 ] || scenarios=("${default_scenarios[@]}")
  for scenario in "${scenarios[@]}"; do
    contains "$scenario" "${all_scenarios[@]}" || die "unknown scenario '$scenario' (${all_scenarios[*]})"
  done

  read -r -a wanted <<<"${BENCH_TARGETS:-${all_targets[*]}}"
  targets=()
  for target in "${wanted[@]}"; do
    contains "$target" "${all_targets[@]}" || die "BENCH_TARGETS: unknown target '$target' (${all_targets[*]})"
  done
  for target in "${all_targets[@]}"; do
    ! contains "$target" "${wanted[@]}" || targets+=("$target")
  done
  [ ${#targets[@]} -gt 0 ] || die "BENCH_TARGETS names no target (${all_targets[*]})"

  warmup_seconds="${BENCH_WARMUP:-20}"
  [[ "$warmup_seconds" =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be a whole number of seconds (0: none)"
  extra_args=()
  if [ -n "${BENCH_SECONDS:-}" ]; then
    [[ "$BENCH_SECONDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a whole number > 0"
    extra_args=(--seconds "$BENCH_SECONDS")
  fi
  if [ -n "${BENCH_ARGS:-}" ]; then
    read -r -a more_args <<<"$BENCH_ARGS"
    extra_args+=("${more_args[@]}")
  fi
  mkdir -p "$logs"
  say "output in $out"
  {
    echo "started $(date -u +%FT%TZ), commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
    echo "dotnet $(dotnet --version 2>/dev/null || echo '?')"
    echo "targets: ${targets[*]}; scenarios: ${scenarios[*]}${BENCH_SECONDS:+; --seconds $BENCH_SECONDS}"
  } >"$out/run.txt"

  "$repo/scripts/prereqs.sh" postgresql redis-server nginx
  # Thousands of sockets in one process (the idle scenario): as many descriptors as we may have.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  say "open files limit: $(ulimit -n)"

  if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    projects=(bench/baselines/SignalRChat src/Gateway src/Silo)
    [ -n "${BENCH_LOADTOOL:-}" ] || projects=(tools/LoadTool "${projects[@]}")
    for project in "${projects[@]}"; do
      say "building $project (Release)"
      dotnet build "$repo/$project" -c Release --nologo -v q >"$logs/build-${project##*/}.log" 2>&1 \
        || die "build of $project failed, see $logs/build-${project##*/}.log"
    done
  fi

  if [ -n "${BENCH_LOADTOOL:-}" ]; then
    read -r -a loadtool <<<"$BENCH_LOADTOOL"
  else
    loadtool=(dotnet "$repo/tools/LoadTool/bin/Release/net10.0/OrleansChat.LoadTool.dll")
    [ -f "${loadtool[1]}" ] || die "no load tool build at ${loadtool[1]}: run without BENCH_SKIP_BUILD=1"
  fi

  failures=()
  results=()
  printf 'target\tscenario\tstatus\tresult\n' >"$out/runs.tsv"

  for target in "${targets[@]}"; do
    check_quiet
    say "== $target: starting"
    pids=()
    if ! "start_${target//-/_}"; then
      say "== $target did not start: skipping its runs"
      failures+=("$target: did not start")
      printf '%s\t-\tnot started\t-\n' "$target" >>"$out/runs.tsv"
      stop_target
      continue
    fi
    pid_list="$(IFS=,; echo "${pids[*]}")"
    say "== $target ready: $urls (pids $pid_list)"

    # Every target gets the same warm-up before anything is measured: a server runs for months, and the
    # first minute of a .NET process is spent in the JIT (tiered compilation rejits hot code in the
    # background). Measured, that is a fifth of the cluster's CPU in its first minute. Not recorded.
    if [ "$warmup_seconds" -gt 0 ]; then
      say "-- $target / warm-up (${warmup_seconds} s of fanout and rooms, not recorded)"
      for scenario in fanout rooms; do
        "${loadtool[@]}" run --protocol "$protocol" --url "$urls" --scenario "$scenario" --target "$target" \
          --seconds "$((warmup_seconds / 2))" >"$logs/warmup-$target-$scenario.log" 2>&1 || true
      done
    fi

    for scenario in "${scenarios[@]}"; do
      result="$out/$target-$scenario.json"
      say "-- $target / $scenario"
      # A failed run (the tool exits 1 when something is missing) is recorded; the others still run.
      set +e
      "${loadtool[@]}" run --protocol "$protocol" --url "$urls" --scenario "$scenario" --target "$target" \
        --pids "$pid_list" --out "$result" "${extra_args[@]}" 2>&1 | tee "$logs/load-$target-$scenario.log"
      status=${PIPESTATUS[0]}
      set -e
      # A failed run's result file (when the tool wrote one) goes into the report too: it shows what went wrong.
      [ ! -s "$result" ] || results+=("$result")
      if [ "$status" -eq 0 ] && [ -s "$result" ]; then
        printf '%s\t%s\tok\t%s\n' "$target" "$scenario" "${result##*/}" >>"$out/runs.tsv"
      else
        say "-- $target / $scenario failed (exit $status), see $logs/load-$target-$scenario.log"
        failures+=("$target / $scenario: exit $status")
        printf '%s\t%s\texit %s\t%s\n' "$target" "$scenario" "$status" "$([ -s "$result" ] && echo "${result##*/}" || echo -)" >>"$out/runs.tsv"
      fi
    done

    say "== $target: stopping"
    stop_target
  done

  if [ ${#results[@]} -gt 0 ]; then
    set +e
    "${loadtool[@]}" report "${results[@]}" >"$out/report.md" 2>"$logs/report.log"
    status=$?
    set -e
    cat "$out/report.md"
    [ "$status" -eq 0 ] || { say "report failed (exit $status), see $logs/report.log"; failures+=("report: exit $status"); }
  else
    say "no run produced a result: no report"
  fi

  echo "finished $(date -u +%FT%TZ)" >>"$out/run.txt"
  say "runs:"
  column -t -s $'\t' "$out/runs.tsv" | sed 's/^/bench:   /' >&2
  say "report: $out/report.md; logs: $logs"
  if [ ${#failures[@]} -gt 0 ]; then
    say "${#failures[@]} failed:"
    printf 'bench:   %s\n' "${failures[@]}" >&2
    exit 1
  fi
  exit 0
}

# The last line, and main always exits: bash reads no further, so editing this file during a run is harmless.
main "$@"
