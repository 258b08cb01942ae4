TITLE careads: a calcium conductance that reads cai and cao (as MiV's ch_CavL does)

COMMENT
Test mechanism written for miv. It reads the calcium concentrations but never writes them, and drives
the membrane towards eca. NEURON's ion_style rules then make eca the Nernst potential of cai and cao at
initialisation, whatever value was set for it; no mechanism writes cai, so it stays there.
ENDCOMMENT

NEURON {
    SUFFIX careads
    USEION ca READ cai, cao, eca WRITE ica VALENCE 2
    RANGE g, ratio
}

PARAMETER {
    g = 0.01 (mho/cm2)
}

ASSIGNED {
    v (mV)
    cai (mM)
    cao (mM)
    eca (mV)
    ica (mA/cm2)
    ratio (1)
}

INITIAL {
    ratio = cao / cai
}

BREAKPOINT {
    ica = g * (v - eca)
}
