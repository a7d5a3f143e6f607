"""Fleet benchmark (not a test): nodecheck scan vs Ansible setup vs pyinfra facts, on the lab.

    sudo .venv/bin/python bench/fleet_bench.py --sizes 200,500,1000 --rtts 0 --json bench/results-fleet-0ms.json

For each RTT one lab of max(sizes) hosts is started (tests/lab: real sshd per host, own
netns, user-space delaying relay for RTT>0); each size scans the first N of its hosts (the
idle sshds cost nothing), and every tool runs against it in the same run:
  nodecheck            nodecheck scan -i INV --known-hosts KH --output json --output-file out.jsonl --forks F
  ansible              ansible all -i INV -m setup -f F                      (defaults: OpenSSH client, sntrup761 kex)
  ansible-pipelining   same with ANSIBLE_PIPELINING=True
  ansible-kex          pipelining + -e ansible_ssh_common_args='-o KexAlgorithms=curve25519-sha256'
  ansible-kex-nopipe   defaults + the curve25519 kex
  pyinfra              pyinfra INV.py fact <7 facts> --parallel F -y
Measured: wall time; peak RSS of the controller's whole process tree (sampled /proc every
0.1 s, ssh clients and Ansible's detached ControlPersist masters included); controller CPU
(this process is a child subreaper, so the detached masters are reaped here and counted);
node-side CPU: the lab sshd listeners' own plus reaped children's CPU (every session's sshd,
shell and probe), and the relay's CPU apart; the machine's total busy CPU and load average
(other engineers share it); per-host connections, session channels, execs and sftp
subsystems from sshd's DEBUG logs; and per-tool host success counts.

pyinfra (and matplotlib for render.py --plot) live in their own venv, bench/.work/peers
(`make bench` creates it), so the project's .venv stays as pyproject.toml says.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import resource
import shlex
import shutil
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
PEERS_BIN = REPO / "bench" / ".work" / "peers" / "bin"
CLK = os.sysconf("SC_CLK_TCK")
PYINFRA_FACTS = ["server.LinuxDistribution", "server.KernelVersion", "server.Arch", "server.KernelModules",
                 "server.Mounts", "server.Selinux", "server.Sysctl"]
KEX = "-o KexAlgorithms=curve25519-sha256"


def _children_rss(root: int, marker: str | None = None) -> int:
    """RSS (bytes) of `root` and all its descendants, plus processes whose command line holds
    `marker` (Ansible's ssh ControlPersist masters detach from the tree)."""
    ppid: dict[int, int] = {}
    rss: dict[int, int] = {}
    tree = {root}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid[int(d)] = int(fields[1])
            rss[int(d)] = int(fields[21]) * 4096
            if marker and int(d) != os.getpid():
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        tree.add(int(d))
        except (OSError, IndexError, ValueError):
            pass
    changed = True
    while changed:
        changed = False
        for p, pp in ppid.items():
            if pp in tree and p not in tree:
                tree.add(p)
                changed = True
    return sum(rss.get(p, 0) for p in tree)


def proc_cpu(pid: int) -> float:
    """CPU seconds of `pid` itself plus its waited-for children (utime stime cutime cstime)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / CLK
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat, all but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK


def become_subreaper() -> None:
    """Orphans of our children (ssh -o ControlPersist masters) get reparented to us, so we can
    reap them and RUSAGE_CHILDREN counts their CPU as the controller's."""
    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_orphans(keep: set[int]) -> None:
    """Wait for every adopted child that is not one of ours (`keep`: the lab's processes)."""
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in keep:
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) != me:
                    continue
            os.kill(int(d), 9)
            os.waitpid(int(d), 0)
        except (OSError, ChildProcessError, ValueError, IndexError):
            pass


def timed(cmd: list[str], env: dict, cwd: str | None = None, stdout_path: str | None = None,
          marker: str | None = None, keep: set[int] | None = None, limit: float | None = None) -> dict:
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.PIPE, start_new_session=True)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _children_rss(p.pid, marker))
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    killed = threading.Event()

    def kill_late():
        if not stop.wait(limit):
            killed.set()
            try:
                os.killpg(p.pid, 15)
                for d in os.listdir("/proc"):  # Ansible's forks are their own groups
                    try:
                        with open(f"/proc/{d}/stat") as f:
                            if int(f.read().rsplit(")", 1)[1].split()[1]) == p.pid:
                                os.kill(int(d), 15)
                    except (OSError, ValueError, IndexError):
                        pass
            except OSError:
                pass

    if limit:
        threading.Thread(target=kill_late, daemon=True).start()
    err = p.stderr.read()
    p.wait()
    wall = time.monotonic() - t0
    stop.set()
    th.join()
    if marker:
        kill_by_marker(marker)
    if keep is not None:
        reap_orphans(keep)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of the controller's whole process tree: ansible's forks and ssh clients, and the
    # detached ControlPersist masters, killed above and reaped here as their subreaper.
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"wall": wall, "rc": p.returncode, "killed_at_limit": killed.is_set(), "peak_rss_mb": peak[0] / 2**20, "controller_cpu_s": cpu,
            "stderr": err.decode(errors="replace")[-2000:], "_stderr": err.decode(errors="replace")}


def kill_by_marker(marker: str) -> None:
    """End the ssh ControlPersist masters a run left behind (found by its private dir)."""
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if marker.encode() in open(f"/proc/{d}/cmdline", "rb").read():
                    os.kill(int(d), 9)
            except OSError:
                pass


def per_host(lab, hosts, before) -> dict:
    time.sleep(0.5)
    names = {h.name for h in hosts}
    c = {k: v for k, v in lab.ssh_counts(before).items() if k in names}
    return {k: statistics.mean(v[k] for v in c.values()) for k in ("connections", "sessions", "exec", "subsystem")}


def node_cpu(lab, hosts) -> dict[str, float]:
    """Node-side CPU so far: every used host's sshd listener with its reaped sessions (sshd
    children, the login shell, the probe and its commands); the relay's apart."""
    relay = [p for p in lab.procs if p.args and "relay.py" in " ".join(map(str, p.args))]
    return {"sshd": sum(proc_cpu(h.proc.pid) for h in hosts if h.proc is not None),
            "relay": sum(proc_cpu(p.pid) for p in relay)}


def load_now() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_tools(lab, hosts, tools: list[str], forks: int, work: Path, peers_bin: Path,
              deadline: float | None = None, tool_limit: float | None = None) -> dict:
    inv = lab.write_inventory(str(work / "inv.ini"), hosts=hosts, extra=f"ansible_ssh_extra_args='-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes'")
    pyinv = work / "inv.py"
    pyinv.write_text("hosts = " + repr([(h.ip, {
        "ssh_user": lablib.LAB_USER, "ssh_key": lab.key, "ssh_known_hosts_file": lab.known_hosts,
        "ssh_strict_host_key_checking": "yes"}) for h in hosts]) + "\n")
    keep = {p.pid for p in lab.procs} | ({lab._reaper.pid} if lab._reaper else set())
    res = {}
    for tool in tools:
        if deadline and time.time() > deadline:
            res[tool] = {"skipped": "past --deadline"}
            print(f"  {tool:20} skipped: past --deadline", flush=True)
            continue
        env = dict(os.environ, NODECHECK_NO_PROGRESS="1", NO_COLOR="1", ANSIBLE_HOST_KEY_CHECKING="True",
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        if tool == "nodecheck":
            env["PYTHONPATH"] = str(REPO)  # the nodecheck of the tree this script is in (see main)
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
                   "--output", "json", "--output-file", jl, "--forks", str(forks), "--timeout", "120"]
        elif tool.startswith("ansible"):
            cmd = [str(BIN / "ansible"), "all", "-i", inv, "-m", "setup", "-f", str(forks)]
            if "kex" in tool:
                cmd += ["-e", f"ansible_ssh_common_args='{KEX}'"]
            if tool in ("ansible-pipelining", "ansible-kex"):
                env["ANSIBLE_PIPELINING"] = "True"
            out = str(work / f"{tool}.out")
        elif tool == "pyinfra":
            cmd = [str(peers_bin / "pyinfra"), str(pyinv), "fact", *PYINFRA_FACTS, "--parallel", str(forks), "-y"]
            out = str(work / "pyinfra.out")
        else:
            raise SystemExit(f"unknown tool {tool}")
        load = load_now()
        n0, m0 = node_cpu(lab, hosts), machine_busy()
        r = timed(cmd, env, cwd=str(work), stdout_path=out, marker=cp, keep=keep, limit=tool_limit)
        shutil.rmtree(cp, ignore_errors=True)
        time.sleep(0.3)  # the last sessions' sshd children reaped by their listeners
        n1, m1 = node_cpu(lab, hosts), machine_busy()
        r["load_before"] = load
        r["node_cpu_s"] = n1["sshd"] - n0["sshd"]
        r["relay_cpu_s"] = n1["relay"] - n0["relay"]
        r["machine_busy_s"] = m1 - m0
        r["hosts"] = len(hosts)
        r["cmd"] = " ".join(shlex.quote(c) for c in cmd)
        r["per_host"] = per_host(lab, hosts, before)
        if tool == "nodecheck":
            lines = [json.loads(l) for l in open(jl)]
            r["hosts_ok"] = sum(1 for n in lines if not n.get("error"))
            r["verdicts"] = json.load(open(out)).get("summary")
        elif tool.startswith("ansible"):
            txt = open(out, errors="replace").read()
            r["hosts_ok"] = txt.count("| SUCCESS")
        else:
            # pyinfra writes the fact data to stderr, progress and all.
            r["hosts_ok"] = pyinfra_ok(r["_stderr"], r["_stderr"] + open(out, errors="replace").read(), hosts)
        r.pop("_stderr", None)
        res[tool] = r
        print(f"  {tool:20} wall {r['wall']:7.2f}s rc {r['rc']} ok {r['hosts_ok']} rss {r['peak_rss_mb']:.0f} MiB "
              f"cpu {r['controller_cpu_s']:.1f}s node {r['node_cpu_s']:.1f}s relay {r['relay_cpu_s']:.1f}s "
              f"machine {r['machine_busy_s']:.1f}s load {load} per-host {r['per_host']}", flush=True)
        if r["rc"] not in (0, 1, 2, 3) and tool == "nodecheck":
            print(r["stderr"], flush=True)
    return res


def pyinfra_ok(stderr: str, stdout: str, hosts) -> int | None:
    """Hosts present in every fact's output: pyinfra prints `--> Fact data for: F` and one JSON
    object keyed by host per fact (an empty value is a fact with nothing to report, e.g.
    Sysctl as a non-root user; a host that failed is left out or null)."""
    blocks = stdout.split("--> Fact data for:")[1:]
    if not blocks:
        return None
    ips = {h.ip for h in hosts}
    for b in blocks:
        try:
            doc = json.loads(b[b.index("{"):b.rindex("}") + 1])
        except ValueError:
            return None
        ips &= {k for k, v in doc.items() if v is not None}
    return len(ips)


def single_host(lab, work: Path, n: int = 7) -> dict:
    """One host: nodecheck scan vs bare `ssh host true` (default kex and curve25519)."""
    h = lab.hosts[0]
    env = dict(os.environ, NODECHECK_NO_PROGRESS="1", PYTHONPATH=str(REPO))
    base = ["ssh", "-i", lab.key, "-o", f"UserKnownHostsFile={lab.known_hosts}", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "ControlMaster=no", "-F", "/dev/null"]
    cmds = {
        "ssh true (default kex)": base + [f"{lablib.LAB_USER}@{h.ip}", "true"],
        "ssh true (curve25519)": base + ["-o", "KexAlgorithms=curve25519-sha256", f"{lablib.LAB_USER}@{h.ip}", "true"],
        "nodecheck scan 1 host": [str(BIN / "nodecheck"), "scan", f"{lablib.LAB_USER}@{h.ip}", "-k", lab.key,
                                  "--known-hosts", lab.known_hosts, "--output", "json"],
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
    ap.add_argument("--sizes", default="200,500,1000")
    ap.add_argument("--rtts", default="0")
    ap.add_argument("--forks", type=int, default=50)
    ap.add_argument("--tools", default="nodecheck,ansible,ansible-kex,pyinfra")
    ap.add_argument("--skip", default="", help="TOOL@SIZE[,...]: tool runs left out (say why in RESULTS.md)")
    ap.add_argument("--peers-bin", default=str(PEERS_BIN if (PEERS_BIN / "pyinfra").exists() else BIN),
                    help="where pyinfra is (default bench/.work/peers/bin)")
    ap.add_argument("--deadline", default=None, help="HH:MM UTC: start no tool run after it")
    ap.add_argument("--tool-timeout", type=float, default=None,
                    help="seconds: a tool run still going then is killed and its row says so")
    ap.add_argument("--json", default=str(REPO / "bench" / "results.json"))
    ap.add_argument("--no-local", action="store_true")
    a = ap.parse_args()
    why = lablib.available()
    if why:
        raise SystemExit(why)
    limits = lablib.raise_limits()
    become_subreaper()
    deadline = None
    if a.deadline:
        now = datetime.datetime.now(datetime.timezone.utc)
        hh, mm = (int(x) for x in a.deadline.split(":"))
        deadline = now.replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp()
    skip = {tuple(x.split("@")) for x in a.skip.split(",") if x}
    sizes = [int(x) for x in a.sizes.split(",")]
    # The tree measured is the one this script lives in (PYTHONPATH for the nodecheck runs, and
    # sys.path for the in-process ones): run it from a `git archive` snapshot so that edits in a
    # shared working tree cannot change the code between (or during) the rows.
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True).stdout.strip()
    commit = commit or (REPO / "COMMIT").read_text().strip() if (REPO / "COMMIT").exists() else commit
    results = {"argv": sys.argv, "nproc": os.cpu_count(), "tree": str(REPO), "commit": commit, "runs": [], "single": {}, "local": {},
               "limits": {k: list(v) for k, v in limits.items()}, "skip": sorted("@".join(x) for x in skip),
               "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "uptime_at_start": subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip()}
    work = Path(tempfile.mkdtemp(prefix="ncbench-"))
    if not a.no_local:
        results["local"] = local(work)
    for rtt in [float(x) for x in a.rtts.split(",")]:
        t0 = time.monotonic()
        with lablib.Lab(lablib.mixed_specs(max(sizes)), rtt_ms=rtt, max_lifetime=3 * 3600) as lab:
            up = time.monotonic() - t0
            print(f"== lab of {len(lab.hosts)} hosts, RTT {rtt:g} ms up in {up:.1f}s", flush=True)
            results.setdefault("lab_up_s", {})[str(rtt)] = up
            results["single"][str(rtt)] = single_host(lab, work)
            for size in sizes:
                tools = [t for t in a.tools.split(",") if (t, str(size)) not in skip]
                uptime = subprocess.run(["uptime"], stdout=subprocess.PIPE, text=True).stdout.strip()
                print(f"== {size} hosts, RTT {rtt:g} ms: {tools} ({uptime})", flush=True)
                res = run_tools(lab, lab.hosts[:size], tools, a.forks, work, Path(a.peers_bin), deadline,
                                a.tool_timeout)
                results["runs"].append({"size": size, "rtt_ms": rtt, "tools": res, "uptime": uptime})
                Path(a.json).write_text(json.dumps(results, indent=1))
            t1 = time.monotonic()
            lab.stop()
            results.setdefault("lab_down_s", {})[str(rtt)] = time.monotonic() - t1
        Path(a.json).write_text(json.dumps(results, indent=1))
    print(json.dumps({"done": a.json}))


if __name__ == "__main__":
    main()
