"""Overhead of the Python layer: the seed network's run (examples/rc-network, 500 ms) by the CLI
(`miv run experiment.yaml`) and by examples/python/rc.py (the same network, stimulus, LFP and results file
through `import miv`), on 1 and 2 ranks, wall time of the whole command (network found in the store, load,
simulate, write). Alternates the two to spread the machine's load over both; prints the ratio per rank count.

    .venv-test/bin/python bench/python/overhead.py [--t-end 500] [--repeat 2]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NET = os.path.join(ROOT, "examples", "rc-network")


def experiment(folder, t_end):
    with open(os.path.join(NET, "experiment.yaml")) as f:
        text = f.read()
    for key in ("network", "store", "cell_types", "synapses", "templates"):
        text = text.replace(f"\n{key}: ", f"\n{key}: {NET}/")
    text = text.replace("file: stimulus.txt", f"file: {NET}/stimulus.txt").replace("\nt_end: 500\n", f"\nt_end: {t_end}\n")
    path = os.path.join(folder, "experiment.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def timed(cmd, ranks):
    env = dict(os.environ, RUST_LOG="warn", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    full = ["mpirun", "-n", str(ranks)] + cmd if ranks > 1 else cmd
    t0 = time.perf_counter()
    p = subprocess.run(full, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(full)} failed:\n{p.stdout}\n{p.stderr}")
    return dt


def main():
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--t-end", type=float, default=500.0)
    a.add_argument("--repeat", type=int, default=2)
    a.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    args = a.parse_args()
    miv_bin = os.path.join(ROOT, "target", "release", "miv")
    with tempfile.TemporaryDirectory() as tmp:
        exp = experiment(tmp, args.t_end)
        py = [sys.executable, os.path.join(ROOT, "examples", "python", "rc.py"), "--t-end", str(args.t_end),
              "--out", os.path.join(tmp, "py")]
        # The store is complete before timing.
        timed([miv_bin, "build", "--store", os.path.join(NET, ".miv-store"), os.path.join(NET, "network.yaml")], 1)
        print("ranks  cli_s   python_s  python/cli")
        for ranks in args.ranks:
            cli, pyt = [], []
            for _ in range(args.repeat):
                cli.append(timed([miv_bin, "run", "-q", exp], ranks))
                pyt.append(timed(py, ranks))
            c, p = min(cli), min(pyt)
            print(f"{ranks:5d}  {c:6.2f}  {p:8.2f}  {p / c:10.3f}", flush=True)


if __name__ == "__main__":
    main()
