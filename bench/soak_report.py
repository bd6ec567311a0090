"""Plot and summary of a soak run (bench/soak.sh): soak.png and summary.md from samples.csv.
Usage: python3 bench/soak_report.py bench/out/soak-<UTC>   (needs matplotlib: Debian's python3-matplotlib)"""
import csv, sys, collections
out = sys.argv[1]
rows = list(csv.DictReader(open(f"{out}/samples.csv")))
by_node = collections.defaultdict(list)
for r in rows:
    by_node[r["node"]].append(r)
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, axes = plt.subplots(3, 1, figsize=(10, 11), sharex=True)
for node, samples in sorted(by_node.items()):
    t = [float(s["elapsed_s"]) / 60 for s in samples]
    axes[0].plot(t, [float(s["rss_mb"] or 0) for s in samples], marker="o", label=node)
    axes[1].plot(t, [float(s["heap_mb"] or 0) for s in samples], marker="o", label=node)
    axes[2].plot(t, [float(s["threads"] or 0) for s in samples], marker="o", label=node)
for ax, label in zip(axes, ["RSS (MB)", "managed heap after last GC (MB)", "threads"]):
    ax.set_ylabel(label); ax.grid(True, alpha=0.3)
axes[0].legend(ncol=5, fontsize=8)
axes[2].set_xlabel("minutes (load with churn until the dashed line)")
# The load stopped where the gateways' connections first fell to zero for good.
totals = collections.defaultdict(float)
for r in rows:
    totals[float(r["elapsed_s"])] += float(r["connections"] or 0)
load_end = min(t for t in totals if all(totals[u] == 0 for u in totals if u >= t)) / 60
for ax in axes:
    ax.axvline(load_end, linestyle="--", color="grey")
fig.suptitle("OrleansChat soak: local cluster, connection churn")
fig.tight_layout()
fig.savefig(f"{out}/soak.png", dpi=90)

def row(samples, i):
    s = samples[min(i, len(samples) - 1)]
    return f"{float(s['rss_mb'] or 0):.0f} / {float(s['heap_mb'] or 0):.0f} / {s['threads']}"
lines = ["| process | start: RSS / heap MB / threads | after warm-up (2 min) | end of load | after everyone left | left over: connections, gateway rooms, active rooms |", "|---|---|---|---|---|---|"]
for node, samples in sorted(by_node.items()):
    warm = next((i for i, s in enumerate(samples) if float(s["elapsed_s"]) >= 120), 0)
    end_load = max((i for i, s in enumerate(samples) if float(s["connections"] or 0) > 0 or node.startswith("silo") and float(s["elapsed_s"]) / 60 < load_end), default=0)
    last = samples[-1]
    lines.append(f"| {node} | {row(samples, 0)} | {row(samples, warm)} | {row(samples, end_load)} | {row(samples, len(samples) - 1)} | {last['connections']}, {last['gateway_rooms']}, {last['rooms_active']} |")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
