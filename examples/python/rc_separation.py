"""The separation study of MiV-Simulator-Cases' 3-interface-api/rc-separation.py (Maass, Natschläger & Markram
2002, Fig. 2) from Python: the runs by miv's study (the pair generator of Poisson trains, the u / reset / v runs
on one loaded network, the run cache; docs/api.md `miv study`), the analysis in numpy and the figure in
matplotlib (when installed), as the case does them.

    python examples/python/rc_separation.py --out sep [--trials N] [--t-end MS]      # or under mpirun

Writes, on rank 0: OUT/readouts.h5, OUT/separation.csv, OUT/separation.png (miv's study), and
OUT/separation-py.csv (the state distance recomputed here from readouts.h5: mean and s.d. over trials of
|LFP_u(t) - LFP_v(t)|) and, with matplotlib, OUT/separation-py.png.
"""

import argparse
import os

import numpy as np

import miv

HERE = os.path.dirname(os.path.abspath(__file__))


def state_distances(readouts):
    """{distance: (t, mean, sd)} from readouts.h5: per trial |u - v| (the case's state distance), then the
    mean and s.d. (ddof 0) over trials per time point."""
    import h5py

    out = {}
    with h5py.File(readouts, "r") as f:
        for name in f:
            d = float(name.split(" ", 1)[1])
            trials = [f[name][k] for k in sorted(f[name], key=lambda k: int(k.split()[1]))]
            t = trials[0]["t"][:]
            dist = np.stack([np.abs(tr["u"][:] - tr["v"][:]) for tr in trials])
            out[d] = (t, dist.mean(axis=0), dist.std(axis=0))
    return dict(sorted(out.items()))


def plot(curves, path, trials):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for d, (t, mean, sd) in curves.items():
        (line,) = ax.plot(t, mean, label=f"d(u,v)={d} (mean={mean.mean():.4f})")
        ax.fill_between(t, mean - sd, mean + sd, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("t (ms)")
    ax.set_ylabel("state distance (mV)")
    ax.set_title(f"State distance, LFP readout (N={trials})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", default=os.path.join(HERE, "..", "rc-separation", "study.yaml"))
    p.add_argument("--out", default="sep")
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--t-end", type=float, default=None)
    a = p.parse_args()

    miv.study(a.study, a.out, trials=a.trials, t_end=a.t_end)
    if miv.rank != 0:
        return
    curves = state_distances(os.path.join(a.out, "readouts.h5"))
    rows = ["distance,t_ms,mean,sd"]
    for d, (t, mean, sd) in curves.items():
        rows += [f"{d!r},{float(ti)!r},{float(m)!r},{float(s)!r}" for ti, m, s in zip(t, mean, sd)]
        print(f"d(u,v)={d}: time-averaged state distance {mean.mean():.4f} mV")
    with open(os.path.join(a.out, "separation-py.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    import h5py

    with h5py.File(os.path.join(a.out, "readouts.h5"), "r") as f:
        trials = len(f[next(iter(f))])
    if plot(curves, os.path.join(a.out, "separation-py.png"), trials):
        print(f"figure: {os.path.join(a.out, 'separation-py.png')}")
    else:
        print("matplotlib is not installed: no separation-py.png (miv's separation.png is there)")


if __name__ == "__main__":
    main()
