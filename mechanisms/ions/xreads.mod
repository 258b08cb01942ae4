TITLE xreads: a conductance of a new ion species x of charge 2

COMMENT
Test mechanism written for miv. The species x exists only through this USEION; its charge comes from
VALENCE, so the Nernst potential at initialisation is RT/(2F) ln(xo/xi).
ENDCOMMENT

NEURON {
    SUFFIX xreads
    USEION x READ xi, xo, ex WRITE ix VALENCE 2
    RANGE g
}

PARAMETER {
    g = 0.01 (mho/cm2)
}

ASSIGNED {
    v (mV)
    xi (mM)
    xo (mM)
    ex (mV)
    ix (mA/cm2)
}

BREAKPOINT {
    ix = g * (v - ex)
}
