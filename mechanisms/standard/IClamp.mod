TITLE IClamp: current step injected into a segment

COMMENT
Written for miv: amp nA from del for dur ms. Positive amp depolarises (an electrode current).
ENDCOMMENT

NEURON {
    POINT_PROCESS IClamp
    RANGE del, dur, amp, i
    ELECTRODE_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
}

PARAMETER {
    del (ms)
    dur (ms) <0, 1e9>
    amp (nA)
}

ASSIGNED {
    i (nA)
}

INITIAL {
    i = 0
}

BREAKPOINT {
    at_time(del)
    at_time(del + dur)
    if (t >= del && t < del + dur) {
        i = amp
    } else {
        i = 0
    }
}
