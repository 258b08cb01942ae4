TITLE cadecay: calcium accumulation in a shell next to the membrane, writing cai

COMMENT
Test mechanism written for miv. cai' = -ica*(1e4)/(2*FARADAY*depth) + (cai0 - cai)/tau:
the inward calcium current fills a shell of depth um, which relaxes to cai0. The mechanism has
no current of its own, so its BREAKPOINT runs with the states (as in NEURON).
ENDCOMMENT

NEURON {
    SUFFIX cadecay
    USEION ca READ ica WRITE cai
    RANGE depth, tau, cai0, peak
}

UNITS {
    (mM) = (milli/liter)
    (mA) = (milliamp)
    FARADAY = (faraday) (coulomb)
}

PARAMETER {
    depth = 0.1 (um)
    tau = 50 (ms)
    cai0 = 5e-5 (mM)
}

ASSIGNED {
    ica (mA/cm2)
    peak (mM)
}

STATE { cai (mM) }

INITIAL {
    cai = cai0
    peak = cai
}

BREAKPOINT {
    SOLVE shell METHOD cnexp
    if (cai > peak) {
        peak = cai
    }
}

DERIVATIVE shell {
    cai' = -ica*(1e4)/(2*FARADAY*depth) + (cai0 - cai)/tau
}
