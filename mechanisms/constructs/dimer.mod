TITLE dimer: nonlinear kinetic scheme 2 A <-> B with a source flux

COMMENT
Test mechanism written for miv. Second-order binding 2 A <-> B (kf, kb) plus a constant flux
into A; solved by NEURON's sparse Newton iteration (nonlinear: iterated to convergence).
ENDCOMMENT

NEURON {
    SUFFIX dimer
    RANGE kf, kb, influx
}

PARAMETER {
    kf = 2 (/mM-ms)
    kb = 0.5 (/ms)
    influx = 0.01 (mM/ms)
}

STATE { A (mM) B (mM) }

INITIAL {
    A = 1
    B = 0
}

BREAKPOINT {
    SOLVE react METHOD sparse
}

KINETIC react {
    ~ A << (influx)
    ~ 2 A <-> B (kf, kb)
}
