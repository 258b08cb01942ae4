#!/usr/bin/env python3
"""NEURON reference for the ring network of tests/reference/neuron-arbor/README.md (d).

The ball-and-stick (BS) cell of case (c) on every gid; gid i -> gid (i+1) mod N onto the target's Exp2Syn
(weight 0.01 uS, delay D); one kick of weight 0.01 uS to gid 0's synapse at 5.005 ms; 0..100 ms, backward
Euler, dt 0.025, celsius 6.3, v_init -65; spike source soma(0.5) v, threshold 10 mV.

Usage: python ring.py N DELAY {exact,tab} OUT.csv     (writes gid,t_ms: NEURON's own spike times)
"""
import sys

from neuron import h

n, delay, rates, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
h.load_file("stdrun.hoc")
pc = h.ParallelContext()


class BSCell:
    def __init__(self, gid):
        self.soma = h.Section(name=f"soma_{gid}")
        self.dend = h.Section(name=f"dend_{gid}")
        self.soma.L = self.soma.diam = 12.6157
        self.soma.nseg = 1
        self.dend.L, self.dend.diam, self.dend.nseg = 200.0, 1.0, 11
        self.dend.connect(self.soma(1))
        for sec in (self.soma, self.dend):
            sec.Ra, sec.cm = 100.0, 1.0
        self.soma.insert("hh")
        for seg in self.soma:
            seg.hh.gnabar, seg.hh.gkbar, seg.hh.gl, seg.hh.el = 0.12, 0.036, 0.0003, -54.3
            seg.ena, seg.ek = 50.0, -77.0
        self.dend.insert("pas")
        for seg in self.dend:
            seg.pas.g, seg.pas.e = 0.001, -65.0
        self.syn = h.Exp2Syn(self.dend(0.5))
        self.syn.tau1, self.syn.tau2, self.syn.e = 0.5, 2.0, 0.0


h.celsius = 6.3
h.usetable_hh = 1 if rates == "tab" else 0
cells = []
for gid in range(n):
    pc.set_gid2node(gid, 0)
    c = BSCell(gid)
    det = h.NetCon(c.soma(0.5)._ref_v, None, sec=c.soma)
    det.threshold = 10.0
    pc.cell(gid, det)
    cells.append(c)
ncs = []
for gid, c in enumerate(cells):
    nc = pc.gid_connect((gid - 1) % n, c.syn)
    nc.weight[0], nc.delay = 0.01, delay
    ncs.append(nc)
kick = h.NetCon(None, cells[0].syn)
kick.weight[0] = 0.01
fih = h.FInitializeHandler(lambda: kick.event(5.005))
tvec, idvec = h.Vector(), h.Vector()
pc.spike_record(-1, tvec, idvec)
h.CVode().active(0)
h.secondorder = 0
h.dt = 0.025
h.steps_per_ms = 40
pc.set_maxstep(10)
h.finitialize(-65.0)
pc.psolve(100.0)
with open(out, "w") as f:
    f.write("gid,t_ms\n")
    for t, gid in sorted(zip(tvec, idvec)):
        f.write(f"{int(gid)},{t:.6f}\n")
print(f"{out}: {len(tvec)} spikes")
