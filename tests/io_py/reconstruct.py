"""An independent NeuroH5 reader (h5py + numpy, following DOMAIN A.3 and A.6): check the layout invariants of
one cell attribute namespace or one projection and print its content as JSON lines in the format of
`miv h5 dump --json` / `miv h5 edges --json`.

usage: reconstruct.py FILE cells POP NAMESPACE
       reconstruct.py FILE edges SRC DST
"""
import json
import sys

import h5py
import numpy as np

path, what, a, b = sys.argv[1:5]
f = h5py.File(path, "r")
labels = h5py.check_enum_dtype(f["/H5Types/Population labels"].dtype)
names = {v: k for k, v in labels.items()}
pops = {names[int(r["Population"])]: (int(r["Start"]), int(r["Count"])) for r in f["/H5Types/Populations"][()]}


def jsonable(x):
    return x.item() if isinstance(x, np.generic) else x


if what == "cells":
    start, count = pops[a]
    ns = f[f"/Populations/{a}/{b}"]
    cells = {}
    for attr in ns:
        g = ns[attr]
        if not isinstance(g, h5py.Group):
            continue
        idx, ptr, val = g["Cell Index"][()], g["Attribute Pointer"][()], g["Attribute Value"][()]
        assert idx.dtype == np.uint32 and ptr.dtype == np.uint64, attr
        assert len(ptr) == len(idx) + 1 or (len(idx) == 0 and len(ptr) <= 1), attr
        if len(ptr):
            assert np.all(np.diff(ptr.astype(np.int64)) >= 0) and ptr[-1] == len(val), attr
        assert np.all(idx < count), attr
        for k, i in enumerate(idx):
            gid = int(i) + start
            vals = [jsonable(v) for v in val[ptr[k]:ptr[k + 1]]]
            cells.setdefault(gid, {}).setdefault(attr, []).extend(vals)
    for gid in sorted(cells):
        print(json.dumps({"gid": gid, "attributes": cells[gid]}))
else:
    src_start, src_count = pops[a]
    dst_start, dst_count = pops[b]
    prj = f[f"/Projections/{b}/{a}"]
    e = prj["Edges"]
    dbi, dbp, dp, si = (e[n][()] for n in ["Destination Block Index", "Destination Block Pointer", "Destination Pointer", "Source Index"])
    assert dbi.dtype == np.uint32 and dbp.dtype == np.uint64 and dp.dtype == np.uint64 and si.dtype == np.uint32
    assert len(dbp) == len(dbi) + 1
    assert dbp[-1] == len(dp), "writer quirk: the final block pointer is the length of Destination Pointer"
    assert dp[-1] == len(si)
    assert np.all(np.diff(dp.astype(np.int64)) >= 0) and np.all(np.diff(dbp.astype(np.int64)) > 0)
    attrs = {}
    for ns in prj:
        if ns == "Edges":
            continue
        for n in prj[ns]:
            v = prj[ns][n][()]
            assert len(v) == len(si), (ns, n)
            attrs[f"{ns}/{n}"] = v
    rows = {}
    for blk in range(len(dbi)):
        for slot in range(int(dbp[blk]), int(dbp[blk + 1])):
            if slot >= len(dp) - 1:
                continue
            gid = dst_start + int(dbi[blk]) + slot - int(dbp[blk])
            s, t = int(dp[slot]), int(dp[slot + 1])
            assert t > s, "the writer emits only destinations with edges"
            sources = [src_start + int(x) for x in si[s:t]]
            assert sources == sorted(sources), "sources sorted within a destination"
            row = rows.setdefault(gid, {"sources": [], "attributes": {k: [] for k in attrs}})
            row["sources"] += sources
            for k, v in attrs.items():
                row["attributes"][k] += [jsonable(x) for x in v[s:t]]
    for gid in sorted(rows):
        print(json.dumps({"destination": gid, "sources": rows[gid]["sources"], "attributes": rows[gid]["attributes"]}))
