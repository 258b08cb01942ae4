TITLE countsyn: exponential synapse with a three-entry weight vector and NET_RECEIVE INITIAL

COMMENT
Test mechanism written for miv. Each connection carries (weight, scale, count): an event adds
weight*scale to g and increments that connection's own count, which NET_RECEIVE's INITIAL
block resets.
ENDCOMMENT

NEURON {
    POINT_PROCESS countsyn
    RANGE tau, e, i, total
    NONSPECIFIC_CURRENT i
}

PARAMETER {
    tau = 2 (ms)
    e = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    total
}

STATE { g (uS) }

INITIAL {
    g = 0
    total = 0
}

BREAKPOINT {
    SOLVE decay METHOD cnexp
    i = g*(v - e)
}

DERIVATIVE decay {
    g' = -g/tau
}

NET_RECEIVE(weight (uS), scale, count) {
    INITIAL {
        count = 0
    }
    count = count + 1
    total = total + 1
    g = g + weight*scale
}
