#!/usr/bin/env python3
"""Summarise the live-video benchmark (bench/live.sh): markdown table on stdout, raw runs and
summary as JSON, and an SVG chart of frame age at the slow subscriber. Standard library only.

    report.py --raw RAW.jsonl --meta META.json --json OUT.json --svg OUT.svg
"""

import argparse
import json
import statistics
from collections import defaultdict

# Goals of issue 3.
GOAL_THROUGHPUT_RATIO = 1.0  # framewire (two hops) ÷ ImageZMQ REQ/REP (one hop)
GOAL_P99_US = 2000  # framewire, 30 fps, loopback
GOAL_SLOW_AGE_MS = 150  # framewire, every frame at the slow subscriber

FW_COLOR = "#1f6fb4"
IZ_COLOR = "#d62728"


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------------------------
# Slow-subscriber figures
# --------------------------------------------------------------------------------------------


def slow_figures(r):
    """Age at the start (mean over the first second), near 4 s, at the end (mean over the last
    second), and the maximum, ms."""
    s = r["samples_ms"]
    end_t = s[-1][0]
    first = [a for t, a in s if t < 1000] or [s[0][1]]
    last = [a for t, a in s if t >= end_t - 1000] or [s[-1][1]]
    at4 = min(s, key=lambda p: abs(p[0] - 4000))[1]
    return {
        "start_ms": sum(first) / len(first),
        "at_4s_ms": at4,
        "end_ms": sum(last) / len(last),
        "max_ms": max(a for _, a in s),
        "slow_fps": r["slow_fps"],
        "fast_fps": r["fast_fps"],
    }


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


def summarise(rows):
    by = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["run"]):
        by[row["name"]].append(row["result"])

    def per_run(name, f):
        return [f(r) for r in by[name]]

    out = {}
    for name in ("fw-throughput", "izmq-throughput"):
        fps = per_run(name, lambda r: r["fps"])
        mbs = per_run(name, lambda r: r["mb_per_s"])
        cpu = [c for c in per_run(name, lambda r: r["cpu"]["us_per_frame"]) if c is not None]
        out[name] = {"fps_runs": fps, "fps": median(fps), "mb_per_s_runs": mbs, "mb_per_s": median(mbs),
                     "cpu_us_per_frame_runs": cpu, "cpu_us_per_frame": median(cpu)}
    for name in ("fw-latency", "izmq-latency", "fw-latency-rt", "izmq-latency-rt"):
        if not by[name]:
            continue
        d = {}
        for q in ("p50_us", "p90_us", "p99_us", "max_us", "mean_us"):
            v = per_run(name, lambda r, q=q: r["age"][q])
            d[q + "_runs"] = v
            d[q] = median(v)
        d["received_runs"] = per_run(name, lambda r: r["received"])
        late = per_run(name, lambda r: r["timer_lateness"]["p99_us"])
        d["timer_lateness_p99_us_runs"] = late
        d["timer_lateness_p99_us"] = median(late)
        out[name] = d
    for name in ("fw-slow", "izmq-slow"):
        figs = per_run(name, slow_figures)
        d = {k: median([f[k] for f in figs]) for k in figs[0]}
        d["runs"] = figs
        d["max_ms_all_runs"] = max(f["max_ms"] for f in figs)
        out[name] = d
    return out, by


def fmt(x, digits=0):
    return f"{x:,.{digits}f}"


def ms(us):
    return f"{us / 1e3:.2f}"


def table(s, meta):
    fw, iz = s["fw-throughput"], s["izmq-throughput"]
    fl, il = s["fw-latency"], s["izmq-latency"]
    fs, is_ = s["fw-slow"], s["izmq-slow"]
    t_ratio = fw["fps"] / iz["fps"]
    yes = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    runs = lambda xs, d=0: ", ".join(fmt(x, d) for x in xs)  # noqa: E731
    runs_ms = lambda xs: ", ".join(ms(x) for x in xs)  # noqa: E731

    L = []
    L.append(f"## Live-video benchmark — {meta['date_utc']}")
    L.append("")
    L.append(f"- machine: {meta['machine']}; load average at start {meta['load_start']}, at end {meta['load_end']}")
    L.append(f"- CPU used by everything else during the run: {meta['other_cpu']} — well above ~10% means the figures are disturbed")
    L.append(f"- framewire {meta['framewire']}; ImageZMQ {meta['imagezmq']}, pyzmq {meta['pyzmq']} (libzmq {meta['libzmq']}), Python {meta['python']}")
    L.append(f"- frames: {meta['frame_count']} JPEGs from `{meta['frames']}`; {meta['runs']} runs per measurement, median shown (every run listed); wall time {meta['wall_s']:.0f} s")
    L.append("- framewire: publisher → hub → subscriber (two hops). ImageZMQ: sender → hub (one hop); REQ/REP for throughput and latency, PUB/SUB for the slow subscriber.")
    L.append("- ratio: frames/s and MB/s rows framewire ÷ ImageZMQ; age and CPU rows ImageZMQ ÷ framewire. Above 1× means framewire is better.")
    L.append("")
    L.append("| measure | framewire | ImageZMQ | ratio | goal | met |")
    L.append("|---|---:|---:|---:|---|---|")
    L.append(f"| throughput, frames/s (runs: fw {runs(fw['fps_runs'])}; izmq {runs(iz['fps_runs'])}) | {fmt(fw['fps'])} | {fmt(iz['fps'])} | {t_ratio:.2f}× | ≥ {GOAL_THROUGHPUT_RATIO:g}× | {yes(t_ratio >= GOAL_THROUGHPUT_RATIO)} |")
    L.append(f"| throughput, MB/s | {fmt(fw['mb_per_s'])} | {fmt(iz['mb_per_s'])} | {fw['mb_per_s'] / iz['mb_per_s']:.2f}× | | |")
    L.append(f"| throughput, CPU per delivered frame, µs, all processes (runs: fw {runs(fw['cpu_us_per_frame_runs'])}; izmq {runs(iz['cpu_us_per_frame_runs'])}) | {fmt(fw['cpu_us_per_frame'])} | {fmt(iz['cpu_us_per_frame'])} | {iz['cpu_us_per_frame'] / fw['cpu_us_per_frame']:.2f}× | | |")
    L.append(f"| latency at 30 fps, p50 ms (runs: fw {runs_ms(fl['p50_us_runs'])}; izmq {runs_ms(il['p50_us_runs'])}) | {ms(fl['p50_us'])} | {ms(il['p50_us'])} | {il['p50_us'] / fl['p50_us']:.2f}× | | |")
    L.append(f"| latency at 30 fps, p90 ms | {ms(fl['p90_us'])} | {ms(il['p90_us'])} | {il['p90_us'] / fl['p90_us']:.2f}× | | |")
    L.append(f"| latency at 30 fps, p99 ms (runs: fw {runs_ms(fl['p99_us_runs'])}; izmq {runs_ms(il['p99_us_runs'])}) | {ms(fl['p99_us'])} | {ms(il['p99_us'])} | {il['p99_us'] / fl['p99_us']:.2f}× | framewire ≤ {GOAL_P99_US / 1e3:g} ms | {yes(fl['p99_us'] <= GOAL_P99_US)} |")
    L.append(f"| latency at 30 fps, max ms (runs: fw {runs_ms(fl['max_us_runs'])}; izmq {runs_ms(il['max_us_runs'])}) | {ms(fl['max_us'])} | {ms(il['max_us'])} | {il['max_us'] / fl['max_us']:.2f}× | | |")
    if "fw-latency-rt" in s and "izmq-latency-rt" in s:
        fr, ir = s["fw-latency-rt"], s["izmq-latency-rt"]
        for q, label in (("p50_us", "p50"), ("p99_us", "p99"), ("max_us", "max")):
            L.append(f"| diagnostic: latency at 30 fps under `chrt -f 1`, {label} ms (runs: fw {runs_ms(fr[q + '_runs'])}; izmq {runs_ms(ir[q + '_runs'])}) | {ms(fr[q])} | {ms(ir[q])} | {ir[q] / fr[q]:.2f}× | | |")
    L.append(f"| noise: how late the 30 fps timer woke the sender, p99 ms (runs: fw {runs_ms(fl['timer_lateness_p99_us_runs'])}; izmq {runs_ms(il['timer_lateness_p99_us_runs'])}) | {ms(fl['timer_lateness_p99_us'])} | {ms(il['timer_lateness_p99_us'])} | | (tokio's timer rounds up to 1 ms; Python's sleep does not) | |")
    L.append(f"| slow subscriber, age in the first second, ms | {fmt(fs['start_ms'], 1)} | {fmt(is_['start_ms'], 1)} | {is_['start_ms'] / fs['start_ms']:.1f}× | | |")
    L.append(f"| slow subscriber, age at 4 s, ms | {fmt(fs['at_4s_ms'], 1)} | {fmt(is_['at_4s_ms'], 1)} | — | | |")
    L.append(f"| slow subscriber, age in the last second (≈ 5–6 s), ms | {fmt(fs['end_ms'], 1)} | {fmt(is_['end_ms'], 1)} | {is_['end_ms'] / fs['end_ms']:.0f}× | | |")
    L.append(f"| slow subscriber, max age, ms (runs: fw {runs([f['max_ms'] for f in fs['runs']], 1)}; izmq {runs([f['max_ms'] for f in is_['runs']], 0)}) | {fmt(fs['max_ms'], 1)} | {fmt(is_['max_ms'], 1)} | {is_['max_ms'] / fs['max_ms']:.0f}× | framewire < {GOAL_SLOW_AGE_MS} ms, flat (every frame of every run) | {yes(fs['max_ms_all_runs'] < GOAL_SLOW_AGE_MS)} |")
    L.append(f"| slow subscriber, frames/s | {fmt(fs['slow_fps'], 1)} | {fmt(is_['slow_fps'], 1)} | | | |")
    L.append(f"| fast subscriber alongside, frames/s (60 published) | {fmt(fs['fast_fps'], 1)} | {fmt(is_['fast_fps'], 1)} | | | |")
    return "\n".join(L)


# --------------------------------------------------------------------------------------------
# SVG
# --------------------------------------------------------------------------------------------


def nice_step(span, target=5):
    import math

    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def representative(results, key="end_ms"):
    """The run whose figure is the median one, so the chart shows a typical run."""
    ranked = sorted(results, key=lambda r: slow_figures(r)[key])
    return ranked[(len(ranked) - 1) // 2]


def svg_chart(fw_run, iz_run, seconds, fps, sleep_ms):
    W, H = 820, 600
    left, right = 78, 24
    pw = W - left - right
    esc = lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # noqa: E731
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="#ffffff"/>',
        f'<text x="{W / 2}" y="26" text-anchor="middle" font-size="16" font-weight="bold">'
        f"Frame age at a slow subscriber ({sleep_ms} ms per frame), publisher at {fps:g} fps</text>",
        f'<text x="{W / 2}" y="46" text-anchor="middle" fill="#555">'
        "framewire (publisher → hub → subscriber) vs ImageZMQ PUB/SUB (publisher → subscriber), loopback</text>",
    ]
    x_max_ms = max(seconds * 1000, fw_run["samples_ms"][-1][0], iz_run["samples_ms"][-1][0])
    x_step = 1000

    def panel(top, height, series, y_max, title, goal=None):
        y_step = nice_step(y_max)
        y_top = y_step * -(-y_max // y_step)
        sx = lambda t: left + pw * t / x_max_ms  # noqa: E731
        sy = lambda a: top + height - height * a / y_top  # noqa: E731
        g = [f'<text x="{left}" y="{top - 8}" font-weight="bold">{esc(title)}</text>']
        # grid and y ticks
        v = 0.0
        while v <= y_top + 1e-9:
            y = sy(v)
            g.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#e6e6e6"/>')
            label = f"{v:,.0f}" if y_step >= 1 else f"{v:g}"
            g.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
            v += y_step
        # x ticks
        t = 0
        while t <= x_max_ms + 1e-9:
            x = sx(t)
            g.append(f'<line x1="{x:.1f}" y1="{top + height}" x2="{x:.1f}" y2="{top + height + 5}" stroke="#333"/>')
            g.append(f'<text x="{x:.1f}" y="{top + height + 18}" text-anchor="middle">{t / 1000:g}</text>')
            t += x_step
        # axes
        g.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + height}" stroke="#333"/>')
        g.append(f'<line x1="{left}" y1="{top + height}" x2="{left + pw}" y2="{top + height}" stroke="#333"/>')
        g.append(
            f'<text transform="translate({left - 52},{top + height / 2}) rotate(-90)" text-anchor="middle">'
            "frame age on arrival (ms)</text>"
        )
        g.append(f'<text x="{left + pw / 2}" y="{top + height + 34}" text-anchor="middle">time since the first frame was published (s)</text>')
        if goal is not None:
            y = sy(goal)
            g.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#2ca02c" stroke-dasharray="6 4"/>')
            g.append(f'<text x="{left + pw - 4}" y="{y - 5:.1f}" text-anchor="end" fill="#2ca02c">goal: under {goal:g} ms</text>')
        for samples, color in series:
            pts = " ".join(f"{sx(t):.1f},{sy(a):.1f}" for t, a in samples)
            g.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
            g.extend(f'<circle cx="{sx(t):.1f}" cy="{sy(a):.1f}" r="2.2" fill="{color}"/>' for t, a in samples)
        return g

    fw_s, iz_s = fw_run["samples_ms"], iz_run["samples_ms"]
    iz_max = max(a for _, a in iz_s)
    fw_max = max(a for _, a in fw_s)
    out += panel(84, 270, [(iz_s, IZ_COLOR), (fw_s, FW_COLOR)], max(iz_max, fw_max, 1),
                 "Both, same scale")
    out += panel(430, 110, [(fw_s, FW_COLOR)], max(GOAL_SLOW_AGE_MS * 1.2, fw_max),
                 "framewire alone, zoomed", goal=GOAL_SLOW_AGE_MS)
    # legend
    lx, ly = left + 16, 100
    out.append(f'<rect x="{lx - 8}" y="{ly - 14}" width="360" height="48" fill="#ffffff" stroke="#cccccc"/>')
    fw_last = fw_s[-1]
    iz_last = iz_s[-1]
    for i, (label, color) in enumerate((
        (f"ImageZMQ PUB/SUB — {iz_last[1] / 1000:.1f} s old at {iz_last[0] / 1000:.1f} s", IZ_COLOR),
        (f"framewire — {fw_last[1]:.0f} ms old at {fw_last[0] / 1000:.1f} s (max {fw_max:.0f} ms)", FW_COLOR),
    )):
        y = ly + i * 20
        out.append(f'<line x1="{lx}" y1="{y - 4}" x2="{lx + 24}" y2="{y - 4}" stroke="{color}" stroke-width="3"/>')
        out.append(f'<text x="{lx + 32}" y="{y}">{esc(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--raw", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--svg", required=True)
    a = p.parse_args()
    with open(a.raw) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    with open(a.meta) as f:
        meta = json.load(f)
    summary, by = summarise(rows)
    md = table(summary, meta)
    fw_run = representative(by["fw-slow"])
    iz_run = representative(by["izmq-slow"])
    with open(a.svg, "w") as f:
        f.write(svg_chart(fw_run, iz_run, meta["seconds"]["slow"], fw_run["fps"], fw_run["sleep_ms"]))
    with open(a.json, "w") as f:
        json.dump({"meta": meta, "summary": summary, "runs": rows}, f, indent=1)
        f.write("\n")
    print(md)


if __name__ == "__main__":
    main()
