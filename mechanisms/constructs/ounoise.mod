TITLE ounoise: Ornstein-Uhlenbeck conductance noise updated by self-events

COMMENT
Test mechanism written for miv, structured like Gfluct-style noise sources. Every h ms a
self-event updates g1 exactly for an OU process of time constant tau and stationary standard
deviation sd: g1 <- g1*exp(-h/tau) + sd*sqrt(1 - exp(-2h/tau))*N(0, 1). The normal deviates
come from the instance's Random123-style stream; the VERBATIM blocks are the usual NEURON C
accessors, which miv recognises.
ENDCOMMENT

NEURON {
    POINT_PROCESS ounoise
    RANGE h, g0, sd, tau, g1, e
    NONSPECIFIC_CURRENT i
    THREADSAFE
    BBCOREPOINTER rng
}

PARAMETER {
    h = 0.1 (ms)
    g0 = 0.01 (uS)
    sd = 0.002 (uS)
    tau = 5 (ms)
    e = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    g1 (uS)
    decay
    amp (uS)
    rng
}

VERBATIM
static int _ran_compat;
ENDVERBATIM

INITIAL {
VERBATIM
    if (_p_rng) {
        nrnran123_setseq((nrnran123_State*)_p_rng, 0, 0);
    }
ENDVERBATIM
    g1 = 0
    decay = exp(-h/tau)
    amp = sd*sqrt(1 - exp(-2*h/tau))
    net_send(h, 1)
}

BREAKPOINT {
    i = (g0 + g1)*(v - e)
}

FUNCTION gauss(mean, std) {
VERBATIM
    if (_p_rng) {
        double x = nrnran123_normal((nrnran123_State*)_p_rng);
        return _lmean + _lstd*x;
    }
ENDVERBATIM
    gauss = normrand(mean, std)
}

PROCEDURE step() {
    g1 = decay*g1 + amp*gauss(0, 1)
}

NET_RECEIVE (w) {
    if (flag == 1) {
        step()
        net_send(h, 1)
    }
}

PROCEDURE noiseFromRandom123() {
VERBATIM
    nrnran123_State** pv = (nrnran123_State**)(&_p_rng);
    *pv = nrnran123_newstream3((uint32_t)*getarg(1), (uint32_t)*getarg(2), (uint32_t)*getarg(3));
ENDVERBATIM
}
