TITLE hh: Hodgkin-Huxley squid axon sodium, potassium and leak channels

COMMENT
Written for miv from the published equations (Hodgkin and Huxley 1952, as in
shared/reference/README.md section 3). Rates in 1/ms with v in mV, temperature factor
q10 = 3^((celsius - 6.3)/10). Gates use cnexp, rates come from a 1 mV table over
-100..100 mV as in NEURON's default (set the global usetable to 0 for exact rates).
ENDCOMMENT

NEURON {
    SUFFIX hh
    USEION na READ ena WRITE ina
    USEION k READ ek WRITE ik
    NONSPECIFIC_CURRENT il
    RANGE gnabar, gkbar, gl, el, gna, gk
    GLOBAL minf, hinf, ninf, mtau, htau, ntau
    THREADSAFE
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (S) = (siemens)
}

PARAMETER {
    gnabar = 0.12 (S/cm2) <0, 1e9>
    gkbar = 0.036 (S/cm2) <0, 1e9>
    gl = 0.0003 (S/cm2) <0, 1e9>
    el = -54.3 (mV)
}

STATE { m h n }

ASSIGNED {
    v (mV)
    celsius (degC)
    ena (mV)
    ek (mV)
    gna (S/cm2)
    gk (S/cm2)
    ina (mA/cm2)
    ik (mA/cm2)
    il (mA/cm2)
    minf hinf ninf
    mtau (ms) htau (ms) ntau (ms)
}

BREAKPOINT {
    SOLVE gates METHOD cnexp
    gna = gnabar*m*m*m*h
    ina = gna*(v - ena)
    gk = gkbar*n*n*n*n
    ik = gk*(v - ek)
    il = gl*(v - el)
}

INITIAL {
    rates(v)
    m = minf
    h = hinf
    n = ninf
}

DERIVATIVE gates {
    rates(v)
    m' = (minf - m)/mtau
    h' = (hinf - h)/htau
    n' = (ninf - n)/ntau
}

PROCEDURE rates(v (mV)) {
    LOCAL up, down, q10
    TABLE minf, mtau, hinf, htau, ninf, ntau DEPEND celsius FROM -100 TO 100 WITH 200
    UNITSOFF
    q10 = 3^((celsius - 6.3)/10)
    : sodium activation
    up = 0.1*linoid(-(v + 40), 10)
    down = 4*exp(-(v + 65)/18)
    mtau = 1/(q10*(up + down))
    minf = up/(up + down)
    : sodium inactivation
    up = 0.07*exp(-(v + 65)/20)
    down = 1/(1 + exp(-(v + 35)/10))
    htau = 1/(q10*(up + down))
    hinf = up/(up + down)
    : potassium activation
    up = 0.01*linoid(-(v + 55), 10)
    down = 0.125*exp(-(v + 65)/80)
    ntau = 1/(q10*(up + down))
    ninf = up/(up + down)
    UNITSON
}

FUNCTION linoid(x, y) {
    : x/(exp(x/y) - 1), with its limit y*(1 - x/(2y)) near x = 0
    if (fabs(x/y) < 1e-6) {
        linoid = y*(1 - x/y/2)
    } else {
        linoid = x/(exp(x/y) - 1)
    }
}
