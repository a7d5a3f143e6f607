"""How the fleet lab scales (not a test): start N hosts, time it, tear down, check nothing is left.

    sudo .venv/bin/python -m tests.lab.scale 1000 [RTT_MS]

Prints the time of each start phase, the lab's process count, the time to tear down, and
exits 1 if any lab process, namespace, veth or bridge survived the teardown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from . import Lab, mixed_specs, raise_limits


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main(n: int, rtt: float) -> int:
    limits = raise_limits()
    phases: dict[str, float] = {}
    lab = Lab(mixed_specs(n), rtt_ms=rtt, max_lifetime=900)
    for name in ("_keys", "_network", "_files", "_start_hosts", "wait_ready"):
        orig = getattr(lab, name)

        def timed(*a, _o=orig, _n=name, **k):
            t = time.monotonic()
            try:
                return _o(*a, **k)
            finally:
                phases[_n] = round(time.monotonic() - t, 1)
        setattr(lab, name, timed)
    load = os.getloadavg()
    t0 = time.monotonic()
    lab.start()
    up = time.monotonic() - t0
    pids = [p.pid for p in lab.procs]
    running = sum(1 for p in pids if _alive(p))
    netns, prefix, bridge = [h.netns for h in lab.hosts], f"nc{lab.slot}h", lab.bridge
    t1 = time.monotonic()
    lab.stop()
    down = time.monotonic() - t1
    left_ns = [x for x in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else []) if x in set(netns)]
    links = subprocess.run(["ip", "-o", "link", "show"], stdout=subprocess.PIPE, text=True).stdout
    left_links = [l.split(":")[1].strip().split("@")[0] for l in links.splitlines()
                  if ":" in l and (l.split(":")[1].strip().startswith((prefix, bridge)))]
    left_procs = [p for p in pids if _alive(p)]
    print(json.dumps({"hosts": n, "rtt_ms": rtt, "load_before": [round(x, 2) for x in load],
                      "limits": limits, "up_s": round(up, 1), "phases_s": phases,
                      "lab_processes": running, "down_s": round(down, 1), "left_netns": len(left_ns),
                      "left_links": len(left_links), "left_processes": len(left_procs)}))
    return 1 if (left_ns or left_links or left_procs) else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
                  float(sys.argv[2]) if len(sys.argv) > 2 else 0.0))
