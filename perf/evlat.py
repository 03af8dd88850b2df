#!/usr/bin/env python3
"""Event-to-Lua-callback latency for compare.sh's `events` scenario.

Usage: evlat.py FLAP_LOG PROBE_LOG  ->  one JSON object on stdout.

FLAP_LOG is `harp-perf flap --log`: `index command... send_unix_us rtt_us` per command.
PROBE_LOG is perf/events_probe.lua's output, one line per SERVER_ADMIN callback:
`callback_unix_us age_us EVENT` (`age_us` = harp's `core.harp_event_age_us()` at the callback's
start, -1 if unavailable; older probes wrote `callback_unix_us EVENT`).

Two latencies:
- send->callback (`p50_us`, `p99_us`, ...): every successful command raises exactly one
  SERVER_ADMIN event, in order, so the k-th callback belongs to the k-th command: callback time -
  send time. It includes the Runtime API connect, parse and apply (an upper bound). Both clocks
  are the same host's wall clock.
- publish->callback (`pub_p50_us`, `pub_p99_us`, ...): the age of the event on harp's event bus
  when its callback starts (monotonic clock, measured inside harp): the event path alone.
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


def read_sends(path):
    """Send times (Unix us) of the commands in a `harp-perf flap --log` file, in log order."""
    sends = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) >= 3:
                sends.append(int(w[-2]))
    return sends


def main():
    sends = read_sends(sys.argv[1])
    cbs, ages = [], []
    try:
        with open(sys.argv[2]) as f:
            for line in f:
                w = line.split()
                if not w:
                    continue
                cbs.append(int(w[0]))
                if len(w) >= 3 and w[1].lstrip("-").isdigit() and int(w[1]) >= 0:
                    ages.append(int(w[1]))
                elif len(w) >= 3:
                    ages.append(None)
    except OSError:
        pass
    lat = sorted(c - s for s, c in zip(sends, cbs))
    # Only callbacks matched to a logged command: the flap tool's final `enable server` (sent
    # after its log ends, possibly while a spinning callback still runs) is not a measured event.
    ages = sorted(a for a in ages[:len(sends)] if a is not None)
    print(json.dumps({
        "commands": len(sends),
        "callbacks": len(cbs),
        "p50_us": pct(lat, 0.5),
        "p99_us": pct(lat, 0.99),
        "max_us": lat[-1] if lat else None,
        "min_us": lat[0] if lat else None,
        "pub_n": len(ages),
        "pub_p50_us": pct(ages, 0.5),
        "pub_p99_us": pct(ages, 0.99),
        "pub_max_us": ages[-1] if ages else None,
        "pub_min_us": ages[0] if ages else None,
    }, separators=(",", ":")))


if __name__ == "__main__":
    main()
