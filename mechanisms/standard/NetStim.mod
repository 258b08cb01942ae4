TITLE NetStim: regular or Poisson-like spike generator

COMMENT
Written for miv: emits `number` events starting at `start`, `interval` ms apart. With noise in
(0, 1] each interval is (1 - noise)*interval plus an exponential deviate of mean noise*interval
drawn from the instance's random stream. An external event with positive weight starts a new
sequence if none runs; a negative weight stops it.
Self-event flags: 3 = start of the sequence at `start`, 1 = emit a spike.
ENDCOMMENT

NEURON {
    ARTIFICIAL_CELL NetStim
    RANGE interval, number, start, noise
    THREADSAFE
}

PARAMETER {
    interval = 10 (ms) <1e-9, 1e9>
    number = 10 <0, 1e9>
    start = 50 (ms)
    noise = 0 <0, 1>
}

ASSIGNED {
    event (ms)
    on
    ispike
}

INITIAL {
    on = 0
    ispike = 0
    if (noise < 0) {
        noise = 0
    }
    if (noise > 1) {
        noise = 1
    }
    if (start >= 0 && number > 0) {
        on = 1
        : the first spike falls at start on average
        event = start + interval_length(interval) - interval*(1 - noise)
        if (event < 0) {
            event = 0
        }
        net_send(event, 3)
    }
}

FUNCTION interval_length(mean (ms)) (ms) {
    if (mean <= 0) {
        mean = 0.01
    }
    if (noise == 0) {
        interval_length = mean
    } else {
        interval_length = (1 - noise)*mean + noise*mean*exprand(1)
    }
}

PROCEDURE restart() {
    if (number > 0) {
        on = 1
        event = 0
        ispike = 0
    }
}

PROCEDURE next_interval() {
    if (number > 0) {
        event = interval_length(interval)
    }
    if (ispike >= number) {
        on = 0
    }
}

NET_RECEIVE (w) {
    if (flag == 0) {
        if (w > 0 && on == 0) {
            restart()
            next_interval()
            event = event - interval*(1 - noise)
            net_send(event, 1)
        } else if (w < 0) {
            on = 0
        }
    }
    if (flag == 3) {
        if (on == 1) {
            restart()
            net_send(0, 1)
        }
    }
    if (flag == 1 && on == 1) {
        ispike = ispike + 1
        net_event(t)
        next_interval()
        if (on == 1) {
            net_send(event, 1)
        }
    }
}
