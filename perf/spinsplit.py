#!/usr/bin/env python3
"""rr latency while harp's Lua thread spins against latency while it does not, in one run.

Usage: spinsplit.py DUMP SPANS FLAP_LOG [DUMP SPANS FLAP_LOG ...]  ->  one JSON object on stdout.
Several runs given at once are pooled: their spin requests together, their plain ones together
(p99 over many runs is decided by more of the rare stalls that make it, so it moves less).

DUMP is `harp-perf load --scenario rr --dump`: `intended_unix_us latency_us` per request.
SPANS is perf/events_probe.lua's `<file>.spin`: `start_us end_us` per spinning callback.
FLAP_LOG is `harp-perf flap --log`: `index command... send_unix_us rtt_us` per command.

With `spin_every 2` and one flap a second, the Lua thread spins every other second, so one run
holds both kinds of seconds under the same background load: a slow drift of the shared machine
(the 3-10x spread of p99 between separate runs) hits both alike, which comparing separate runs
cannot promise. The flap commands cut the run into windows, each starting with one command (so
each kind of window holds the same disturbance from the Runtime API and the event itself); a
window is "spin" when a spinning callback started in it. A request belongs to the window of its
intended send time; requests before the first command or after the last are left out, and so
is the first window holding requests: it holds the load's first measured second, whose p99 is
often several times a later window's (start-up), and it fell in a plain window in most runs. An
A/A (no spin, alternate windows marked) over 6 runs gave a pooled p99 ratio of 0.62 with it and
0.86 without it (perf/README.md, session of 2026-11-25 09:10).
"""
import bisect
import json
import statistics
import sys

from evlat import pct, read_sends  # the same percentile and flap-log reader as evlat.py

# The onset: requests sent in a window's first ONSET_US microseconds. A spin's cost used to sit
# there (threads queued behind the Lua thread until the next tick, 4 ms at HZ=250), invisible in
# the whole-window p99 of a noisy run; "onset" reports the same percentiles over those requests.
ONSET_US = 3000


def summary(vals):
    vals.sort()
    return {
        "n": len(vals),
        "p50_us": pct(vals, 0.50),
        "p90_us": pct(vals, 0.90),
        "p99_us": pct(vals, 0.99),
        "p999_us": pct(vals, 0.999),
        "max_us": vals[-1] if vals else None,
    }


def read_pairs(path):
    with open(path) as f:
        return [(int(w[0]), int(w[1])) for w in (line.split() for line in f) if len(w) >= 2]


def split(requests, spans, sends):
    """(spin latencies, plain latencies) of `requests`, windows cut at the sorted `sends`;
    per window, also its p99 (`window_p99`: list of (spun, p99)); and the same two lists for the
    requests sent in each window's first ONSET_US (the onset)."""
    spun = [False] * max(0, len(sends) - 1)
    for start, _ in spans:
        k = bisect.bisect_right(sends, start) - 1
        if 0 <= k < len(spun):
            spun[k] = True
    per = [[] for _ in spun]
    for at, lat in requests:
        k = bisect.bisect_right(sends, at) - 1
        if 0 <= k < len(spun):
            per[k].append((at - sends[k], lat))
    kept = [(spun[k], v) for k, v in enumerate(per) if v][1:]  # the first: start-up
    spin = [lat for s, v in kept if s for _, lat in v]
    plain = [lat for s, v in kept if not s for _, lat in v]
    windows = [(s, pct(sorted(lat for _, lat in v), 0.99)) for s, v in kept]
    onset = [[lat for s, v in kept if s == kind for off, lat in v if off < ONSET_US]
             for kind in (True, False)]
    return spin, plain, windows, onset


def paired(windows):
    """Per spinning window of one run, its p99 over the geometric mean of its plain neighbours'
    (the windows just before and after it): the slow drifts of a shared machine cancel, and a
    host stall spoils one pair, not the figure, when the median is taken over many pairs."""
    out = []
    for k, (spun, q) in enumerate(windows):
        nb = [windows[j][1] for j in (k - 1, k + 1)
              if 0 <= j < len(windows) and not windows[j][0] and windows[j][1]]
        if spun and q and nb:
            out.append(q / statistics.geometric_mean(nb))
    return out


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit("usage: spinsplit.py DUMP SPANS FLAP_LOG [DUMP SPANS FLAP_LOG ...]")
    spin, plain, windows, nspans = [], [], [], 0
    onset_spin, onset_plain, pairs = [], [], []
    for i in range(0, len(args), 3):
        try:
            spans = sorted(read_pairs(args[i + 1]))
        except OSError:
            spans = []
        a, b, w, (oa, ob) = split(read_pairs(args[i]), spans, sorted(read_sends(args[i + 2])))
        onset_spin += oa
        onset_plain += ob
        spin += a
        plain += b
        windows += w
        pairs += paired(w)
        nspans += len(spans)
    s, p = summary(spin), summary(plain)
    # the typical window: median over windows of each kind of their own p99
    med = lambda v: statistics.median(v) if v else None
    ws = med([q for spun, q in windows if spun])
    wp = med([q for spun, q in windows if not spun])
    ratio = lambda k, s=s, p=p: (s[k] / p[k]) if s[k] and p[k] else None
    os_, op = summary(onset_spin), summary(onset_plain)
    print(json.dumps({
        "runs": len(args) // 3,
        "spans": nspans,
        "spin": s,
        "plain": p,
        "p50_ratio": ratio("p50_us"),
        "p90_ratio": ratio("p90_us"),
        "p99_ratio": ratio("p99_us"),
        "p999_ratio": ratio("p999_us"),
        "window_p99_median_us": {"spin": ws, "plain": wp},
        "window_p99_ratio": (ws / wp) if ws and wp else None,
        "paired_p99_ratio": med(pairs),
        "pairs": len(pairs),
        "onset": {
            "first_us": ONSET_US,
            "spin": os_,
            "plain": op,
            "p50_ratio": ratio("p50_us", os_, op),
            "p90_ratio": ratio("p90_us", os_, op),
            "p99_ratio": ratio("p99_us", os_, op),
        },
    }))


if __name__ == "__main__":
    main()
