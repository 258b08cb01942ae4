TITLE kadi: two-gate A-type potassium channel solved with derivimplicit

COMMENT
Test mechanism written for miv. Gates a (activation) and b (inactivation) with
a' = (ainf - a)/atau, b' = (binf - b)/btau, solved by implicit Euler with Newton iteration
(METHOD derivimplicit): two equations, one Newton system.
ENDCOMMENT

NEURON {
    SUFFIX kadi
    USEION k READ ek WRITE ik
    RANGE gbar
    GLOBAL ainf, binf, atau, btau
}

PARAMETER {
    gbar = 0.01 (mho/cm2)
    atau = 2 (ms)
}

STATE { a b }

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    ainf
    binf
    btau (ms)
}

BREAKPOINT {
    SOLVE gates METHOD derivimplicit
    ik = gbar*a*b*(v - ek)
}

INITIAL {
    rates(v)
    a = ainf
    b = binf
}

DERIVATIVE gates {
    rates(v)
    a' = (ainf - a)/atau
    b' = (binf - b)/btau
}

PROCEDURE rates(v (mV)) {
    ainf = 1/(1 + exp(-(v + 30)/10))
    binf = 1/(1 + exp((v + 70)/6))
    btau = 20 + 30/(1 + exp((v + 50)/5))
}
