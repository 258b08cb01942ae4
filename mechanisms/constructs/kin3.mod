TITLE kin3: three-state cyclic kinetic scheme with a conservation law

COMMENT
Test mechanism written for miv. C -> O -> D -> C with rates kco, kod, kdc (1/ms), written as
reversible reactions with zero backward rates, CONSERVE C + O + D = 1, METHOD sparse.
The open state carries i = gbar*O*(v - e).
ENDCOMMENT

NEURON {
    POINT_PROCESS kin3
    NONSPECIFIC_CURRENT i
    RANGE gbar, e, kco, kod, kdc
}

PARAMETER {
    gbar = 0.001 (uS)
    e = 0 (mV)
    kco = 0.3 (/ms)
    kod = 0.1 (/ms)
    kdc = 0.02 (/ms)
}

ASSIGNED {
    v (mV)
    i (nA)
}

STATE { C O D }

INITIAL {
    C = 1
    O = 0
    D = 0
}

BREAKPOINT {
    SOLVE scheme METHOD sparse
    i = gbar*O*(v - e)
}

KINETIC scheme {
    ~ C <-> O (kco, 0)
    ~ O <-> D (kod, 0)
    ~ D <-> C (kdc, 0)
    CONSERVE C + O + D = 1
}
