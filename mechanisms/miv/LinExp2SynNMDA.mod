COMMENT
NMDA-type synapse for MiV-Simulator's NMDA label (written for miv from its documented behaviour): the
double-exponential conductance of LinExp2Syn times a voltage-dependent magnesium unblock

    p(v) = 1 / (1 + exp(-gamma * (v + vshift)) * mg / Kd)

so i = (B - A) * p(v) * (v - e). Each event adds weight * g_unit * factor to A and B.
ENDCOMMENT

NEURON {
    POINT_PROCESS LinExp2SynNMDA
    RANGE tau_rise, tau_decay, e, mg, Kd, gamma, vshift, g, i, pnmda
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
    (mM) = (milli/liter)
}

PARAMETER {
    tau_rise = 10 (ms)
    tau_decay = 35 (ms)
    e = 0 (mV)
    mg = 1 (mM)
    Kd = 3.57 (mM)
    gamma = 0.062 (/mV)
    vshift = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
    pnmda
    factor
}

STATE {
    A (uS)
    B (uS)
}

INITIAL {
    LOCAL t_peak
    if (tau_rise > 0.9999 * tau_decay) {
        tau_rise = 0.9999 * tau_decay
    }
    A = 0
    B = 0
    t_peak = log(tau_decay / tau_rise) * tau_rise * tau_decay / (tau_decay - tau_rise)
    factor = 1 / (exp(-t_peak / tau_decay) - exp(-t_peak / tau_rise))
}

BREAKPOINT {
    SOLVE kinetics METHOD cnexp
    g = B - A
    pnmda = unblock(v)
    i = g * pnmda * (v - e)
}

DERIVATIVE kinetics {
    A' = -A / tau_rise
    B' = -B / tau_decay
}

FUNCTION unblock(v (mV)) {
    unblock = 1 / (1 + exp(-gamma * (v + vshift)) * mg / Kd)
}

NET_RECEIVE(weight, g_unit (uS)) {
    : An (empty) INITIAL block keeps g_unit: without one, NEURON sets every NetCon argument after the
    : first to 0 at initialisation.
    INITIAL {}
    A = A + weight * g_unit * factor
    B = B + weight * g_unit * factor
}
