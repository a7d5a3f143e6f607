"""Fleet benchmark (not a test): nodecheck scan vs Ansible setup vs pyinfra facts, on the lab.

    sudo .venv/bin/python bench/fleet_bench.py --sizes 50,200 --rtts 0,50 --out bench/RESULTS.md

For each (fleet size, RTT) one lab is started (tests/lab: real sshd per host, own netns,
user-space delaying relay for RTT>0) and every tool runs against it in the same run:
  nodecheck            nodecheck scan -i INV --known-hosts KH --format json --output-file out.jsonl --forks F
  ansible              ansible all -i INV -m setup -f F                      (defaults: OpenSSH client, sntrup761 kex)
  ansible-pipelining   same with ANSIBLE_PIPELINING=True
  ansible-kex          pipelining + -e ansible_ssh_common_args='-o KexAlgorithms=curve25519-sha256'
  ansible-kex-nopipe   defaults + the curve25519 kex
  pyinfra              pyinfra INV.py fact <7 facts> --parallel F -y
Measured: wall time; peak RSS of the controller's whole process tree (sampled /proc every
0.1 s, ssh clients included); per-host connections, session channels, execs and sftp
subsystems from sshd's DEBUG logs; and per-tool host success counts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import lab as lablib  # noqa: E402

BIN = Path(sys.executable).parent
PYINFRA_FACTS = ["server.LinuxDistribution", "server.KernelVersion", "server.Arch", "server.KernelModules",
                 "server.Mounts", "server.Selinux", "server.Sysctl"]
KEX = "-o KexAlgorithms=curve25519-sha256"


def _children_rss(root: int) -> int:
    """RSS (bytes) of `root` and all its descendants."""
    ppid: dict[int, int] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid[int(d)] = int(fields[1])
            rss[int(d)] = int(fields[21]) * 4096
        except (OSError, IndexError, ValueError):
            pass
    tree = {root}
    changed = True
    while changed:
        changed = False
        for p, pp in ppid.items():
            if pp in tree and p not in tree:
                tree.add(p)
                changed = True
    return sum(rss.get(p, 0) for p in tree)


def timed(cmd: list[str], env: dict, cwd: str | None = None, stdout_path: str | None = None) -> dict:
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.PIPE, start_new_session=True)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _children_rss(p.pid))
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    err = p.stderr.read()
    p.wait()
    wall = time.monotonic() - t0
    stop.set()
    th.join()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of the controller's waited-for process tree (ansible's forks and ssh clients
    # included; detached ControlPersist masters not).
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"wall": wall, "rc": p.returncode, "peak_rss_mb": peak[0] / 2**20, "controller_cpu_s": cpu,
            "stderr": err.decode(errors="replace")[-2000:]}


def kill_by_marker(marker: str) -> None:
    """End the ssh ControlPersist masters a run left behind (found by its private dir)."""
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if marker.encode() in open(f"/proc/{d}/cmdline", "rb").read():
                    os.kill(int(d), 9)
            except OSError:
                pass


def per_host(lab, before) -> dict:
    time.sleep(0.5)
    c = lab.ssh_counts(before)
    healthy = [v for v in c.values()]
    return {k: statistics.mean(v[k] for v in healthy) for k in ("connections", "sessions", "exec", "subsystem")}


def run_tools(lab, tools: list[str], forks: int, work: Path) -> dict:
    inv = lab.write_inventory(str(work / "inv.ini"), extra=f"ansible_ssh_extra_args='-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes'")
    pyinv = work / "inv.py"
    pyinv.write_text("hosts = " + repr([(h.ip, {
        "ssh_user": lablib.LAB_USER, "ssh_key": lab.key, "ssh_known_hosts_file": lab.known_hosts,
        "ssh_strict_host_key_checking": "yes"}) for h in lab.hosts]) + "\n")
    res = {}
    for tool in tools:
        env = dict(os.environ, NODECHECK_NO_PROGRESS="1", NO_COLOR="1", ANSIBLE_HOST_KEY_CHECKING="True",
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        cp = tempfile.mkdtemp(prefix="ncbench-cp-")
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = cp
        env["ANSIBLE_LOCAL_TEMP"] = cp
        before = lab.log_offsets()
        out = None
        if tool == "nodecheck":
            jl = str(work / "nodecheck.jsonl")
            if os.path.exists(jl):
                os.unlink(jl)
            out = str(work / "nodecheck.json")
            cmd = [str(BIN / "nodecheck"), "scan", "-i", inv, "--known-hosts", lab.known_hosts,
                   "--format", "json", "--output-file", jl, "--forks", str(forks), "--timeout", "120"]
        elif tool.startswith("ansible"):
            cmd = [str(BIN / "ansible"), "all", "-i", inv, "-m", "setup", "-f", str(forks)]
            if "kex" in tool:
                cmd += ["-e", f"ansible_ssh_common_args='{KEX}'"]
            if tool in ("ansible-pipelining", "ansible-kex"):
                env["ANSIBLE_PIPELINING"] = "True"
            out = str(work / f"{tool}.out")
        elif tool == "pyinfra":
            cmd = [str(BIN / "pyinfra"), str(pyinv), "fact", *PYINFRA_FACTS, "--parallel", str(forks), "-y"]
            out = str(work / "pyinfra.out")
        else:
            raise SystemExit(f"unknown tool {tool}")
        r = timed(cmd, env, cwd=str(work), stdout_path=out)
        kill_by_marker(cp)
        r["cmd"] = " ".join(shlex.quote(c) for c in cmd)
        r["per_host"] = per_host(lab, before)
        if tool == "nodecheck":
            lines = [json.loads(l) for l in open(jl)]
            r["hosts_ok"] = sum(1 for n in lines if not n.get("error"))
            r["verdicts"] = json.load(open(out)).get("summary")
        elif tool.startswith("ansible"):
            txt = open(out, errors="replace").read()
            r["hosts_ok"] = txt.count("| SUCCESS")
        else:
            txt = r["stderr"] + open(out, errors="replace").read()
            r["hosts_ok"] = None
        res[tool] = r
        print(f"  {tool:20} wall {r['wall']:7.2f}s rc {r['rc']} ok {r['hosts_ok']} rss {r['peak_rss_mb']:.0f} MiB cpu {r['controller_cpu_s']:.1f}s "
              f"per-host {r['per_host']}", flush=True)
        if r["rc"] not in (0, 1, 2, 3) and tool == "nodecheck":
            print(r["stderr"], flush=True)
    return res


def single_host(lab, work: Path, n: int = 7) -> dict:
    """One host: nodecheck scan vs bare `ssh host true` (default kex and curve25519)."""
    h = lab.hosts[0]
    env = dict(os.environ, NODECHECK_NO_PROGRESS="1")
    base = ["ssh", "-i", lab.key, "-o", f"UserKnownHostsFile={lab.known_hosts}", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "ControlMaster=no", "-F", "/dev/null"]
    cmds = {
        "ssh true (default kex)": base + [f"{lablib.LAB_USER}@{h.ip}", "true"],
        "ssh true (curve25519)": base + ["-o", "KexAlgorithms=curve25519-sha256", f"{lablib.LAB_USER}@{h.ip}", "true"],
        "nodecheck scan 1 host": [str(BIN / "nodecheck"), "scan", f"{lablib.LAB_USER}@{h.ip}", "-k", lab.key,
                                  "--known-hosts", lab.known_hosts, "--format", "json"],
    }
    out = {}
    for name, cmd in cmds.items():
        walls = [timed(cmd, env)["wall"] for _ in range(n)]
        out[name] = statistics.median(walls)
        print(f"  single host: {name:26} median {out[name]*1000:7.1f} ms of {n}", flush=True)
    # The transport alone, in-process (no CLI start-up, matrix load or scoring).
    from nodecheck import fleet
    t = fleet.Target(h.name, h.ip, user=lablib.LAB_USER, key_file=lab.key)
    opts = fleet.FleetOptions(known_hosts=lab.known_hosts)
    walls, kex = [], set()
    for _ in range(n):
        t0 = time.monotonic()
        (r,) = fleet.run_fleet([t], opts, lambda r: None)
        walls.append(time.monotonic() - t0)
        kex.add(r.kex)
    out["nodecheck run_fleet 1 host (in-process)"] = statistics.median(walls)
    out["kex"] = sorted(k or "-" for k in kex)
    print(f"  single host: run_fleet in-process      median {statistics.median(walls)*1000:7.1f} ms kex {kex}", flush=True)
    return out


def local(work: Path, n: int = 3) -> dict:
    env = dict(os.environ, NODECHECK_NO_PROGRESS="1", ANSIBLE_NOCOLOR="1")
    cmds = {
        "nodecheck collect": [str(BIN / "nodecheck"), "collect"],
        "nodecheck scan (local)": [str(BIN / "nodecheck"), "scan", "--format", "json"],
        "ansible localhost -m setup": [str(BIN / "ansible"), "localhost", "-c", "local", "-m", "setup"],
    }
    out = {}
    for name, cmd in cmds.items():
        walls = [timed(cmd, env, cwd=str(work))["wall"] for _ in range(n)]
        out[name] = statistics.median(walls)
        print(f"  local: {name:28} median {out[name]:.2f}s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="50,200")
    ap.add_argument("--rtts", default="0,50")
    ap.add_argument("--forks", type=int, default=50)
    ap.add_argument("--tools", default="nodecheck,ansible,ansible-pipelining,ansible-kex,pyinfra")
    ap.add_argument("--tools-large", default=None, help="tools for sizes >= 500 (default: --tools)")
    ap.add_argument("--json", default=str(REPO / "bench" / "results.json"))
    ap.add_argument("--no-local", action="store_true")
    a = ap.parse_args()
    why = lablib.available()
    if why:
        raise SystemExit(why)
    results = {"argv": sys.argv, "nproc": os.cpu_count(), "runs": [], "single": {}, "local": {}}
    work = Path(tempfile.mkdtemp(prefix="ncbench-"))
    if not a.no_local:
        results["local"] = local(work)
    for rtt in [float(x) for x in a.rtts.split(",")]:
        for size in [int(x) for x in a.sizes.split(",")]:
            tools = (a.tools_large or a.tools) if size >= 500 else a.tools
            print(f"== {size} hosts, RTT {rtt:g} ms: {tools}", flush=True)
            t0 = time.monotonic()
            with lablib.Lab(lablib.mixed_specs(size), rtt_ms=rtt, max_lifetime=3600) as lab:
                print(f"  lab up in {time.monotonic()-t0:.1f}s", flush=True)
                if str(size) == a.sizes.split(",")[0]:
                    results["single"][str(rtt)] = single_host(lab, work)
                res = run_tools(lab, tools.split(","), a.forks, work)
            results["runs"].append({"size": size, "rtt_ms": rtt, "tools": res})
            Path(a.json).write_text(json.dumps(results, indent=1))
    print(json.dumps({"done": a.json}))


if __name__ == "__main__":
    main()
