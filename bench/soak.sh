#!/usr/bin/env bash
# Soak: the local cluster (scripts/cluster.sh: 3 silos, 2 gateways, nginx, Redis, PostgreSQL) for SOAK_SECONDS
# (default 600) at moderate load with connection churn: two staggered loops of load-tool runs, each connecting
# SOAK_ROOMS rooms x SOAK_CLIENTS clients (SOAK_SENDERS senders per room at SOAK_RATE msg/s), posting for 20 s and
# leaving, over and over; so clients connect, join, post and leave all the time. Every SOAK_SAMPLE seconds (30) it
# samples each silo's and gateway's RSS and thread count (/proc) and managed heap and our counts (/metrics).
# After the load stops it waits for the leftovers to go (rooms linger 30 s at the gateways; idle room grains are
# collected after Orleans:GrainCollection:CollectionAge, set to 1 minute here, checked every 20 s) and checks nothing leaked:
# 0 connections and 0 subscribed rooms on the gateways, 0 active rooms on the silos.
# Writes bench/out/soak-<UTC>/samples.csv, soak.png and summary.md. Not part of CI. Usage: bench/soak.sh
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/bench/out/soak-$(date -u +%Y%m%dT%H%M%SZ)"
seconds="${SOAK_SECONDS:-600}"
sample_every="${SOAK_SAMPLE:-30}"
rooms="${SOAK_ROOMS:-20}"
clients="${SOAK_CLIENTS:-10}"
senders="${SOAK_SENDERS:-2}"
rate="${SOAK_RATE:-2}"
offset=1500 # nginx 9580, gateways 9581/9582, silo HTTP 9591-9593: beside a developer cluster and the benchmark's
mkdir -p "$out/logs"

say() { echo "soak: $*" >&2; }

export CLUSTER_DIR="$out/cluster" CLUSTER_PORT_OFFSET=$offset
# The load tool's clients all come from 127.0.0.1: lift the per-address limits; keep everything else default.
export Gateway__Limits__HandshakesPerSecond=100000 Gateway__Limits__HandshakeBurst=100000 Gateway__Limits__ConnectionsPerAddress=100000
export Orleans__GrainCollection__CollectionAge=00:01:00 Orleans__GrainCollection__CollectionQuantum=00:00:20

cleanup() {
  say "stopping the cluster"
  "$repo/scripts/cluster.sh" down >"$out/logs/down.log" 2>&1 || true
}
trap cleanup EXIT

say "building (Release) and starting the cluster in $CLUSTER_DIR"
"$repo/scripts/prereqs.sh" python3-matplotlib
dotnet build "$repo/tools/LoadTool" -c Release --nologo -v q >"$out/logs/build-loadtool.log" 2>&1
"$repo/scripts/cluster.sh" up >"$out/logs/up.log" 2>&1
loadtool="$repo/tools/LoadTool/bin/Release/net10.0/OrleansChat.LoadTool.dll"
urls="ws://127.0.0.1:$((8081 + offset))/ws,ws://127.0.0.1:$((8082 + offset))/ws"

# NAME PID HTTP for every silo and gateway.
nodes() {
  "$repo/scripts/cluster.sh" status 2>/dev/null | while read -r role pid address; do
    case "$role" in
      silo) local i=$((${address##*:} - 11111 - offset + 1)); echo "silo$i $pid http://127.0.0.1:$((8090 + offset + i))" ;;
      gateway) echo "gateway$((${address##*:} - 8080 - offset)) $pid http://$address" ;;
    esac
  done
}

# One CSV line per node: elapsed,node,rss_mb,threads,heap_mb,connections,gateway_rooms,rooms_active
sample() {
  local elapsed=$1 name pid http rss threads
  while read -r name pid http; do
    rss=$(awk '/^VmRSS:/ {print $2/1024}' "/proc/$pid/status" 2>/dev/null || echo "")
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo "")
    curl -s --max-time 5 "$http/metrics" >"$out/metrics.txt" || : >"$out/metrics.txt"
    python3 - "$elapsed" "$name" "$rss" "$threads" "$out/metrics.txt" <<'PY' >>"$out/samples.csv"
import re, sys
elapsed, name, rss, threads, path = sys.argv[1:6]
text = open(path).read()
def total(series):
    return sum(float(m.group(1)) for m in re.finditer(r'^' + series + r'(?:\{[^}]*\})? (\S+)$', text, re.M))
heap = total('dotnet_gc_last_collection_heap_size_bytes') / 1048576
print(f"{elapsed},{name},{rss},{threads},{heap:.1f},{total('orleanschat_connections'):.0f},{total('orleanschat_gateway_rooms'):.0f},{total('orleanschat_rooms_active'):.0f}")
PY
  done < <(nodes)
}

churn() {
  local lane=$1 deadline=$2 run=0
  while [ $SECONDS -lt "$deadline" ]; do
    run=$((run + 1))
    dotnet "$loadtool" run --protocol orleanschat --url "$urls" --scenario rooms --target "soak-$lane-$run" \
      --rooms "$rooms" --clients "$clients" --senders "$senders" --rate "$rate" --warmup 0 --seconds 20 --ramp 200 \
      --out "$out/logs/run-$lane-$run.json" >>"$out/logs/churn-$lane.log" 2>&1 \
      || echo "run $lane-$run: the load tool reported a failure (see churn-$lane.log)" >>"$out/failures.txt"
  done
}

echo "elapsed_s,node,rss_mb,threads,heap_mb,connections,gateway_rooms,rooms_active" >"$out/samples.csv"
start=$SECONDS
deadline=$((SECONDS + seconds))
say "load with churn for ${seconds}s: 2 lanes of ${rooms} rooms x ${clients} clients, ${senders} senders/room at ${rate} msg/s, 20 s per run"
churn a "$deadline" & lane_a=$!
sleep 12
churn b "$deadline" & lane_b=$!
while [ $SECONDS -lt "$deadline" ]; do
  sample $((SECONDS - start))
  sleep "$sample_every"
done
wait "$lane_a" "$lane_b"
say "load stopped; waiting for rooms to be left and collected"
for _ in 1 2 3 4 5; do
  sleep 30
  sample $((SECONDS - start))
done
# A heap dump of every node forces a full, blocking GC: the last sample's heap is then what is really alive, and
# the dumps' type statistics say what it is (dotnet-gcdump, a local tool of this repository).
while read -r name pid _; do
  dotnet dotnet-gcdump collect -p "$pid" -o "$out/$name.gcdump" >"$out/logs/gcdump-$name.log" 2>&1 || say "gcdump of $name failed"
  dotnet dotnet-gcdump report "$out/$name.gcdump" 2>/dev/null | head -25 >"$out/$name-heap.txt" || true
done < <(nodes)
sleep 5
sample $((SECONDS - start))

# The plot needs matplotlib: Debian's python3-matplotlib, for the system python.
python=python3
python3 -c 'import matplotlib' 2>/dev/null || python=/usr/bin/python3
"$python" "$repo/bench/soak_report.py" "$out"

say "samples, plot and summary in $out"
leftover=$(awk -F, -v last="$(tail -1 "$out/samples.csv" | cut -d, -f1)" '$1 == last { c += $6; g += $7; r += $8 } END { print c + g + r }' "$out/samples.csv")
[ -f "$out/failures.txt" ] && say "load-tool failures: $(wc -l <"$out/failures.txt") (see $out/failures.txt)"
if [ "$leftover" != 0 ]; then say "LEAK: connections, subscribed rooms or active rooms left over (see summary.md)"; exit 1; fi
say "nothing left over"
