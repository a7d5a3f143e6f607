#!/usr/bin/env python3
"""Controller CPU per node: parse + facts + score, in-process, over the fixture host trees.

The probe runs once per tree (tests/fixtures/hosts/*/root, untimed) to get real probe text;
then each stage is timed with time.process_time() over many rounds, so the number is the
controller's CPU for one node as a fleet scan spends it (no SSH, no probe, no imports).

    .venv/bin/python bench/cpu_bench.py [--rounds 30] [--json FILE] [--profile]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nodecheck import pipeline, sections  # noqa: E402
from nodecheck.checks import evaluate  # noqa: E402
from nodecheck.facts import gather  # noqa: E402
from nodecheck.matrix import load  # noqa: E402
from nodecheck.transport import local  # noqa: E402

HOSTS = REPO / "tests" / "fixtures" / "hosts"


def outputs() -> dict[str, str]:
    out = {}
    for d in sorted(HOSTS.iterdir()):
        if (d / "root").is_dir():
            out[d.name] = local.run(str(d / "root")).stdout
    return out


def per_node_ms(fn, texts: list, rounds: int) -> list[float]:
    """One sample per round: CPU ms per node, averaged over every tree."""
    samples = []
    for _ in range(rounds):
        t0 = time.process_time()
        for t in texts:
            fn(t)
        samples.append((time.process_time() - t0) * 1000 / len(texts))
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of full scoring (top 25 by cumtime)")
    a = ap.parse_args()

    matrix = load()
    outs = outputs()
    texts = list(outs.values())
    parsed = [sections.parse(t) for t in texts]
    facts = [gather(p) for p in parsed]
    for _ in range(3):  # warm caches (lru_cache'd version parsing etc.) as a long fleet run would
        for t in texts:
            pipeline.node_from_output("n", t, matrix=matrix)

    stages = {
        "parse (sections.parse)": (sections.parse, texts),
        "facts (gather)": (gather, parsed),
        "score (evaluate)": (lambda f: evaluate(f, matrix), facts),
        "total (node_from_output)": (lambda t: pipeline.node_from_output("n", t, matrix=matrix), texts),
    }
    rows = {}
    for name, (fn, inputs) in stages.items():
        s = per_node_ms(fn, inputs, a.rounds)
        rows[name] = {"median_ms": statistics.median(s), "min_ms": min(s), "max_ms": max(s)}

    print(f"controller CPU per node, {len(texts)} fixture trees, median of {a.rounds} rounds (process_time)")
    print("| stage | median ms/node | min | max |")
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | {r['max_ms']:.2f} |")

    per_tree = {}
    for name, t in outs.items():
        s = per_node_ms(lambda x: pipeline.node_from_output("n", x, matrix=matrix), [t], max(5, a.rounds // 3))
        per_tree[name] = statistics.median(s)
    worst = sorted(per_tree.items(), key=lambda kv: -kv[1])[:5]
    print("slowest trees (total ms): " + ", ".join(f"{k} {v:.2f}" for k, v in worst))

    if a.profile:
        import cProfile
        import pstats

        pr = cProfile.Profile()
        pr.enable()
        for _ in range(10):
            for t in texts:
                pipeline.node_from_output("n", t, matrix=matrix)
        pr.disable()
        pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
    if a.json:
        Path(a.json).write_text(json.dumps({"trees": len(texts), "rounds": a.rounds, "stages": rows,
                                            "per_tree_total_ms": per_tree}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
