TITLE caghk: calcium current with a Goldman-Hodgkin-Katz driving force and tabulated rates

COMMENT
Test mechanism written for miv. ica = pbar*m*m*ghk(v, cai, cao), the GHK flux in its usual
NMODL form with efun(z) = z/(exp(z) - 1). Rate functions are FUNCTIONs with a TABLE (NEURON's
linear interpolation on a 1.5 mV grid). INITIAL reads cai through VERBATIM as some of MiV's
files do.
ENDCOMMENT

NEURON {
    SUFFIX caghk
    USEION ca READ cai, cao WRITE ica VALENCE 2
    RANGE pbar, minf, mtau
}

UNITS {
    (mA) = (milliamp)
    (mV) = (millivolt)
    (mM) = (milli/liter)
    FARADAY = (faraday) (coulomb)
    R = (k-mole) (joule/degC)
}

PARAMETER {
    pbar = 0.0005 (cm/s)
}

STATE { m }

ASSIGNED {
    v (mV)
    celsius (degC)
    cai (mM)
    cao (mM)
    ica (mA/cm2)
    minf
    mtau (ms)
}

BREAKPOINT {
    SOLVE gate METHOD cnexp
    ica = pbar*m*m*ghk(v, cai, cao)
}

INITIAL {
VERBATIM
    cai = _ion_cai;
ENDVERBATIM
    rates(v)
    m = minf
}

DERIVATIVE gate {
    rates(v)
    m' = (minf - m)/mtau
}

PROCEDURE rates(v (mV)) {
    LOCAL a, b
    a = alpha(v)
    b = beta(v)
    mtau = 1/(a + b)
    minf = a*mtau
}

FUNCTION alpha(v (mV)) (/ms) {
    TABLE FROM -150 TO 150 WITH 200
    alpha = 0.5*efun(-(v + 20)/10)
}

FUNCTION beta(v (mV)) (/ms) {
    TABLE FROM -150 TO 150 WITH 200
    beta = 0.2*exp(-(v + 40)/20)
}

FUNCTION ghk(v (mV), ci (mM), co (mM)) (.001 coul/cm3) {
    LOCAL z, eci, eco
    z = (1e-3)*2*FARADAY*v/(R*(celsius + 273.15))
    eco = co*efun(z)
    eci = ci*efun(-z)
    ghk = (.001)*2*FARADAY*(eci - eco)
}

FUNCTION efun(z) {
    if (fabs(z) < 1e-4) {
        efun = 1 - z/2
    } else {
        efun = z/(exp(z) - 1)
    }
}
