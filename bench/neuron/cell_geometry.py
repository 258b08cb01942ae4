#!/usr/bin/env python3
"""NEURON reference for a 3-D morphology as `miv cell` discretises it.

Reads the geometry.json that `miv cell MODEL --out DIR --geometry` writes (sections with their 3-D points,
parent, parent_x, nseg, Ra, cm), builds the same sections in NEURON 9.0.2 (pt3dadd, connect, define_shape)
and writes NEURON's own view of it:
  * per section: the nseg NEURON's d_lambda rule gives (d_lambda 0.1 at 100 Hz, its pt3d lambda_f), and the
    first 3-D point after define_shape;
  * per node (same order as geometry.json): area(x) and ri(x);
  * a simulation with the biophysics of examples/cells/pvbc_swc.yaml (pas g 1e-4 e -65 everywhere, hh at
    its defaults with exact rates on the soma sections, IClamp 2 nA 10..50 ms at soma[0](0.5),
    Crank-Nicolson, dt 0.025, 60 ms, celsius 6.3, v_init -65): v every 0.1 ms at soma[0](0.5), A(1) and
    B(1), and the NetCon spike times (threshold 0 at soma[0](0.5)).

Usage: python cell_geometry.py GEOMETRY.json OUT.json A B     (A, B: section names)
"""
import json
import math
import sys

from neuron import h

geo = json.load(open(sys.argv[1]))
h.load_file("stdrun.hoc")
secs = []
for s in geo["sections"]:
    sec = h.Section(name=s["name"])
    for p in s["points"]:
        h.pt3dadd(p[0], p[1], p[2], p[3], sec=sec)
    sec.Ra, sec.cm = s["Ra"], s["cm"]
    secs.append(sec)
for s, sec in zip(geo["sections"], secs):
    if s["parent"] is not None:
        sec.connect(secs[s["parent"]](s["parent_x"]), 0)


def lambda_f(sec, f):
    if sec.n3d() < 2:
        return 1e5 * math.sqrt(sec.diam / (4 * math.pi * f * sec.Ra * sec.cm))
    x1, d1, lam = sec.arc3d(0), sec.diam3d(0), 0.0
    for i in range(1, sec.n3d()):
        x2, d2 = sec.arc3d(i), sec.diam3d(i)
        lam += (x2 - x1) / math.sqrt(d1 + d2)
        x1, d1 = x2, d2
    lam *= math.sqrt(2) * 1e-5 * math.sqrt(4 * math.pi * f * sec.Ra * sec.cm)
    return sec.L / lam


d_lambda_nseg = [int((sec.L / (0.1 * lambda_f(sec, 100.0)) + 0.9) / 2) * 2 + 1 for sec in secs]
for s, sec in zip(geo["sections"], secs):
    sec.nseg = s["nseg"]
h.define_shape()
first_points = [[sec.x3d(0), sec.y3d(0), sec.z3d(0)] for sec in secs]
nodes = []
for n in geo["nodes"]:
    sec = secs[n["section"]]
    x = n["x"]
    nodes.append({"area": sec(x).area() if 0 < x < 1 else 0.0, "ri": h.ri(x, sec=sec) if x > 0 else 0.0})

for sec in secs:
    sec.insert("pas")
    for seg in sec:
        seg.pas.g, seg.pas.e = 1e-4, -65.0
soma = secs[0]
for s, sec in zip(geo["sections"], secs):
    if s["type"] == 1:
        sec.insert("hh")
h.usetable_hh = 0
h.celsius = 6.3
stim = h.IClamp(soma(0.5))
stim.delay, stim.dur, stim.amp = 10.0, 40.0, 2.0
nc = h.NetCon(soma(0.5)._ref_v, None, sec=soma)
nc.threshold = 0.0
spikes = h.Vector()
nc.record(spikes)
names = {s["name"]: sec for s, sec in zip(geo["sections"], secs)}
probes = {"vsoma": soma(0.5), "va": names[sys.argv[3]](1.0), "vb": names[sys.argv[4]](1.0)}
recs = {k: h.Vector().record(seg._ref_v) for k, seg in probes.items()}
h.CVode().active(0)
h.secondorder = 2
h.dt = 0.025
h.steps_per_ms = 40
h.finitialize(-65.0)
h.continuerun(60.0)
traces = {k: list(v)[::4] for k, v in recs.items()}
json.dump({"simulator": "NEURON " + h.nrnversion(5), "probes": {"va": sys.argv[3], "vb": sys.argv[4]}, "d_lambda_nseg": d_lambda_nseg, "first_points": first_points,
           "nodes": nodes, "traces": traces, "spikes": list(spikes)}, open(sys.argv[2], "w"), indent=0)
