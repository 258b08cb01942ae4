"""Check a file written by miv for the DOMAIN A.7 worked example with h5py: exact group/dataset names, dtypes
and values as the NeuroH5 layout states them (docs/io.md; the worked example A.7 of the layout notes), the hard links of the Trees namespace,
and /H5Types compared object by object with the same table written the way MiV's create_neural_h5 writes
it with h5py (argv[2] is a scratch path for that file)."""
import sys

import h5py
import numpy as np

path, ref_path = sys.argv[1], sys.argv[2]
f = h5py.File(path, "r")


def eq(name, want, dtype):
    d = f[name]
    assert isinstance(d, h5py.Dataset), name
    assert d.dtype == np.dtype(dtype), f"{name}: dtype {d.dtype}, expected {dtype}"
    assert d.ndim == 1 and d.maxshape == (None,), f"{name}: shape {d.shape} / {d.maxshape}, expected 1-D unlimited"
    assert d.fletcher32, f"{name}: chunked without the Fletcher-32 checksum miv writes"
    assert np.array_equal(d[()], np.asarray(want, dtype=dtype)), f"{name}: {d[()]} != {want}"


def same_object(a, b):
    ia, ib = h5py.h5o.get_info(f[a].id), h5py.h5o.get_info(f[b].id)
    key = "token" if hasattr(ia, "token") else "addr"
    return getattr(ia, key) == getattr(ib, key)


# A.2: /H5Types
labels = f["/H5Types/Population labels"]
assert isinstance(labels, h5py.Datatype), "Population labels is a committed datatype"
assert h5py.check_enum_dtype(labels.dtype) == {"A": 0, "B": 1}
assert labels.dtype == np.dtype("uint16")
rng = f["/H5Types/Population range"]
assert isinstance(rng, h5py.Datatype)
assert rng.dtype.names == ("Start", "Count", "Population")
assert [rng.dtype.fields[n][1] for n in rng.dtype.names] == [0, 8, 12] and rng.dtype.itemsize == 14
assert rng.dtype["Start"] == np.dtype("uint64") and rng.dtype["Count"] == np.dtype("uint32")
assert h5py.check_enum_dtype(rng.dtype["Population"]) == {"A": 0, "B": 1}
pops = f["/H5Types/Populations"][()]
assert [(int(r["Start"]), int(r["Count"]), int(r["Population"])) for r in pops] == [(0, 3, 0), (3, 2, 1)]
prj_t = f["/H5Types/Population projections"]
assert isinstance(prj_t, h5py.Datatype) and prj_t.dtype.names == ("Source", "Destination")
valid = f["/H5Types/Valid population projections"]
assert valid.id.get_type().committed(), "Valid population projections uses the committed type"
assert [(int(r["Source"]), int(r["Destination"])) for r in valid[()]] == [(0, 1)]

# A.3 / A.7: Generated Coordinates and Synapse Attributes of B
x = "/Populations/B/Generated Coordinates/X Coordinate"
eq(x + "/Cell Index", [0, 1], "uint32")
eq(x + "/Attribute Pointer", [0, 1, 2], "uint64")
eq(x + "/Attribute Value", [12.5, 80.0], "float32")
s = "/Populations/B/Synapse Attributes/syn_ids"
eq(s + "/Cell Index", [0, 1], "uint32")
eq(s + "/Attribute Pointer", [0, 3, 5], "uint64")
eq(s + "/Attribute Value", [0, 1, 2, 0, 1], "uint32")
for other in ("syn_secs", "syn_locs"):
    eq(f"/Populations/B/Synapse Attributes/{other}/Attribute Pointer", [0, 3, 5], "uint64")
    assert not same_object(s + "/Attribute Pointer", f"/Populations/B/Synapse Attributes/{other}/Attribute Pointer"), \
        "Python-writer layout: every attribute owns its pointer"

# A.4 / A.7: Trees of B
t = "/Populations/B/Trees"
eq(t + "/Cell Index", [0, 1], "uint32")
eq(t + "/X Coordinate/Attribute Pointer", [0, 4, 8], "uint64")
for name, dtype in [("X Coordinate", "float32"), ("Y Coordinate", "float32"), ("Z Coordinate", "float32"), ("Radius", "float32"),
                    ("Point Layer", "int8"), ("Parent Point", "int32"), ("SWC Type", "int8")]:
    assert f[f"{t}/{name}/Attribute Value"].dtype == np.dtype(dtype), name
    assert f[f"{t}/{name}/Attribute Value"].shape == (8,), name
    assert same_object(f"{t}/{name}/Cell Index", t + "/Cell Index"), f"{name}/Cell Index is a hard link"
    assert same_object(f"{t}/{name}/Attribute Pointer", t + "/X Coordinate/Attribute Pointer"), f"{name} shares the point pointer"
eq(t + "/Parent Point/Attribute Value", [-1, 0, 1, 1, -1, 0, 1, 1], "int32")
eq(t + "/SWC Type/Attribute Value", [1, 1, 3, 3, 1, 1, 3, 3], "int8")
sec = [3, 2, 0, 1, 2, 1, 2, 2, 1, 3]
eq(t + "/Section/Attribute Value", sec + sec, "uint16")
eq(t + "/Section/Section Pointer", [0, 10, 20], "uint64")
assert same_object(t + "/Section/Attribute Pointer", t + "/Section/Section Pointer")
eq(t + "/Source Section/Attribute Value", [0, 0, 0, 0], "uint16")
eq(t + "/Destination Section/Attribute Value", [1, 2, 1, 2], "uint16")
eq(t + "/Source Section/Section Pointer", [0, 2, 4], "uint64")
assert same_object(t + "/Source Section/Attribute Pointer", t + "/Source Section/Section Pointer")
assert same_object(t + "/Destination Section/Attribute Pointer", t + "/Source Section/Section Pointer")
assert not same_object(t + "/Section/Section Pointer", t + "/Source Section/Section Pointer")

# A.6 / A.7: Projection B <- A
e = "/Projections/B/A/Edges"
eq(e + "/Destination Block Index", [0], "uint32")
eq(e + "/Destination Block Pointer", [0, 3], "uint64")
eq(e + "/Destination Pointer", [0, 2, 3], "uint64")
eq(e + "/Source Index", [0, 2, 1], "uint32")
eq("/Projections/B/A/Synapses/syn_id", [0, 1, 1], "uint32")
eq("/Projections/B/A/Connections/distance", [55, 40, 20], "float32")

# A.5 (beside the A.7 example): Arc Distances with float64 group attributes, as h5py's attrs[...] = value.
arc = f["/Populations/B/Arc Distances"]
assert dict(arc.attrs) == {"Reference U Min": -250.0, "Reference U Max": 250.0, "Reference V Min": -125.5, "Reference V Max": 125.5}
assert all(np.asarray(v).dtype == np.float64 and np.asarray(v).shape == () for v in arc.attrs.values())
eq("/Populations/B/Arc Distances/U Distance/Attribute Value", [-10.5, 30.0], "float32")

# /H5Types next to the same table made the way MiV's create_neural_h5 does it with h5py.
with h5py.File(ref_path, "w") as r:
    r["/H5Types/Population labels"] = h5py.enum_dtype({"A": 0, "B": 1}, basetype=np.uint16)
    range_dt = np.dtype([("Start", np.uint64), ("Count", np.uint32), ("Population", r["/H5Types/Population labels"].dtype)])
    r["/H5Types/Population range"] = range_dt
    ds = r["H5Types"].create_dataset("Populations", (0,), maxshape=(2,), dtype=r["/H5Types/Population range"].dtype)
    ds.resize((2,))
    a = np.zeros(2, dtype=ds.dtype)
    a["Start"], a["Count"], a["Population"] = [0, 3], [3, 2], [0, 1]
    ds[:] = a
    r["/H5Types/Population projections"] = np.dtype([("Source", r["/H5Types/Population labels"].dtype), ("Destination", r["/H5Types/Population labels"].dtype)])
    vp = r["H5Types"].create_dataset("Valid population projections", (0,), maxshape=(1,), dtype=r["/H5Types/Population projections"])
    vp.resize((1,))
    b = np.zeros(1, dtype=vp.dtype)
    b["Source"], b["Destination"] = 0, 1
    vp[:] = b
with h5py.File(ref_path, "r") as r:
    for name in ["Population labels", "Population range", "Population projections", "Populations", "Valid population projections"]:
        ours, theirs = f["/H5Types/" + name], r["/H5Types/" + name]
        assert type(ours) is type(theirs), name
        assert ours.dtype == theirs.dtype and ours.dtype.descr == theirs.dtype.descr, f"{name}: {ours.dtype.descr} vs {theirs.dtype.descr}"
        assert ours.id.get_type().equal(theirs.id.get_type()) if hasattr(ours.id, "get_type") else True, f"{name}: HDF5 types differ"
        if isinstance(ours, h5py.Dataset):
            assert ours.shape == theirs.shape and ours.maxshape == theirs.maxshape, name
            assert (ours.chunks is None) == (theirs.chunks is None), f"{name}: chunked {ours.chunks} vs {theirs.chunks}"
            assert ours.id.get_type().committed() == theirs.id.get_type().committed(), f"{name}: committed type use differs"
            assert ours[()].tobytes() == theirs[()].tobytes(), f"{name}: rows differ"
print("ok")
