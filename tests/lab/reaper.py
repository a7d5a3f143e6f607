"""Tear a lab down: used by Lab.stop(), atexit, and a detached reaper process.

The reaper process runs `cleanup` when the lab's owner dies (even by SIGKILL) or the
lab's maximum lifetime has passed, whichever comes first, so the lab always stops by
itself. It exits quietly when the owner removed the state file (a normal stop).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def _netns_inode(name: str) -> int | None:
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None


def pids_in_netns(names: list[str]) -> list[int]:
    inodes = {i for i in (_netns_inode(n) for n in names) if i}
    out = []
    if not inodes:
        return out
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.stat(f"/proc/{d}/ns/net").st_ino in inodes:
                out.append(int(d))
        except OSError:
            pass
    return out


def cleanup(state: dict) -> None:
    me = os.getpid()
    pgid = state.get("pgid")
    if pgid:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except OSError:
            pass
    for pid in state.get("pids", []):
        if pid != me:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    # Every process still living in a lab namespace (sshd sessions call setsid).
    for _ in range(3):
        pids = [p for p in pids_in_netns(state.get("netns", [])) if p != me]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)
    if pgid:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    names = state.get("netns", [])
    if names:
        batch = "".join(f"netns del {n}\n" for n in names if _netns_inode(n))
        if batch:
            subprocess.run(["ip", "-force", "-batch", "-"], input=batch.encode(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    vp = state.get("veth_prefix")
    if vp:
        links = subprocess.run(["ip", "-o", "link", "show"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, check=False).stdout.decode()
        stale = [l.split(":")[1].strip().split("@")[0] for l in links.splitlines() if ":" in l]
        batch = "".join(f"link del {n}\n" for n in stale if n.startswith(vp))
        if batch:
            subprocess.run(["ip", "-force", "-batch", "-"], input=batch.encode(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    br = state.get("bridge")
    if br:
        subprocess.run(["ip", "link", "del", br], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


def _alive(pid: int, start: str | None) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return start is None or fields[19] == start
    except OSError:
        return False


def proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def main(state_path: str, owner: int, owner_start: str, deadline: float) -> None:
    try:
        os.setsid()
    except OSError:
        pass  # already a session leader (start_new_session)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        time.sleep(0.5)
        if not os.path.exists(state_path):
            return
        if _alive(owner, owner_start) and time.time() < deadline:
            continue
        try:
            with open(state_path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            return
        cleanup(state)
        try:
            os.unlink(state_path)
        except OSError:
            pass
        return


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
