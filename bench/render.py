"""Render fleet_bench.py result files as the Markdown tables in RESULTS.md.

    .venv/bin/python bench/render.py bench/results-fleet-0ms.json bench/results-fleet-150ms.json
    bench/.work/peers/bin/python bench/render.py --plot bench/fleet-wall.png FILES...

Per file: the single-host table, the fleet table (wall, hosts ok, controller CPU and its
per-host share, peak RSS, node-side CPU per host, load), the wall-vs-hosts curve, and the
goals of issue 15 computed from the numbers (nothing here is a fixed verdict). Older result
files without the newer fields render with "-" in those columns.
"""

from __future__ import annotations

import argparse
import json


def _f(v, fmt: str) -> str:
    return "-" if v is None or v != v else format(v, fmt)


def _nc_wall(run: dict) -> float | None:
    t = run["tools"].get("nodecheck") or {}
    return t.get("wall")


def fleet_table(r: dict) -> list[str]:
    out = ["| hosts | RTT ms | tool | wall s | hosts ok | controller CPU s | controller CPU ms/host | "
           "peak RSS MiB | node CPU ms/host (sshd+probe) | relay CPU s | machine busy CPU s | load (1/5/15 min) before | "
           "conns/host | sessions/host | execs/host | sftp/host | vs nodecheck |",
           "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for run in r["runs"]:
        nc = _nc_wall(run)
        n = run["size"]
        for tool, t in run["tools"].items():
            if "skipped" in t:
                out.append(f"| {n} | {run['rtt_ms']:g} | {tool} | skipped ({t['skipped']}) |" + " |" * 13)
                continue
            ph = t["per_host"]
            ratio = f"{t['wall']/nc:.1f}x" if nc and tool != "nodecheck" else ""
            if t.get("killed_at_limit") or (t.get("rc") or 0) < 0:
                # Stopped before every host finished: the wall is a lower bound.
                tool = f"{tool} (killed, rc {t.get('rc')})"
                ratio = f">= {ratio}" if ratio else ratio
            ok = "-" if t.get("hosts_ok") is None else t["hosts_ok"]
            cpu = t.get("controller_cpu_s")
            node = t.get("node_cpu_s")
            out.append(
                f"| {n} | {run['rtt_ms']:g} | {tool} | {t['wall']:.1f} | {ok} | {_f(cpu, '.1f')} | "
                f"{_f(cpu * 1000 / n if cpu is not None else None, '.1f')} | {t['peak_rss_mb']:.0f} | "
                f"{_f(node * 1000 / n if node is not None else None, '.1f')} | {_f(t.get('relay_cpu_s'), '.1f')} | "
                f"{_f(t.get('machine_busy_s'), '.1f')} | {t.get('load_before', '-')} | {ph['connections']:.2f} | "
                f"{ph['sessions']:.2f} | {ph['exec']:.2f} | {ph['subsystem']:.2f} | {ratio} |")
    return out


def curve(r: dict) -> dict[tuple[float, str], list[tuple[int, float]]]:
    pts: dict[tuple[float, str], list[tuple[int, float]]] = {}
    for run in r["runs"]:
        for tool, t in run["tools"].items():
            if "wall" in t and not t.get("killed_at_limit") and (t.get("rc") or 0) >= 0:
                pts.setdefault((run["rtt_ms"], tool), []).append((run["size"], t["wall"]))
    return pts


def curve_table(r: dict) -> list[str]:
    pts = curve(r)
    sizes = sorted({n for v in pts.values() for n, _ in v})
    if len(sizes) < 2:
        return []
    out = ["| RTT ms | tool | " + " | ".join(f"wall s @ {n}" for n in sizes)
           + " | ms/host @ " + " | ms/host @ ".join(str(n) for n in sizes)
           + " | slope s per 100 hosts (first to last) | wall(last)/wall(first) vs hosts ratio |",
           "|---:|---|" + "---:|" * (2 * len(sizes) + 2)]
    for (rtt, tool), v in pts.items():
        d = dict(v)
        walls = " | ".join(_f(d.get(n), ".1f") for n in sizes)
        per = " | ".join(_f(d[n] * 1000 / n if n in d else None, ".1f") for n in sizes)
        have = [n for n in sizes if n in d]
        if len(have) >= 2:
            a, b = have[0], have[-1]
            slope = (d[b] - d[a]) / (b - a) * 100
            growth = f"{d[b]/d[a]:.2f} vs {b/a:.2f}"
        else:
            slope, growth = None, "-"
        out.append(f"| {rtt:g} | {tool} | {walls} | {per} | {_f(slope, '.2f')} | {growth} |")
    return out


def single_table(r: dict) -> list[str]:
    out = []
    for rtt, s in r.get("single", {}).items():
        out.append(f"| single host, RTT {float(rtt):g} ms (median of 7) | wall ms | vs ssh true (curve25519) |\n|---|---:|---:|")
        base = s.get("ssh true (curve25519)")
        for k, v in s.items():
            if isinstance(v, (int, float)):
                out.append(f"| {k} | {v*1000:.0f} | {v/base:.2f}x |" if base else f"| {k} | {v*1000:.0f} | |")
        out.append(f"\nnodecheck kex: {', '.join(s.get('kex', []))}\n")
    return out


def goals(r: dict) -> list[str]:
    """Issue 15's fleet goals, each computed from this file's numbers."""
    out = []
    for run in r["runs"]:
        nc = run["tools"].get("nodecheck") or {}
        if "wall" not in nc:
            continue
        n, rtt = run["size"], run["rtt_ms"]
        for tool, t in run["tools"].items():
            if tool == "nodecheck" or "wall" not in t:
                continue
            if t.get("killed_at_limit") or (t.get("rc") or 0) < 0:
                out.append(f"- {n} hosts, {rtt:g} ms: vs {tool}: killed after {t['wall']:.0f} s with "
                           f"{t.get('hosts_ok')} of {n} hosts done, so >= {t['wall'] / nc['wall']:.1f}x")
                continue
            want = 10 if tool.startswith("ansible") else 3 if (tool == "pyinfra" and rtt >= 150) else None
            if want:
                x = t["wall"] / nc["wall"]
                out.append(f"- {n} hosts, {rtt:g} ms: vs {tool} {x:.1f}x (goal >= {want}x: "
                           f"{'met' if x >= want else 'missed'})")
        if n >= 1000:
            out.append(f"- {n} hosts, {rtt:g} ms: nodecheck wall {nc['wall']:.1f} s (goal <= 60 s: "
                       f"{'met' if nc['wall'] <= 60 else 'missed'}); peak RSS {nc['peak_rss_mb']:.0f} MiB "
                       f"(goal <= 200 MB = 191 MiB: {'met' if nc['peak_rss_mb'] * 2**20 <= 200e6 else 'missed'})")
    for rtt, s in r.get("single", {}).items():
        base = s.get("ssh true (curve25519)")
        for k in ("nodecheck scan 1 host", "nodecheck run_fleet 1 host (in-process)"):
            if base and k in s:
                x = s[k] / base
                out.append(f"- single host, {float(rtt):g} ms: {k} {x:.2f}x `ssh host true` (curve25519) "
                           f"(goal <= 1.3x: {'met' if x <= 1.3 else 'missed'})")
    return out


def render(paths: list[str]) -> str:
    out = []
    for path in paths:
        r = json.load(open(path))
        out.append(f"### `{path}`\n")
        out.append(f"Command: `sudo .venv/bin/python {' '.join(r['argv'])}` (nproc {r['nproc']})\n")
        if r.get("started"):
            out.append(f"Started {r['started']}; `uptime` at start: `{r.get('uptime_at_start', '')}`")
        if r.get("lab_up_s"):
            argv = r["argv"]
            sizes = argv[argv.index("--sizes") + 1] if "--sizes" in argv else ""
            lab_n = max((int(x) for x in sizes.split(",") if x), default=max(x["size"] for x in r["runs"]))
            out.append("Lab: " + "; ".join(
                f"RTT {float(k):g} ms: {lab_n} hosts up in {v:.0f} s, down in "
                f"{_f(r.get('lab_down_s', {}).get(k), '.0f')} s" for k, v in r["lab_up_s"].items()))
        if r.get("skip"):
            out.append(f"Skipped by --skip: {', '.join(r['skip'])}")
        out.append("")
        if r.get("local"):
            out.append("| local (median of 3) | wall s |\n|---|---:|")
            out += [f"| {k} | {v:.2f} |" for k, v in r["local"].items()]
            out.append("")
        out += single_table(r)
        out += fleet_table(r)
        out.append("")
        for run in r["runs"]:
            if run.get("uptime"):
                out.append(f"- `uptime` before the {run['size']}-host row: `{run['uptime']}`")
        ct = curve_table(r)
        if ct:
            out += ["", "Wall vs hosts:", ""] + ct
        g = goals(r)
        if g:
            out += ["", "Goals (computed from this run):", ""] + g
        out.append("\nExact tool command lines of the last row:\n")
        last = next((run for run in reversed(r["runs"]) if any("cmd" in t for t in run["tools"].values())), None)
        for tool, t in (last or {"tools": {}})["tools"].items():
            if "cmd" in t:
                out.append(f"- {tool}: `{t['cmd']}`")
        out.append("")
    return "\n".join(out)


def plot(paths: list[str], png: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    for path in paths:
        for (rtt, tool), v in curve(json.load(open(path))).items():
            v = sorted(v)
            ax.plot([n for n, _ in v], [w for _, w in v], marker="o", label=f"{tool}, {rtt:g} ms RTT",
                    linestyle="-" if tool == "nodecheck" else "--")
    ax.set_xlabel("hosts")
    ax.set_ylabel("wall s")
    ax.set_title("Fleet scan wall time vs hosts (lab on one 2-core machine, forks 50)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=100)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--plot", default=None, help="also write the wall-vs-hosts curve as a PNG (needs matplotlib)")
    a = ap.parse_args()
    print(render(a.files))
    if a.plot:
        plot(a.files, a.plot)
