TITLE xunit: the species x again, declared with charge 1

COMMENT
Test mechanism written for miv. Its VALENCE contradicts xreads.mod: a cell using both is refused, as
NEURON refuses two USEION statements with different charges.
ENDCOMMENT

NEURON {
    SUFFIX xunit
    USEION x READ ex WRITE ix VALENCE 1
    RANGE g
}

PARAMETER {
    g = 0.001 (mho/cm2)
}

ASSIGNED {
    v (mV)
    ex (mV)
    ix (mA/cm2)
}

BREAKPOINT {
    ix = g * (v - ex)
}
