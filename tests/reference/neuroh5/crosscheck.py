"""Read a file miv wrote with neuroh5's readers and compare with what miv reads from it.

    miv h5 selftest export FILE --mode all > FILE.miv.json
    python crosscheck.py FILE.miv.json FILE [--skip NAMESPACE ...] [EDGE_NAMESPACE ...]
    mpirun -n 2 python crosscheck.py FILE.miv.json FILE [--skip NAMESPACE ...] [EDGE_NAMESPACE ...]

neuroh5 reads FILE with `dump_fixtures.dump` (its `read_*` functions on one rank, `scatter_read_*` on more);
rank 0 compares every cell attribute (values and dtypes), every stored tree array and every edge with its
attributes against miv's export, and prints one line per dataset and a summary. Edge namespaces default to
`Synapses` and `Connections`. `--skip NS` leaves out a cell attribute namespace (neuroh5's readers stop at
64-bit values, which miv can write and neuroh5 cannot). Exit status 1 on any difference. Not a CI test: it needs a neuroh5 build
(see docs/io.md, "Checked against neuroh5").
"""
import json
import os
import sys

from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dump_fixtures  # noqa: E402


def diff(ours, theirs, path, out):
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if sorted(ours) != sorted(theirs):
            out.append(f"{path}: miv has keys {sorted(ours)[:8]}, neuroh5 {sorted(theirs)[:8]}")
            return
        for k in ours:
            diff(ours[k], theirs[k], f"{path}/{k}", out)
    elif isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            out.append(f"{path}: miv {len(ours)} values, neuroh5 {len(theirs)}")
            return
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if a != b or type(a) is not type(b):
                out.append(f"{path}[{i}]: miv {a!r}, neuroh5 {b!r}")
                return
    elif ours != theirs:
        out.append(f"{path}: miv {ours!r}, neuroh5 {theirs!r}")


def main():
    comm = MPI.COMM_WORLD
    miv_json, path, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    while rest[:1] == ["--skip"]:
        dump_fixtures.SKIP_NAMESPACES.add(rest[1])
        rest = rest[2:]
    if rest:
        dump_fixtures.EDGE_NAMESPACES = rest
    theirs = dump_fixtures.dump(path, comm)
    if comm.rank != 0:
        return
    with open(miv_json) as f:
        ours = json.loads(f.readline())
    bad, lines = [], []
    diff(ours["population_ranges"], theirs["population_ranges"], "population ranges", bad)
    for pop, nss in sorted(theirs["cell_attributes"].items()):
        for ns, d in sorted(nss.items()):
            o = ours["cell_attributes"].get(pop, {}).get(ns)
            if o is None:
                bad.append(f"{pop}/{ns}: miv does not list it")
                continue
            n = len(bad)
            diff(sorted(o["dtypes"]), d["attributes"], f"{pop}/{ns} attribute names", bad)
            # neuroh5 reports a dtype only through the arrays it returns (none for an attribute without cells)
            diff({k: o["dtypes"].get(k) for k in d["dtypes"]}, d["dtypes"], f"{pop}/{ns} dtypes", bad)
            diff(o["cells"], d["cells"], f"{pop}/{ns}", bad)
            lines.append(f"{pop}/{ns}: {len(d['cells'])} cells, {len(d['attributes'])} attributes {'OK' if len(bad) == n else 'DIFFERENT'}")
    for pop, nss in sorted(ours["cell_attributes"].items()):
        for ns in sorted(nss):
            if ns not in theirs["cell_attributes"].get(pop, {}) and ns not in dump_fixtures.SKIP_NAMESPACES:
                bad.append(f"{pop}/{ns}: neuroh5 does not list it")
    for pop, t in sorted(theirs["trees"].items()):
        n = len(bad)
        diff(ours["trees"].get(pop, {}), t, f"{pop}/Trees", bad)
        lines.append(f"{pop}/Trees: {len(t)} trees {'OK' if len(bad) == n else 'DIFFERENT'}")
    for prj, d in sorted(theirs["projections"].items()):
        o = ours["projections"].get(prj)
        if o is None:
            bad.append(f"{prj}: miv does not list it")
            continue
        n = len(bad)
        want = {k: v for k, v in o["dtypes"].items() if k == "sources" or k.split("/")[0] in dump_fixtures.EDGE_NAMESPACES}
        diff(want, d["dtypes"], f"{prj} dtypes", bad)
        mine = {g: {k: v for k, v in e.items() if k in d["dtypes"]} for g, e in o["edges"].items()}
        diff(mine, d["edges"], prj, bad)
        n_edges = sum(len(e["sources"]) for e in d["edges"].values())
        lines.append(f"{prj}: {len(d['edges'])} destinations, {n_edges} edges, {sorted(d['dtypes'])} {'OK' if len(bad) == n else 'DIFFERENT'}")
    for prj in sorted(ours["projections"]):
        if prj not in theirs["projections"]:
            bad.append(f"{prj}: neuroh5 does not list it")
    print(f"{os.path.basename(path)} read by neuroh5 on {comm.size} rank(s):")
    for l in lines:
        print("  " + l)
    for b in bad[:30]:
        print("  MISMATCH " + b)
    print(f"  {'agree' if not bad else f'{len(bad)} differences'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
