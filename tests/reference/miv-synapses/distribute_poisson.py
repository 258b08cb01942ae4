"""Run MiV-Simulator's own `distribute_poisson_synapses` on a small apical morphology and record every
random draw it takes and the synapses it places (tests/reference/miv-synapses/README.md).

Usage: /work/miv-ref/venv/bin/python distribute_poisson.py OUT.json
"""
import json
import sys

import numpy as np
from neuron import h

import miv_simulator.synapses as ms

# Two apical sections of 1000 um along y: section 0 points 0..100 (y 0..1000), section 1 points 100..200
# (y 1000..2000), point k at y = 10 k. Points 0..99 lie in SR (8), 100..200 in SLM (9). 10 segments each.
N = 201
NSEG = 10
ys = [10.0 * k for k in range(N)]
layers = np.asarray([8 if k < 100 else 9 for k in range(N)], dtype=np.int8)
sec_points = {0: np.arange(0, 101, dtype=np.uint32), 1: np.arange(100, 201, dtype=np.uint32)}

secs = {}
for s, pts in sec_points.items():
    sec = h.Section(name=f"apical{s}")
    for p in pts:
        h.pt3dadd(0.0, ys[p], 0.0, 2.0, sec=sec)
    sec.nseg = NSEG
    secs[s] = sec
secs[1].connect(secs[0](1))

neurotree_dict = {
    "layer": layers,
    "section_topology": {
        "num_sections": 2,
        "nodes": sec_points,
        "src": np.asarray([0], dtype=np.uint16),
        "dst": np.asarray([1], dtype=np.uint16),
        "loc": np.asarray([100], dtype=np.uint32),
    },
}

DENSITY = {
    "apical": {
        "excitatory": {"SR": {"mean": 3.0, "variance": 0.5}, "SLM": {"mean": 0.5, "variance": 0.1}},
        "inhibitory": {"default": {"mean": 0.2, "variance": 0.05}},
    }
}

draws = []


class Recording(np.random.RandomState):
    def normal(self, loc, scale):
        v = super().normal(loc, scale)
        draws.append(["normal", float(loc), float(scale), float(v)])
        return v

    def exponential(self, scale):
        v = super().exponential(scale)
        draws.append(["exponential", float(scale), float(v)])
        return v


real = np.random.RandomState
np.random.RandomState = Recording
try:
    syn_dict, _ = ms.distribute_poisson_synapses(
        7,
        {"excitatory": 0, "inhibitory": 1},
        {"apical": 4},
        {"SR": 8, "SLM": 9},
        DENSITY,
        neurotree_dict,
        {"apical": ([secs[0], secs[1]], None)},
        {"apical": [0, 1]},
    )
finally:
    np.random.RandomState = real

out = {
    "provenance": "MiV-Simulator d2f14d4 src/miv_simulator/synapses.py distribute_poisson_synapses, NEURON "
    + h.nrnversion(),
    "density": DENSITY,
    "nseg": NSEG,
    "lengths": [secs[0].L, secs[1].L],
    "draws": draws,
    "synapses": {k: v.tolist() for k, v in syn_dict.items() if k != "syn_cdists"},
}
with open(sys.argv[1], "w") as f:
    json.dump(out, f)
print(len(draws), "draws,", len(syn_dict["syn_ids"]), "synapses")
