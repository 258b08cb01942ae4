"""Write the reference NeuroH5 files with the real neuroh5 library (its Python module `neuroh5.io`).

    python make_fixtures.py OUTDIR                 # writes OUTDIR/nh5_np1.h5
    mpirun -n 2 python make_fixtures.py OUTDIR     # writes OUTDIR/nh5_np2.h5

Every value comes from one seeded generator, independent of the rank count, so both files hold the same
network; each rank hands neuroh5 the cells and destinations whose population-relative index is congruent to
its rank (round-robin), as MiV's jobs do. `/H5Types` is written with h5py on rank 0 exactly as MiV's
`create_neural_h5` does (neuroh5 has no writer for it); everything else goes through neuroh5's public API:
`write_cell_attributes`, `append_cell_attributes`, `append_cell_trees` and `append_graph`.

Contents (gids: STIM 0-7, PYR 8-13, OLM 14-17):
* STIM `Generated Coordinates` (write_cell_attributes): X/Y/Z Coordinate float32, one value per cell.
* PYR `Synapse Attributes`, appended in two batches (odd relative index first): syn_ids uint32, syn_locs
  float32, syn_layers int8, syn_types uint8; 1-5 synapses per cell.
* OLM `Mixed`: u16, i16, i32 and f32 attributes (with the above, all seven of neuroh5's value types), 0-3
  values per cell (the first cell has none), extreme values included.
* OLM `Trees` (append_cell_trees): the DOMAIN A.7 4-point tree and a 7-point soma/apical/basal tree,
  point ids in `sections` are 0-based positions as MiV's files have them.
* Projections STIM -> PYR and PYR -> OLM (append_graph, two appends each) with `Synapses/syn_id` uint32
  and `Connections/distance` float32; sources given unsorted; OLM gid 15 has no edges (a block gap).
"""
import os
import sys

import numpy as np
from mpi4py import MPI

POPS = [("STIM", 0, 8), ("PYR", 100, 6), ("OLM", 102, 4)]  # name, enum index, count
VALID = [("STIM", "PYR"), ("PYR", "OLM")]
SEED = 20261126
# Small chunks keep the files small (neuroh5 defaults to 4000-element chunks); every chunked dataset still
# costs a 2 KB chunk B-tree node, which is why the network has few attributes.
CHUNKS = {"chunk_size": 16, "value_chunk_size": 16}


def ranges():
    out, start = {}, 0
    for name, idx, count in sorted(POPS, key=lambda p: p[1]):
        out[name] = (start, count, idx)
        start += count
    return out


def write_h5types(path):
    """/H5Types as MiV's utils/io.py create_neural_h5 writes it (committed enum and compound types)."""
    import h5py

    with h5py.File(path, "w") as f:
        mapping = {name: idx for name, idx, _ in POPS}
        f["/H5Types/Population labels"] = h5py.enum_dtype(mapping, basetype=np.uint16)
        labels = f["/H5Types/Population labels"].dtype
        f["/H5Types/Population range"] = np.dtype([("Start", np.uint64), ("Count", np.uint32), ("Population", labels)])
        r = ranges()
        ds = f["H5Types"].create_dataset("Populations", (len(POPS),), dtype=f["/H5Types/Population range"].dtype)
        a = np.zeros(len(POPS), dtype=ds.dtype)
        for i, name in enumerate(sorted(r, key=lambda n: r[n][2])):
            a[i]["Start"], a[i]["Count"], a[i]["Population"] = r[name]
        ds[:] = a
        f["/H5Types/Population projections"] = np.dtype([("Source", labels), ("Destination", labels)])
        vp = f["H5Types"].create_dataset("Valid population projections", (len(VALID),), dtype=f["/H5Types/Population projections"])
        b = np.zeros(len(VALID), dtype=vp.dtype)
        for i, (s, d) in enumerate(VALID):
            b[i]["Source"], b[i]["Destination"] = r[s][2], r[d][2]
        vp[:] = b


def network():
    """Everything the files hold, keyed by gid; drawn in one fixed order."""
    rng = np.random.default_rng(SEED)
    r = ranges()
    f32 = lambda a: np.asarray(a, dtype=np.float32)
    net = {"coords": {}, "syn": {}, "mixed": {}, "trees": {}, "edges": {}}
    start, count, _ = r["STIM"]
    for g in range(start, start + count):
        net["coords"][g] = {f"{n} Coordinate": f32([rng.uniform(-500, 500)]) for n in "XYZ"}
    start, count, _ = r["PYR"]
    for g in range(start, start + count):
        n = int(rng.integers(1, 6))
        net["syn"][g] = {
            "syn_ids": np.arange(n, dtype=np.uint32) + np.uint32(rng.integers(0, 1 << 31)),
            "syn_locs": f32(rng.random(n)),
            "syn_layers": rng.integers(-1, 4, n).astype(np.int8),
            "syn_types": rng.integers(0, 3, n).astype(np.uint8),
        }
    start, count, _ = r["OLM"]
    extremes = {
        "u16": (np.uint16, [0, 65535]), "i16": (np.int16, [-32768, 32767]),
        "i32": (np.int32, [-2147483648, 2147483647]), "f32": (np.float32, [-3.4028235e38, 1.0e-45]),
    }
    for k, g in enumerate(range(start, start + count)):
        n = k  # 0, 1, 2, 3 values: the first cell has none
        cell = {}
        for name, (t, ext) in extremes.items():
            if np.dtype(t).kind == "f":
                v = rng.normal(0, 1e3, n)
            else:
                info = np.iinfo(t)
                v = rng.integers(info.min, int(info.max) + 1, n, dtype=np.int64)
            v = np.asarray(v).astype(t)
            if n >= 2:
                v[:2] = ext
            cell[name] = v
        net["mixed"][g] = cell
    for k, g in enumerate(range(start, start + count)):
        net["trees"][g] = tree(rng, small=(k % 2 == 0))
    for src, dst in VALID:
        s0, sc, _ = r[src]
        d0, dc, _ = r[dst]
        for g in range(d0, d0 + dc):
            if dst == "OLM" and g == d0 + 1:
                continue
            n = int(rng.integers(1, min(sc, 4) + 1))
            srcs = (s0 + rng.choice(sc, n, replace=False)).astype(np.uint32)
            net["edges"].setdefault((src, dst), {})[g] = (srcs, {
                "Synapses": {"syn_id": rng.integers(0, 1000, n).astype(np.uint32)},
                "Connections": {"distance": f32(rng.uniform(1, 900, n))},
            })
    return net


def tree(rng, small):
    """A.7's 4-point tree, or a 7-point soma (0,1) / apical (2,3,4) / basal (5,6) tree, with random geometry."""
    if small:
        parent = [-1, 0, 1, 1]
        swc = [1, 1, 3, 3]
        sections = [3, 2, 0, 1, 2, 1, 2, 2, 1, 3]
        src, dst = [0, 0], [1, 2]
    else:
        parent = [-1, 0, 1, 2, 3, 1, 5]
        swc = [1, 1, 4, 4, 4, 3, 3]
        sections = [3, 2, 0, 1, 3, 2, 3, 4, 2, 5, 6]
        src, dst = [0, 0], [1, 2]
    n = len(parent)
    return {
        "x": rng.uniform(-100, 100, n).astype(np.float32),
        "y": rng.uniform(-100, 100, n).astype(np.float32),
        "z": rng.uniform(-100, 100, n).astype(np.float32),
        "radius": rng.uniform(0.2, 8, n).astype(np.float32),
        "layer": rng.integers(0, 4, n).astype(np.int8),
        "parent": np.asarray(parent, dtype=np.int32),
        "swc_type": np.asarray(swc, dtype=np.int8),
        "sections": np.asarray(sections, dtype=np.uint16),
        "src": np.asarray(src, dtype=np.uint16),
        "dst": np.asarray(dst, dtype=np.uint16),
    }


def main():
    comm = MPI.COMM_WORLD
    rank, size = comm.rank, comm.size
    out = os.path.join(sys.argv[1], f"nh5_np{size}.h5")
    if rank == 0:
        write_h5types(out)
    comm.barrier()
    from neuroh5.io import append_cell_attributes, append_cell_trees, append_graph, write_cell_attributes

    r = ranges()
    net = network()
    mine = lambda pop, cells: {g: v for g, v in cells.items() if (g - r[pop][0]) % size == rank}
    write_cell_attributes(out, "STIM", mine("STIM", net["coords"]), namespace="Generated Coordinates", comm=comm, **CHUNKS)
    syn = mine("PYR", net["syn"])
    for batch in (1, 0):
        part = {g: v for g, v in syn.items() if (g - r["PYR"][0]) % 2 == batch}
        append_cell_attributes(out, "PYR", part, namespace="Synapse Attributes", comm=comm, **CHUNKS)
    append_cell_attributes(out, "OLM", mine("OLM", net["mixed"]), namespace="Mixed", comm=comm, **CHUNKS)
    append_cell_trees(out, "OLM", mine("OLM", net["trees"]), comm=comm, **CHUNKS)
    for (src, dst), edges in net["edges"].items():
        own = mine(dst, edges)
        gids = sorted(edges)
        for half in (gids[: len(gids) // 2], gids[len(gids) // 2:]):
            part = {g: own[g] for g in half if g in own}
            # A rank without edges passes an empty dict: neuroh5 then leaves it out of the write
            # communicator. With {dst: {src: {}}} instead, the 2-rank write hangs.
            append_graph(out, {dst: {src: part}} if part else {}, comm=comm, chunk_size=CHUNKS["chunk_size"])
    comm.barrier()
    if rank == 0:
        print(out)


if __name__ == "__main__":
    main()
