TITLE capump: a constant calcium current (drives cadecay in the tests)

NEURON {
    SUFFIX capump
    USEION ca WRITE ica VALENCE 2
    RANGE amp
}

PARAMETER {
    amp = -0.001 (mA/cm2)
}

ASSIGNED {
    ica (mA/cm2)
}

BREAKPOINT {
    ica = amp
}
