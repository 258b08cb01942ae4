TITLE kexp: potassium channel advanced by an explicit exponential PROCEDURE with a TABLE

COMMENT
Test mechanism written for miv. n' = (ninf - n)/ntau is advanced by the exact exponential
factor nexp = 1 - exp(-dt*q10/ntau) computed in a TABLE that DEPENDs on dt and celsius.
Covers: SOLVE of a PROCEDURE (no METHOD), TABLE with a list of names and DEPEND dt, file-level
LOCAL, FUNCTION with if/else, UNITSOFF/UNITSON, '?' comments.
ENDCOMMENT

? this line is a comment too

NEURON {
    SUFFIX kexp
    USEION k READ ek WRITE ik
    RANGE gbar, g
    GLOBAL ninf, ntau, nexp
    THREADSAFE
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
}

PARAMETER {
    gbar = 0.02 (mho/cm2)
    vhalf = -40 (mV)
    slope = 8 (mV)
}

STATE { n }

ASSIGNED {
    v (mV)
    dt (ms)
    celsius (degC)
    ek (mV)
    ik (mA/cm2)
    g (mho/cm2)
    ninf
    ntau (ms)
    nexp
}

BREAKPOINT {
    SOLVE advance
    g = gbar*n*n
    ik = g*(v - ek)
}

INITIAL {
    settables(v)
    n = ninf
}

PROCEDURE advance() {
    settables(v)
    n = n + nexp*(ninf - n)
}

LOCAL q10

UNITSOFF
PROCEDURE rates(v) {
    q10 = 3^((celsius - 24)/10)
    ninf = 1/(1 + exp(-(v - vhalf)/slope))
    ntau = 1 + 4*bell(v - vhalf, 20)
}

PROCEDURE settables(v) {
    TABLE ninf, ntau, nexp DEPEND dt, celsius FROM -100 TO 100 WITH 200
    rates(v)
    nexp = 1 - exp(-dt*q10/ntau)
}
UNITSON

FUNCTION bell(x, w) {
    if (fabs(x) > 5*w) {
        bell = 0
    } else {
        bell = exp(-x*x/(w*w))
    }
}
