#!/usr/bin/env python3
"""Event-to-Lua-callback latency for compare.sh's `events` scenario.

Usage: evlat.py FLAP_LOG PROBE_LOG  ->  one JSON object on stdout.

FLAP_LOG is `harp-perf flap --log`: `index command... send_unix_us rtt_us` per command.
PROBE_LOG is perf/events_probe.lua's output: `callback_unix_us EVENT` per SERVER_ADMIN callback.
Every successful command raises exactly one SERVER_ADMIN event, in order, so the k-th callback
belongs to the k-th command: latency = callback time - send time (so it includes the Runtime API
connect and parse, an upper bound of bus-to-callback). Both clocks are the same host's wall clock.
"""
import json
import math
import sys


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    # nearest rank
    i = min(len(sorted_vals) - 1, max(0, math.ceil(p * len(sorted_vals)) - 1))
    return sorted_vals[i]


def main():
    sends = []
    with open(sys.argv[1]) as f:
        for line in f:
            w = line.split()
            if len(w) >= 3:
                sends.append(int(w[-2]))
    cbs = []
    try:
        with open(sys.argv[2]) as f:
            for line in f:
                w = line.split()
                if w:
                    cbs.append(int(w[0]))
    except OSError:
        pass
    lat = sorted(c - s for s, c in zip(sends, cbs))
    print(json.dumps({
        "commands": len(sends),
        "callbacks": len(cbs),
        "p50_us": pct(lat, 0.5),
        "p99_us": pct(lat, 0.99),
        "max_us": lat[-1] if lat else None,
        "min_us": lat[0] if lat else None,
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
