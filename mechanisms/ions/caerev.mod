TITLE caerev: a calcium conductance that reads only eca (as MiV's ch_CavN does)

COMMENT
Test mechanism written for miv. Alone in a section, it leaves the set eca in force.
ENDCOMMENT

NEURON {
    SUFFIX caerev
    USEION ca READ eca WRITE ica
    RANGE g
}

PARAMETER {
    g = 0.01 (mho/cm2)
}

ASSIGNED {
    v (mV)
    eca (mV)
    ica (mA/cm2)
}

BREAKPOINT {
    ica = g * (v - eca)
}
