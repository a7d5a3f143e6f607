#!/usr/bin/env python3
"""Start-up and local-scan wall time: `nodecheck scan` of this machine vs `ansible -m setup`.

Every tool runs --runs times, interleaved (one round runs each tool once, in order), so load
from other work on the machine falls on all of them alike; the table gives the median and
the spread. Rows:
  python -c pass            the interpreter's own start (the floor under any Python CLI)
  probe alone               `sh -s -- /` with the probe on stdin (what the scan must wait for)
  nodecheck --help          start-up of the CLI, no work
  nodecheck scan            this machine, JSON to /dev/null (the target: <= 0.15 s)
  ansible localhost setup   `ansible localhost -c local -m setup` (the target: scan >= 12x faster)

    .venv/bin/python bench/local_bench.py [--runs 11] [--json FILE] [--no-ansible] [--variant LABEL=DIR]...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def probe_cmd() -> list[str]:
    return ["sh", "-s", "--", "/"]


def tools(with_ansible: bool, variants: list[str]) -> dict[str, tuple[list[str], bytes | None]]:
    sys.path.insert(0, str(REPO))
    from nodecheck import probe

    t = {
        "python -c pass": ([sys.executable, "-c", "pass"], None),
        "probe alone (sh)": (probe_cmd(), probe.script().encode()),
    }
    # --variant LABEL=DIR runs another checkout's nodecheck (e.g. `git archive` of an older
    # commit) with the same interpreter and venv, interleaved with the rest: before/after rows
    # measured under the same load. Without it, the installed script.
    for v in variants or [""]:
        label, _, src = v.partition("=")
        nc = [str(BIN / "nodecheck")] if not src else [
            sys.executable, "-c", f"import sys; sys.path.insert(0, {src!r}); from nodecheck.cli import main; "
                                  "sys.exit(main())"]
        sfx = f" [{label}]" if label else ""
        t[f"nodecheck --help{sfx}"] = ([*nc, "--help"], None)
        t[f"nodecheck scan{sfx}"] = ([*nc, "scan", "-o", "json"], None)
    if with_ansible:
        t["ansible localhost -c local -m setup"] = ([str(BIN / "ansible"), "localhost", "-c", "local", "-m", "setup"],
                                                    None)
    return t


def once(cmd: list[str], stdin: bytes | None, env: dict) -> tuple[float, float]:
    """(wall s, CPU s): the CPU (user + system of the command and its children) is what the
    command costs whatever else the machine is doing; the wall is what a user waits."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd="/")
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    # nodecheck exits with the verdict (0-3); anything else means the run itself failed.
    if p.returncode > 3:
        raise SystemExit(f"{cmd}: exit {p.returncode}: {p.stderr.decode(errors='replace')[-500:]}")
    return dt, cpu


def net_links() -> int:
    try:
        return len(os.listdir("/sys/class/net"))
    except OSError:
        return -1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--no-ansible", action="store_true")
    ap.add_argument("--ansible-runs", type=int, metavar="N",
                    help="run ansible only in the first N rounds (default: every round); its setup walks every "
                         "network interface, minutes per run on a machine holding the fleet lab's 1,000 veths")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=DIR",
                    help="also run the nodecheck package found in DIR (repeatable); LABEL names its rows")
    a = ap.parse_args()

    env = dict(os.environ, NO_COLOR="1", ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    ts = tools(not a.no_ansible, a.variant)
    load0 = os.getloadavg()[0]
    for name, (cmd, stdin) in ts.items():  # warm the page cache and __pycache__; not measured
        if not (name.startswith("ansible") and a.ansible_runs == 0):
            once(cmd, stdin, env)
    samples: dict[str, list[float]] = {k: [] for k in ts}
    cpu: dict[str, list[float]] = {k: [] for k in ts}
    for i in range(a.runs):
        for name, (cmd, stdin) in ts.items():
            if name.startswith("ansible") and a.ansible_runs is not None and i >= a.ansible_runs:
                continue
            w, c = once(cmd, stdin, env)
            samples[name].append(w)
            cpu[name].append(c)
        print(f"round {i + 1}/{a.runs} done", file=sys.stderr, flush=True)

    med = {k: statistics.median(v) for k, v in samples.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"local wall time, median of {a.runs} interleaved runs"
          + (f" ({a.ansible_runs} for ansible)" if a.ansible_runs is not None else "")
          + f" (nproc {os.cpu_count()}, load {load0:.1f} at the start and {os.getloadavg()[0]:.1f} at the end, "
          f"{net_links()} network links, Python {platform.python_version()})")
    print("| command | wall median s | wall min s | wall max s | CPU median s |")
    print("|---|---:|---:|---:|---:|")
    for k, v in samples.items():
        print(f"| {k} | {med[k]:.3f} | {min(v):.3f} | {max(v):.3f} | {med_cpu[k]:.3f} |")
    floor = med["python -c pass"] + med["probe alone (sh)"]
    print(f"\nfloor (interpreter + probe) {floor:.3f} s")
    ans = med.get("ansible localhost -c local -m setup")
    for k in med:
        if k.startswith("nodecheck scan"):
            print(f"{k}: {med[k]:.3f} s (target <= 0.150), {med[k] - floor:+.3f} s over the floor"
                  + (f"; ansible setup / scan = {ans / med[k]:.1f}x (target >= 12x)" if ans else ""))
        elif k.startswith("nodecheck --help"):
            print(f"{k}: {med[k]:.3f} s (target <= 0.100)")
    print("\ncommand lines:")
    for k, (cmd, stdin) in ts.items():
        print(f"- {k}: `{' '.join(cmd)}`" + (" (probe script on stdin)" if stdin else ""))
    if a.json:
        Path(a.json).write_text(json.dumps({"runs": a.runs, "nproc": os.cpu_count(), "samples": samples,
                                            "median": med, "cpu_samples": cpu, "cpu_median": med_cpu, "commands": {k: c for k, (c, _) in ts.items()}},
                                           indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
