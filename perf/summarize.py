#!/usr/bin/env python3
"""Turn perf/compare.sh's raw JSON lines into perf/results/<date>.md and an rr latency SVG.

Usage: summarize.py RAW.jsonl META OUT.md OUT.svg   (standard library only)

Ratios are computed per repeat (harp's run divided by the other target's run of the same
repeat, which ran next to it in time) and the median of those ratios is reported with its
min-max, so slow drifts of background load cancel instead of skewing the comparison.
"""
import json
import os
import statistics
import sys

from plot import latency_svg

# scenario -> (headline key, label, higher_is_better, cpu key, cpu label)
SCEN = {
    "throughput": ("gbit_s", "Gbit/s", True, "cpu_s_per_gb", "proxy CPU-s/GB"),
    "connrate": ("conn_s", "conn/s", True, "cpu_us_per_conn", "proxy CPU-us/conn"),
    "rr": ("p99_us", "p99 us", False, "cpu_us_per_req", "proxy CPU-us/req"),
    "events": ("p99_us", "p99 us", False, "cpu_us_per_req", "proxy CPU-us/req"),
    "idle": ("rss_per_conn_b", "proxy RSS B/conn", False, "rss_kib", "proxy RSS KiB (held)"),
}
ORDER = ["direct", "harp", "harp-spin", "haproxy-splice", "haproxy", "nginx"]
PCTS = [("p50_us", "p50"), ("p90_us", "p90"), ("p99_us", "p99"), ("p999_us", "p99.9"), ("max_us", "max")]


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}f}"


def med_range(vals, digits=2):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt(m, digits)
    return f"{fmt(m, digits)} ({fmt(min(vals), digits)}-{fmt(max(vals), digits)})"


def main():
    raw, meta_path, out_md, out_svg = sys.argv[1:5]
    runs = []
    with open(raw) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    runs.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    meta = {}
    with open(meta_path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v

    def ok(r):
        return r.get("status") == "ok" and isinstance(r.get("result"), dict)

    targets = [t for t in ORDER if any(r["target"] == t for r in runs)]
    targets += sorted({r["target"] for r in runs} - set(targets))
    scenarios = [s for s in SCEN if any(r["scenario"] == s for r in runs)]

    def vals(sc, t, key):
        return [r["result"].get(key) for r in runs if r["scenario"] == sc and r["target"] == t and ok(r)]

    def by_rep(sc, t, key):
        return {r["rep"]: r["result"].get(key) for r in runs
                if r["scenario"] == sc and r["target"] == t and ok(r) and r["result"].get(key) is not None}

    md = []
    md.append(f"# harp-perf comparison {meta.get('date', '')}")
    md.append("")
    md.append(f"Command: `{meta.get('command', '')}`  ")
    md.append(f"Machine: {meta.get('cpus')} CPUs ({meta.get('cpu_model')}), kernel {meta.get('kernel')}  ")
    md.append(f"harp {meta.get('harp')}; {meta.get('haproxy')}; {meta.get('nginx')}  ")
    if meta.get("harp_b"):
        md.append(f"harp-b {meta.get('harp_b')}  ")
    md.append(f"{meta.get('repeats')} repeats x {meta.get('duration')} s measured (+{meta.get('warmup')} s warm-up), "
              f"{meta.get('threads')} proxy threads/workers, pinning: {meta.get('pin')}, "
              f"Lua priority: {meta.get('lua_sched', 'n/a')}, cpu_dma_latency held: {meta.get('cpu_latency', 'no')}, "
              f"TCP congestion control: {meta.get('tcp_cc', 'system default')}  ")
    md.append(f"throughput: {meta.get('tp')}; connrate: {meta.get('connrate')}; rr: {meta.get('rr')}")
    md.append("")
    md.append("Cells are `median (min-max)` over repeats; `n/a` = the target could not start or did not forward.")
    md.append("")

    for sc in scenarios:
        key, label, higher, ckey, clabel = SCEN[sc]
        md.append(f"## {sc}")
        md.append("")
        if sc in ("rr", "events"):
            ev = sc == "events"
            if ev:
                md.append(f"{meta.get('events', 'rr load while a server flaps')}. "
                          "Flap columns: Runtime API commands that succeeded / sent, and their round-trip p99.")
                md.append("")
            md.append(f"| target | ok runs | req/s | p50 us | p90 us | p99 us | p99.9 us | max us | {clabel} |"
                      + (" flap ok / sent | flap rtt p99 us |" if ev else ""))
            md.append("|---|---|---|---|---|---|---|---|---|" + ("---|---|" if ev else ""))
            for t in targets:
                if not any(r["scenario"] == sc and r["target"] == t for r in runs):
                    continue
                n = len(vals(sc, t, "req_s"))
                cells = [med_range(vals(sc, t, "req_s"), 0)]
                cells += [med_range(vals(sc, t, k), 0) for k, _ in PCTS]
                cells.append(med_range(vals(sc, t, ckey), 1))
                if ev:
                    fl = [r.get("flap") for r in runs if r["scenario"] == sc and r["target"] == t
                          and isinstance(r.get("flap"), dict)]
                    cells.append(f"{sum(f.get('ok') or 0 for f in fl)} / {sum(f.get('commands') or 0 for f in fl)}")
                    cells.append(med_range([f.get("rtt_p99_us") for f in fl], 0))
                md.append(f"| {t} | {n} | " + " | ".join(cells) + " |")
            if ev:
                md.append("")
                md.append("Did I/O latency move? p99 with flapping / p99 of the plain rr run of the same repeat "
                          "(median (min-max); 1.0 = unchanged):")
                md.append("")
                md.append("| target | p99 events / p99 rr |")
                md.append("|---|---|")
                for t in targets:
                    e, r0 = by_rep("events", t, "p99_us"), by_rep("rr", t, "p99_us")
                    if e:
                        rs = [e[k] / r0[k] for k in e if k in r0 and r0[k]]
                        md.append(f"| {t} | {med_range(rs, 3)} |")
                evr = [r for r in runs if r["scenario"] == "events" and isinstance(r.get("evlat"), dict)]
                if evr:
                    md.append("")
                    md.append("Event-to-Lua-callback latency (perf/events_probe.lua; harp only, HAProxy 2.6 has no "
                              "`core.event_sub`). **send->cb**: callback wall-clock time minus the send time of the "
                              "matching `disable/enable server` command, so it includes the Runtime API connect + "
                              "parse. **publish->cb**: the event's age on harp's bus when the callback starts "
                              "(`core.harp_event_age_us()`), the event path alone. Target: p99 < 1,000 us. "
                              "Cells: median (min-max) over runs.")
                    md.append("")
                    md.append("| target | callbacks / commands | send->cb p50 us | send->cb p99 us | send->cb max us "
                              "| publish->cb p50 us | publish->cb p99 us | publish->cb max us |")
                    md.append("|---|---|---|---|---|---|---|---|")
                    for t in targets:
                        el = [r["evlat"] for r in evr if r["target"] == t]
                        if not el:
                            continue
                        md.append(f"| {t} | {sum(x.get('callbacks') or 0 for x in el)} / "
                                  f"{sum(x.get('commands') or 0 for x in el)} | "
                                  + " | ".join(med_range([x.get(k) for x in el], 0)
                                               for k in ("p50_us", "p99_us", "max_us",
                                                         "pub_p50_us", "pub_p99_us", "pub_max_us")) + " |")
                splits = [r for r in evr if r["target"] == "harp-spin" and isinstance(r.get("spinsplit"), dict)]
                if splits:
                    md.append("")
                    md.append("Lua callback spinning, **same run** (harp-spin: every other SERVER_ADMIN callback "
                              "busy-loops in pure Lua, so the Lua thread spins one second and idles the next; "
                              "perf/spinsplit.py splits the rr requests by the second they were sent in). "
                              "Target: p99 moves by < 5 % (ratio < 1.05). Per repeat, median (min-max), and "
                              "every repeat's requests pooled:")
                    md.append("")
                    md.append("| spinning / idle seconds | per repeat | pooled | pooled spinning us | pooled idle us |")
                    md.append("|---|---|---|---|---|")
                    pooled = {}
                    try:
                        pooled = json.loads(meta.get("spin_pooled") or "{}")
                    except json.JSONDecodeError:
                        pass
                    for k, lab in PCTS[:4]:
                        rk = k.replace("_us", "_ratio")
                        pr = pooled.get(rk)
                        md.append(f"| {lab} | {med_range([x['spinsplit'].get(rk) for x in splits], 3)} | "
                                  f"{fmt(pr, 3) if pr else 'n/a'} | {(pooled.get('spin') or {}).get(k, 'n/a')} | "
                                  f"{(pooled.get('plain') or {}).get(k, 'n/a')} |")
                    wr = pooled.get("window_p99_ratio")
                    if wr:
                        md.append(f"| p99 of the typical second (median over seconds of their own p99) | | "
                                  f"{fmt(wr, 3)} | {pooled['window_p99_median_us']['spin']} | "
                                  f"{pooled['window_p99_median_us']['plain']} |")
                    pr = pooled.get("paired_p99_ratio")
                    if pr:
                        md.append(f"| p99 of a spinning second / its idle neighbours', median over "
                                  f"{pooled.get('pairs')} seconds | "
                                  f"{med_range([x['spinsplit'].get('paired_p99_ratio') for x in splits], 3)} | "
                                  f"{fmt(pr, 3)} | | |")
                    onset = pooled.get("onset") or {}
                    for k, lab in PCTS[:3]:
                        rk = k.replace("_us", "_ratio")
                        if onset.get(rk):
                            md.append(f"| {lab}, requests sent in a second's first "
                                      f"{onset['first_us'] // 1000} ms (the spin's onset) | "
                                      f"{med_range([(x['spinsplit'].get('onset') or {}).get(rk) for x in splits], 3)} | "
                                      f"{fmt(onset[rk], 3)} | {onset['spin'].get(k)} | {onset['plain'].get(k)} |")
                h, sp = by_rep("events", "harp", "p99_us"), by_rep("events", "harp-spin", "p99_us")
                if sp:
                    md.append("")
                    md.append("Across runs (harp-spin vs harp with the non-spinning probe, same repeat; "
                              "the spinning run spins half the time, and separate runs differ by 3-10x in p99 "
                              "on a shared machine, so the same-run table above is the one to judge by):")
                    md.append("")
                    md.append("| ratio | median (min-max) |")
                    md.append("|---|---|")
                    for k, lab in PCTS:
                        a, b = by_rep("events", "harp-spin", k), by_rep("events", "harp", k)
                        rs = [a[rep] / b[rep] for rep in a if rep in b and b[rep]]
                        md.append(f"| {lab} harp-spin / harp | {med_range(rs, 3)} |")
        else:
            md.append(f"| target | ok runs | {label} | {clabel} | errors |")
            md.append("|---|---|---|---|---|")
            for t in targets:
                if not any(r["scenario"] == sc and r["target"] == t for r in runs):
                    continue
                v = vals(sc, t, key)
                errs = sum(e or 0 for e in vals(sc, t, "errors"))
                md.append(f"| {t} | {len(v)} | {med_range(v)} | {med_range(vals(sc, t, ckey), 3)} | {errs} |")
            if sc == "idle":
                md.append("")
                md.append(f"Connections held: {meta.get('idle', '')}; direct has no proxy, so no RSS. "
                          "Per 10k connections = B/conn x 10,000.")
        md.append("")
        if "harp" in targets:
            others = [t for t in targets if t != "harp"
                      and any(r["scenario"] == sc and r["target"] == t for r in runs)]
            cols = [(key, label)]
            if not (sc in ("rr", "events") and ckey == "cpu_s") and not (sc == "idle"):
                cols.append((ckey, clabel))

            def ratio(o, k):
                h, x = by_rep(sc, "harp", k), by_rep(sc, o, k)
                rs = [h[rep] / x[rep] for rep in h if rep in x and x[rep]]
                return med_range(rs, 3)

            md.append(f"Ratios harp / other, per repeat, median (min-max); "
                      f"{label}: {'higher' if higher else 'lower'} is better for harp"
                      + ("; CPU: lower is better." if len(cols) > 1 else "."))
            md.append("")
            md.append("| harp / ... | " + " | ".join(lab for _, lab in cols) + " |")
            md.append("|---|" + "---|" * len(cols))
            for o in others:
                md.append(f"| {o} | " + " | ".join(ratio(o, k) for k, _ in cols) + " |")
            md.append("")

    if "rr" in scenarios:
        series = {}
        for t in targets:
            pts = []
            for k, _ in PCTS:
                v = [x for x in vals("rr", t, k) if x]
                pts.append(statistics.median(v) if v else None)
            if any(p is not None for p in pts):
                series[t] = pts
        if series:
            svg = latency_svg(series, [lab for _, lab in PCTS],
                              "rr latency percentiles (median of repeats)",
                              meta.get("rr", "").split(" (")[0] + f"; {meta.get('threads')} proxy threads, "
                              f"pinning {meta.get('pin')}, {meta.get('date')}")
            with open(out_svg, "w") as f:
                f.write(svg)
            md.append(f"![rr latency percentiles]({os.path.basename(out_svg)})")
            md.append("")

    md.append("## Runs")
    md.append("")
    md.append("Background: `loadavg` = 1-minute load average before the run; `busy` = fraction of all CPUs "
              "busy in the 0.5 s before the run (proxy stopped).")
    md.append("")
    md.append("| rep | scenario | target | status | headline | proxy CPU | loadavg | busy | HAProxy spliced / bytes out |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        sc = r["scenario"]
        key, label, _, ckey, _ = SCEN.get(sc, ("", "", True, "", ""))
        res = r["result"] if isinstance(r.get("result"), dict) else {}
        head = f"{fmt(res.get(key))} {label}" if ok(r) else "n/a"
        cpu = fmt(res.get(ckey), 3) if ok(r) else "n/a"
        sp = ""
        if r.get("spliced_out") is not None and r.get("bytes_out"):
            sp = f"{r['spliced_out']:,} / {r['bytes_out']:,} ({100.0 * r['spliced_out'] / r['bytes_out']:.0f} %)"
        md.append(f"| {r['rep']} | {sc} | {r['target']} | {r['status']} | {head} | {cpu} | "
                  f"{r.get('loadavg')} | {fmt(r.get('busy_before'))} | {sp} |")
    md.append("")
    with open(out_md, "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
