#!/usr/bin/env python3
"""Thousands of clients queued behind a server `maxconn`: the proxy's CPU and the wall time.

Usage: queue_storm.py [--clients N] [--maxconn M,...] [--repeats R] TARGET...
TARGET is `haproxy` or the path of a harp binary (two harp builds give a same-run A/B).

The case HAProxy's queues exist for: a backend protected by `maxconn`, a burst of N clients
(default 3,000) opened at once, each sending 100 bytes and reading the upstream's 100-byte
answer until the upstream closes (`harp-perf upstream` in `once` mode, started here). Every
client has to wait its turn in the queue; how the proxy hands freed slots to waiters decides
its CPU: one wake-up per freed slot (HAProxy, harp since 2026-11-25 14:00) or one per waiter.
Targets run interleaved, R times each per maxconn; every run starts a fresh proxy. Prints one
line per run (proxy CPU seconds from /proc, wall time, client latencies) and the medians. The
client is one asyncio process, so wall time has the client's own floor (~0.7 s for 3,000 here);
the proxy CPU is the figure to compare.
"""
import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERF = os.path.join(ROOT, "target", "release", "harp-perf")

CONFIG = """global
    nbthread 2
    maxconn 9000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout queue 60s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{up} maxconn {maxconn}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def client(port, lat, errors):
    t = time.monotonic()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"x" * 100)
        await w.drain()
        got = 0
        while True:
            chunk = await r.read(65536)
            if not chunk:
                break
            got += len(chunk)
        w.close()
        if got != 100:
            errors.append(f"{got} bytes")
        lat.append(time.monotonic() - t)
    except OSError as e:
        errors.append(repr(e))


async def storm(port, n, pid):
    lat, errors = [], []
    c0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.gather(*(client(port, lat, errors) for _ in range(n)))
    wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - c0
    lat.sort()
    p50 = lat[len(lat) // 2] if lat else float("nan")
    return {"cpu": cpu, "wall": wall, "p50": p50, "max": lat[-1] if lat else 0, "errors": errors}


def wait_port(port, proc):
    for _ in range(100):
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def run(target, port, up, maxconn, n, work):
    cfg = os.path.join(work, "storm.cfg")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(port=port, up=up, maxconn=maxconn))
    cmd = ["haproxy", "-db", "-f", cfg] if target == "haproxy" else [target, "-f", cfg]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_port(port, proc):
            return None
        return asyncio.run(storm(port, n, proc.pid))
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=3000)
    ap.add_argument("--maxconn", default="10,1")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    up = free_port()
    upstream = subprocess.Popen([PERF, "upstream", "--listen", f"once@127.0.0.1:{up}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {}
    try:
        if not wait_port(up, upstream):
            sys.exit(f"harp-perf upstream did not start ({PERF})")
        with tempfile.TemporaryDirectory() as work:
            for m in [int(x) for x in a.maxconn.split(",")]:
                for rep in range(a.repeats):
                    # rotate the order so that no target always runs first
                    order = a.targets[rep % len(a.targets):] + a.targets[:rep % len(a.targets)]
                    for t in order:
                        r = run(t, free_port(), up, m, a.clients, work)
                        label = os.path.basename(t)
                        if r is None:
                            print(f"maxconn {m} rep {rep + 1} {label}: did not start")
                            continue
                        results.setdefault((m, t), []).append(r)
                        print(f"maxconn {m} rep {rep + 1} {label}: cpu {r['cpu']:.2f} s, "
                              f"wall {r['wall']:.2f} s, p50 {r['p50'] * 1000:.0f} ms, "
                              f"max {r['max'] * 1000:.0f} ms, errors {len(r['errors'])} "
                              f"{r['errors'][:2]}", flush=True)
    finally:
        upstream.kill()
        upstream.wait()
    print(f"\nmedians over {a.repeats} runs, {a.clients} clients at once:")
    print("| maxconn | target | proxy CPU s | wall s | client p50 ms |")
    print("|---|---|---|---|---|")
    for (m, t), rs in sorted(results.items(), key=lambda kv: (-kv[0][0], kv[0][1])):
        med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
        print(f"| {m} | {t} | {med('cpu'):.2f} | {med('wall'):.2f} | {med('p50') * 1000:.0f} |")


if __name__ == "__main__":
    main()
