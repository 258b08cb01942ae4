COMMENT
Double-exponential synaptic conductance with linear summation, the synapse behind MiV-Simulator's AMPA,
GABA_A and GABA_B labels (written for miv from its documented behaviour).

g(t) = B - A with A and B decaying at tau_rise and tau_decay. Each event adds weight * g_unit * factor to both,
where factor scales the difference of exponentials to a peak of 1, so one event of weight w peaks at
w * g_unit uS. Events from any number of connections add up linearly.
ENDCOMMENT

NEURON {
    POINT_PROCESS LinExp2Syn
    RANGE tau_rise, tau_decay, e, g, i
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    tau_rise = 1 (ms)
    tau_decay = 5 (ms)
    e = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
    factor
}

STATE {
    A (uS)
    B (uS)
}

INITIAL {
    LOCAL t_peak
    : keep the two time constants apart so that the peak is defined
    if (tau_rise > 0.9999 * tau_decay) {
        tau_rise = 0.9999 * tau_decay
    }
    if (tau_rise < 1e-9 * tau_decay) {
        tau_rise = 1e-9 * tau_decay
    }
    A = 0
    B = 0
    t_peak = log(tau_decay / tau_rise) * tau_rise * tau_decay / (tau_decay - tau_rise)
    factor = 1 / (exp(-t_peak / tau_decay) - exp(-t_peak / tau_rise))
}

BREAKPOINT {
    SOLVE kinetics METHOD cnexp
    g = B - A
    i = g * (v - e)
}

DERIVATIVE kinetics {
    A' = -A / tau_rise
    B' = -B / tau_decay
}

NET_RECEIVE(weight, g_unit (uS)) {
    : An (empty) INITIAL block keeps g_unit: without one, NEURON sets every NetCon argument after the
    : first to 0 at initialisation.
    INITIAL {}
    A = A + weight * g_unit * factor
    B = B + weight * g_unit * factor
}
