TITLE hion: hyperpolarisation-activated current carried by a custom ion h, derivimplicit

COMMENT
Test mechanism written for miv. A new ion species 'h' (valence 1) whose reversal potential is
read (eh) and whose current is written (ih). One gate r with r' = (rinf - r)/rtau solved by
derivimplicit.
ENDCOMMENT

NEURON {
    SUFFIX hion
    USEION h READ eh WRITE ih VALENCE 1
    RANGE gbar, ih
}

PARAMETER {
    gbar = 0.001 (mho/cm2)
    rtau = 50 (ms)
}

STATE { r }

ASSIGNED {
    v (mV)
    eh (mV)
    ih (mA/cm2)
    rinf
}

BREAKPOINT {
    SOLVE gate METHOD derivimplicit
    ih = gbar*r*(v - eh)
}

INITIAL {
    rinf = 1/(1 + exp((v + 80)/8))
    r = rinf
}

DERIVATIVE gate {
    rinf = 1/(1 + exp((v + 80)/8))
    r' = (rinf - r)/rtau
}
