TITLE VecStim: events at the times of a played vector

COMMENT
Written for miv: an artificial cell that fires at each time of the vector given to play()
(sorted, in ms). In miv the vector is supplied through the API; the VERBATIM blocks are the
usual NEURON C accessors, which miv recognises and runs as built-in behaviour.
ENDCOMMENT

NEURON {
    THREADSAFE
    ARTIFICIAL_CELL VecStim
    BBCOREPOINTER ptr
}

ASSIGNED {
    index
    etime (ms)
    ptr
}

INITIAL {
    index = 0
    element()
    if (index > 0) {
        net_send(etime - t, 1)
    }
}

NET_RECEIVE (w) {
    if (flag == 1) {
        net_event(t)
        element()
        if (index > 0) {
            net_send(etime - t, 1)
        }
    }
}

PROCEDURE element() {
VERBATIM
    {
        void* vv = (void*)(_p_ptr);
        int i = (int)index;
        if (i >= 0) {
            if (vv && i < vector_capacity(vv)) {
                etime = vector_vec(vv)[i];
                index += 1.;
            } else {
                index = -1.;
            }
        }
    }
ENDVERBATIM
}

PROCEDURE play() {
VERBATIM
    {
        void** pv = (void**)(&_p_ptr);
        void* ptmp = ifarg(1) ? vector_arg(1) : NULL;
        *pv = ptmp;
    }
ENDVERBATIM
}
