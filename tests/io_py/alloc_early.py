"""Check that every dataset under /Populations and /Projections of a NeuroH5 file allocates its chunks early
(H5D_ALLOC_TIME_EARLY), as parallel HDF5 makes them: MPI-IO writers such as neuroh5 can then append to the
file. Prints the number of datasets checked; fails naming the first dataset that allocates late."""
import sys

import h5py

found = []


def visit(name, obj):
    name = obj.name
    if isinstance(obj, h5py.Dataset):
        t = obj.id.get_create_plist().get_alloc_time()
        assert t == h5py.h5d.ALLOC_TIME_EARLY, f"{sys.argv[1]}:{name}: allocation time {t}, expected early ({h5py.h5d.ALLOC_TIME_EARLY})"
        found.append(name)


with h5py.File(sys.argv[1], "r") as f:
    for top in ("Populations", "Projections"):
        f[top].visititems(visit)
print(len(found))
