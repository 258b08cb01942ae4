#!/usr/bin/env python3
"""NEURON timings for `miv bench cell` (cases cable and hh; the BY network uses the reference's
bench_neuron.py). Same models as src/cli/bench.rs, fixed step dt 0.025 ms, backward Euler, 100 ms.

  cable      one section, L 10000 um, diam 1, nseg 10000, Ra 100, pas g 0.001 e -65, IClamp 0.1 nA at x=0
  hh N       N single-compartment somata (L = diam = 18.8, Ra 100), hh at its defaults (usetable as NEURON's
             default, 1, unless --exact), IClamp 0.1 nA from 1 + (i % 10) ms, threshold detector at 10 mV

Prints one line: RESULT {json} with run_s (the continuerun/psolve call only), compartments_total, spikes.
"""
import argparse
import json
import time

ap = argparse.ArgumentParser()
ap.add_argument("case", choices=["cable", "hh"])
ap.add_argument("n", type=int, nargs="?", default=1000)
ap.add_argument("--tstop", type=float, default=100.0)
ap.add_argument("--exact", action="store_true", help="hh rates without the table (usetable_hh = 0)")
args = ap.parse_args()

from neuron import h  # noqa: E402

h.load_file("stdrun.hoc")
DT = 0.025
keep = []
if args.case == "cable":
    s = h.Section(name="cable")
    s.L, s.diam, s.nseg, s.Ra = 10000.0, 1.0, 10000, 100.0
    s.insert("pas")
    for seg in s:
        seg.pas.g, seg.pas.e = 0.001, -65.0
    st = h.IClamp(s(0))
    st.delay, st.dur, st.amp = 5.0, 1e9, 0.1
    keep += [s, st]
    spikes = h.Vector()
else:
    h.usetable_hh = 0 if args.exact else 1
    spikes = h.Vector()
    for i in range(args.n):
        s = h.Section(name=f"soma{i}")
        s.L = s.diam = 18.8
        s.Ra = 100.0
        s.insert("hh")
        st = h.IClamp(s(0.5))
        st.delay, st.dur, st.amp = 1.0 + (i % 10), 1e9, 0.1
        nc = h.NetCon(s(0.5)._ref_v, None, sec=s)
        nc.threshold = 10.0
        nc.record(spikes)
        keep += [s, st, nc]
h.celsius = 6.3
h.CVode().active(0)
h.CVode().cache_efficient(1)
h.secondorder = 0
h.dt = DT
h.steps_per_ms = 1.0 / DT
h.finitialize(-65.0)
t0 = time.perf_counter()
h.continuerun(args.tstop)
run_s = time.perf_counter() - t0
ncomp = sum(sec.nseg for sec in h.allsec())
print("RESULT " + json.dumps({"simulator": "NEURON " + h.nrnversion(5), "case": args.case, "run_s": run_s,
                              "compartments_total": ncomp, "tstop_ms": args.tstop, "dt_ms": DT,
                              "spikes": int(len(spikes))}), flush=True)
