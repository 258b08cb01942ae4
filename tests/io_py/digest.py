"""Print a canonical JSON description of a NeuroH5 file as h5py sees it: every group, dataset and committed
datatype by path, with dtype, shape, a hash of the data, HDF5 attributes, and which paths are hard links to
one object. Two files with the same digest hold the same contents."""
import hashlib, json, sys

import h5py
import numpy as np


def describe(f):
    out = {}
    ident = {}

    def visit(name, obj):
        key = "/" + name
        token = h5py.h5o.get_info(obj.id).token if hasattr(h5py.h5o.get_info(obj.id), "token") else h5py.h5o.get_info(obj.id).addr
        ident.setdefault(bytes(token) if isinstance(token, (bytes, bytearray)) else token, []).append(key)
        attrs = {k: np.asarray(v).tolist() for k, v in sorted(obj.attrs.items())}
        if isinstance(obj, h5py.Dataset):
            data = obj[()]
            out[key] = {"kind": "dataset", "dtype": str(obj.dtype), "shape": list(obj.shape),
                        "sha256": hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest(), "attrs": attrs}
        elif isinstance(obj, h5py.Group):
            out[key] = {"kind": "group", "attrs": attrs}
        else:
            out[key] = {"kind": "datatype", "dtype": str(obj.dtype)}

    # visititems visits each object once; walk links too so every hard-link name is listed.
    def walk(group, prefix):
        for k in group:
            obj = group[k]
            visit((prefix + "/" + k).lstrip("/"), obj)
            if isinstance(obj, h5py.Group):
                walk(obj, prefix + "/" + k)

    walk(f, "")
    links = sorted(sorted(v) for v in ident.values() if len(v) > 1)
    return {"objects": out, "hard_links": links}


with h5py.File(sys.argv[1], "r") as f:
    print(json.dumps(describe(f), sort_keys=True))
