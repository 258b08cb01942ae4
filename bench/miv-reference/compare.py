"""Compare a miv run with a MiV/NEURON run of run_rc.py: spike counts per population, spikes matched within one
time step, LFP difference; optional raster and LFP overlay figures.

    python compare.py NEURON_DIR MIV_DIR [--figures OUT_PREFIX] [--t-end 100] [--dt 0.025]

NEURON_DIR holds spikes.csv and lfp.csv (run_rc.py); MIV_DIR holds spikes.csv and results.h5 (miv run with
`spikes_csv` and `path`). Populations are read from the gid ranges of results.h5's /H5Types.
"""

import argparse
import csv

import h5py
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("neuron")
ap.add_argument("miv")
ap.add_argument("--figures")
ap.add_argument("--t-end", type=float, default=100.0)
ap.add_argument("--dt", type=float, default=0.025)
args = ap.parse_args()


def spikes(path):
    with open(path) as f:
        return [(int(r["gid"]), float(r["t_ms"])) for r in csv.DictReader(f)]


h5 = h5py.File(f"{args.miv}/results.h5", "r")
labels = {v: k for k, v in h5["H5Types/Population labels"].dtype.metadata["enum"].items()}
ranges = [(labels[int(r["Population"])], int(r["Start"]), int(r["Count"])) for r in h5["H5Types/Populations"][:]]


def pop(g):
    return next(p for p, s, c in ranges if s <= g < s + c)


n, m = spikes(f"{args.neuron}/spikes.csv"), spikes(f"{args.miv}/spikes.csv")
print("| population | MiV/NEURON spikes | miv spikes | same cell, within one dt |")
print("|---|---|---|---|")
for p, s, c in sorted(ranges, key=lambda r: r[1]):
    a = sorted(x for x in n if pop(x[0]) == p)
    b = sorted(x for x in m if pop(x[0]) == p)
    at_end = sum(1 for x in a if x[1] >= args.t_end)
    # Match each NEURON spike to the nearest unused miv spike of the same cell.
    used, close = set(), 0
    for g, t in a:
        cand = [(abs(t - tb), i) for i, (gb, tb) in enumerate(b) if gb == g and i not in used]
        if cand:
            d, i = min(cand)
            if d <= args.dt * (1 + 1e-9):
                used.add(i)
                close += 1
    extra = f" ({at_end} at t = t_end)" if at_end else ""
    print(f"| {p} | {len(a)}{extra} | {len(b)} | {close} |")

lfp = np.loadtxt(f"{args.neuron}/lfp.csv", delimiter=",", skiprows=1)[1:]  # first row: stdinit's sample
g = [k for k in h5.keys() if k.startswith("Local Field Potential")][0]
tm, vm = h5[g]["t"][:].astype(float), h5[g]["v"][:].astype(float)
k = min(len(lfp), len(vm))
a, b = lfp[:k, 1], vm[:k]
for hi in (14.0, args.t_end):
    sel = lfp[:k, 0] <= hi + 1e-9
    rel = np.sqrt(np.mean((a[sel] - b[sel]) ** 2)) / np.sqrt(np.mean(a[sel] ** 2))
    print(f"LFP 0-{hi:g} ms: relative RMS difference {rel:.4f}, correlation {np.corrcoef(a[sel], b[sel])[0, 1]:.4f}")

if args.figures:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ax[0].plot([t for _, t in n], [g for g, _ in n], "o", ms=5, mfc="none", label="MiV/NEURON")
    ax[0].plot([t for _, t in m], [g for g, _ in m], ".", ms=3, color="k", label="miv")
    ax[0].set_ylabel("gid")
    ax[0].legend(loc="upper right")
    ax[1].plot(lfp[:k, 0], a, label="MiV/NEURON")
    ax[1].plot(tm[:k], b, "--", label="miv (lfp: miv_compat)")
    ax[1].set_xlabel("t (ms)")
    ax[1].set_ylabel("LFP (MiV units)")
    ax[1].legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(f"{args.figures}.png", dpi=90)
    print(f"wrote {args.figures}.png")
