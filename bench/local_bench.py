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

    .venv/bin/python bench/local_bench.py [--runs 11] [--json FILE] [--no-ansible] [--src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def probe_cmd() -> list[str]:
    return ["sh", "-s", "--", "/"]


def tools(with_ansible: bool, src: str | None) -> dict[str, tuple[list[str], bytes | None]]:
    sys.path.insert(0, str(REPO))
    from nodecheck import probe

    # --src DIR runs another checkout's nodecheck (e.g. `git archive` of an older commit) with the
    # same interpreter and venv, for before/after tables; the default is the installed script.
    nc = [str(BIN / "nodecheck")] if src is None else [
        sys.executable, "-c", f"import sys; sys.path.insert(0, {src!r}); from nodecheck.cli import main; "
                              "sys.exit(main())"]
    t = {
        "python -c pass": ([sys.executable, "-c", "pass"], None),
        "probe alone (sh)": (probe_cmd(), probe.script().encode()),
        "nodecheck --help": ([*nc, "--help"], None),
        "nodecheck scan": ([*nc, "scan", "-o", "json"], None),
    }
    if with_ansible:
        t["ansible localhost -c local -m setup"] = ([str(BIN / "ansible"), "localhost", "-c", "local", "-m", "setup"],
                                                    None)
    return t


def once(cmd: list[str], stdin: bytes | None, env: dict) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd="/")
    dt = time.perf_counter() - t0
    # nodecheck exits with the verdict (0-3); anything else means the run itself failed.
    if p.returncode > 3:
        raise SystemExit(f"{cmd}: exit {p.returncode}: {p.stderr.decode(errors='replace')[-500:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--no-ansible", action="store_true")
    ap.add_argument("--src", metavar="DIR", help="run the nodecheck package found in DIR instead of the installed one")
    a = ap.parse_args()

    env = dict(os.environ, NO_COLOR="1", ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    ts = tools(not a.no_ansible, a.src)
    for cmd, stdin in ts.values():  # warm the page cache and __pycache__; not measured
        once(cmd, stdin, env)
    samples: dict[str, list[float]] = {k: [] for k in ts}
    for _ in range(a.runs):
        for name, (cmd, stdin) in ts.items():
            samples[name].append(once(cmd, stdin, env))

    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"local wall time, median of {a.runs} interleaved runs (nproc {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.2f} at the end, Python {platform.python_version()})")
    print("| command | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    for k, v in samples.items():
        print(f"| {k} | {med[k]:.3f} | {min(v):.3f} | {max(v):.3f} |")
    scan = med["nodecheck scan"]
    floor = med["python -c pass"] + med["probe alone (sh)"]
    print(f"\nscan {scan:.3f} s (target <= 0.150); floor (interpreter + probe) {floor:.3f} s; "
          f"scan - floor = {scan - floor:.3f} s")
    print(f"--help {med['nodecheck --help']:.3f} s (target <= 0.100)")
    ans = med.get("ansible localhost -c local -m setup")
    if ans:
        print(f"ansible setup / nodecheck scan = {ans / scan:.1f}x (target >= 12x)")
    print("\ncommand lines:")
    for k, (cmd, stdin) in ts.items():
        print(f"- {k}: `{' '.join(cmd)}`" + (" (probe script on stdin)" if stdin else ""))
    if a.json:
        Path(a.json).write_text(json.dumps({"runs": a.runs, "nproc": os.cpu_count(), "samples": samples,
                                            "median": med, "commands": {k: c for k, (c, _) in ts.items()}},
                                           indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
