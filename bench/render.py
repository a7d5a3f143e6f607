"""Render bench/results.json (from fleet_bench.py) as the Markdown tables in RESULTS.md."""

from __future__ import annotations

import json
import sys


def render(paths: list[str]) -> str:
    out = []
    for path in paths:
        r = json.load(open(path))
        out.append(f"Command: `sudo .venv/bin/python {' '.join(r['argv'])}` (nproc {r['nproc']})\n")
        if r.get("local"):
            out.append("| local (median of 3) | wall s |\n|---|---:|")
            out += [f"| {k} | {v:.2f} |" for k, v in r["local"].items()]
            out.append("")
        for rtt, s in r.get("single", {}).items():
            out.append(f"| single host, RTT {float(rtt):g} ms (median of 7) | wall ms |\n|---|---:|")
            out += [f"| {k} | {v*1000:.0f} |" for k, v in s.items() if isinstance(v, (int, float))]
            out.append(f"\nnodecheck kex: {', '.join(s.get('kex', []))}\n")
        out.append("| hosts | RTT ms | tool | wall s | hosts ok | peak RSS MiB | controller CPU s | conns/host | sessions/host | execs/host | sftp/host | vs nodecheck |")
        out.append("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for run in r["runs"]:
            nc = run["tools"].get("nodecheck", {}).get("wall")
            for tool, t in run["tools"].items():
                ph = t["per_host"]
                ratio = f"{t['wall']/nc:.1f}x" if nc and tool != "nodecheck" else ""
                ok = "-" if t["hosts_ok"] is None else t["hosts_ok"]
                out.append(f"| {run['size']} | {run['rtt_ms']:g} | {tool} | {t['wall']:.1f} | {ok} | "
                           f"{t['peak_rss_mb']:.0f} | {t.get('controller_cpu_s', float('nan')):.1f} | {ph['connections']:.2f} | {ph['sessions']:.2f} | "
                           f"{ph['exec']:.2f} | {ph['subsystem']:.2f} | {ratio} |")
        out.append("\nExact tool command lines of the last run:\n")
        for tool, t in r["runs"][-1]["tools"].items():
            out.append(f"- {tool}: `{t['cmd']}`")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(sys.argv[1:]))
