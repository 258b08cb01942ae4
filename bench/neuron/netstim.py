#!/usr/bin/env python3
"""NEURON reference for NetStim driving the ball-and-stick cell of tests/reference/neuron-arbor/README.md (c).

NetStim interval 7.3 ms, number 5, start 3.01 ms, noise 0, through a NetCon (weight 0.01 uS, delay 1 ms)
onto the cell's Exp2Syn (tau1 0.5, tau2 2, e 0) at dend(0.5); hh with exact rates (usetable_hh = 0),
backward Euler, dt 0.025, celsius 6.3, v_init -65, 60 ms. Writes NetStim's spike times (the NetCon's record)
and the cell's (threshold 10 mV at soma(0.5)).

Usage: python netstim.py OUT.json
"""
import json
import sys

from neuron import h

h.load_file("stdrun.hoc")
soma = h.Section(name="soma")
soma.L = soma.diam = 12.6157
soma.insert("hh")
dend = h.Section(name="dend")
dend.L, dend.diam, dend.nseg = 200.0, 1.0, 11
dend.connect(soma(1))
dend.insert("pas")
for s in (soma, dend):
    s.Ra, s.cm = 100.0, 1.0
for seg in dend:
    seg.pas.g, seg.pas.e = 0.001, -65.0
h.usetable_hh = 0
syn = h.Exp2Syn(dend(0.5))
syn.tau1, syn.tau2, syn.e = 0.5, 2.0, 0.0
ns = h.NetStim()
ns.interval, ns.number, ns.start, ns.noise = 7.3, 5, 3.01, 0
nc = h.NetCon(ns, syn)
nc.weight[0], nc.delay = 0.01, 1.0
stim_spikes = h.Vector()
nc.record(stim_spikes)
det = h.NetCon(soma(0.5)._ref_v, None, sec=soma)
det.threshold = 10.0
cell_spikes = h.Vector()
det.record(cell_spikes)
h.celsius = 6.3
h.dt = 0.025
h.steps_per_ms = 40
h.finitialize(-65.0)
h.continuerun(60.0)
json.dump({"simulator": "NEURON " + h.nrnversion(5), "netstim": list(stim_spikes), "cell": list(cell_spikes)},
          open(sys.argv[1], "w"), indent=1)
