"""Hand-written SVG line chart of latency percentiles (standard library only).

x: the percentiles (p50, p90, p99, p99.9, max) equally spaced, which is a log scale of
1/(1-q) the way HdrHistogram plots are read; y: latency in microseconds, log scale.
"""
import math

COLORS = {
    "direct": "#7f7f7f",
    "harp": "#d62728",
    "haproxy-splice": "#1f77b4",
    "haproxy": "#17becf",
    "nginx": "#2ca02c",
}
EXTRA = ["#9467bd", "#8c564b", "#e377c2", "#bcbd22"]


def _esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def latency_svg(series, labels, title, subtitle=""):
    """series: {name: [us or None per label]} -> SVG text."""
    w, h = 720, 420
    left, right, top, bottom = 70, 150, 45, 50
    pw, ph = w - left - right, h - top - bottom
    allv = [v for pts in series.values() for v in pts if v]
    lo = 10 ** math.floor(math.log10(max(min(allv), 1))) if allv else 1
    hi = 10 ** math.ceil(math.log10(max(allv) + 1)) if allv else 10
    if hi <= lo:
        hi = lo * 10

    def x(i):
        return left + (pw * i / max(len(labels) - 1, 1))

    def y(v):
        return top + ph - ph * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">{_esc(title)}</text>',
           f'<text x="{w / 2}" y="32" text-anchor="middle" font-size="11" fill="#555">{_esc(subtitle)}</text>']
    dec = lo
    while dec <= hi:
        yy = y(dec)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" stroke="#ddd"/>')
        lab = f"{dec / 1000:g} ms" if dec >= 1000 else f"{dec:g} us"
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{lab}</text>')
        dec *= 10
    for i, lab in enumerate(labels):
        out.append(f'<line x1="{x(i):.1f}" y1="{top}" x2="{x(i):.1f}" y2="{top + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x(i):.1f}" y="{top + ph + 18}" text-anchor="middle">{_esc(lab)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 10}" text-anchor="middle">percentile</text>')
    for n, (name, pts) in enumerate(series.items()):
        color = COLORS.get(name, EXTRA[n % len(EXTRA)])
        coords = [(x(i), y(v)) for i, v in enumerate(pts) if v]
        if len(coords) > 1:
            p = " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
            out.append(f'<polyline points="{p}" fill="none" stroke="{color}" stroke-width="2"/>')
        for a, b in coords:
            out.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{color}"/>')
        ly = top + 10 + 20 * n
        out.append(f'<line x1="{left + pw + 15}" y1="{ly}" x2="{left + pw + 40}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{left + pw + 45}" y="{ly + 4}">{_esc(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
