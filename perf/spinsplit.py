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
intended send time; requests before the first command or after the last are left out.
"""
import bisect
import json
import statistics
import sys

from evlat import pct, read_sends  # the same percentile and flap-log reader as evlat.py


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
    per window, also its p99 (`window_p99`: list of (spun, p99))."""
    spun = [False] * max(0, len(sends) - 1)
    for start, _ in spans:
        k = bisect.bisect_right(sends, start) - 1
        if 0 <= k < len(spun):
            spun[k] = True
    spin, plain = [], []
    per = [[] for _ in spun]
    for at, lat in requests:
        k = bisect.bisect_right(sends, at) - 1
        if 0 <= k < len(spun):
            (spin if spun[k] else plain).append(lat)
            per[k].append(lat)
    windows = [(spun[k], pct(sorted(v), 0.99)) for k, v in enumerate(per) if v]
    return spin, plain, windows


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit("usage: spinsplit.py DUMP SPANS FLAP_LOG [DUMP SPANS FLAP_LOG ...]")
    spin, plain, windows, nspans = [], [], [], 0
    for i in range(0, len(args), 3):
        try:
            spans = sorted(read_pairs(args[i + 1]))
        except OSError:
            spans = []
        a, b, w = split(read_pairs(args[i]), spans, sorted(read_sends(args[i + 2])))
        spin += a
        plain += b
        windows += w
        nspans += len(spans)
    s, p = summary(spin), summary(plain)
    # the typical window: median over windows of each kind of their own p99
    med = lambda v: statistics.median(v) if v else None
    ws = med([q for spun, q in windows if spun])
    wp = med([q for spun, q in windows if not spun])
    ratio = lambda k: (s[k] / p[k]) if s[k] and p[k] else None
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
    }))


if __name__ == "__main__":
    main()
