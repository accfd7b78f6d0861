// The increments of the transformed path, generated on the fly (never materialised). Needs the
// kernel's `params`, `paths` (rows of length·DIM) and `consts` (consts[0]: the time channel's step).

// Channel c of increment t of path p. Lead-lag: an even step moves the lead channels (DIM..2·DIM) by
// Δx_{t/2}, an odd step the lag channels (0..DIM) by Δx_{⌊t/2⌋}; time, if on, is the last channel.
fn incr(p: u32, t: u32, c: u32) -> scalar {
    if TIME_AUG && c == D - 1u {
        return consts[0];
    }
    var seg = t;
    var ch = c;
    if LEAD_LAG {
        seg = t / 2u;
        let lead = c >= DIM;
        if lead {
            ch = c - DIM;
        }
        if (t % 2u == 0u) != lead {
            return scalar(0.0);
        }
    }
    let a = (p * params.length + seg) * DIM + ch;
    return paths[a + DIM] - paths[a];
}
