"""Probe children are bounded (issue 12, "Hangs"): a gzip bomb as the kernel config stops at the
cap and gives unknown; at the deadline the probe's whole process group is killed."""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

from hostile import copy_root, nodecheck
from nodecheck.transport import local


def _gzip_bomb(path: Path, mib: int) -> None:
    # A valid gzip stream of `mib` MiB of comment lines (grep would drop them all): small on disk.
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"# nodecheck padding line\n" * 40_000  # ~1 MiB
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(comp.compress(chunk))
        f.write(comp.compress(b"CONFIG_USER_NS=y\n"))
        f.write(comp.flush())


def test_gzip_bomb_config_is_capped_fast_and_unknown(tmp_path):
    root = copy_root(tmp_path / "root")
    for cfg in (root / "boot").glob("config-*"):
        cfg.unlink()
    (root / "proc/sys/user/max_user_namespaces").unlink(missing_ok=True)
    _gzip_bomb(root / "proc/config.gz", 1024)  # 1 GiB decompressed, ~3 MiB on disk
    t0 = time.monotonic()
    p = nodecheck("collect", "--root", root, timeout=120)
    assert time.monotonic() - t0 < 30
    doc = json.loads(p.stdout)
    assert "size cap" in json.dumps(doc["facts"]["kconfig"])
    snap = tmp_path / "s.json"
    snap.write_text(json.dumps(doc))
    node = json.loads(nodecheck("scan", "--snapshot", snap, "-o", "json").stdout)["nodes"][0]
    userns = next(c for c in node["checks"] if c["id"] == "userns")
    assert userns["status"] == "unknown", userns  # the CONFIG_USER_NS=y past the cap is not seen


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0): it is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_deadline_kills_the_probes_whole_process_group(tmp_path):
    pids = tmp_path / "pids"
    shell = tmp_path / "slow-sh"
    # Stands in for `sh`: a child that keeps stdout open (as a stuck gzip/awk would) and a
    # foreground that never ends.
    shell.write_text(f"#!/bin/sh\ncat >/dev/null\nsleep 300 &\necho $! >> {pids}\nsleep 301 &\n"
                     f"echo $! >> {pids}\nwait\n")
    shell.chmod(0o755)
    t0 = time.monotonic()
    run = local.run(str(tmp_path), timeout=2, shell=str(shell))
    assert run.timed_out and time.monotonic() - t0 < 15
    time.sleep(0.5)
    left = [int(x) for x in pids.read_text().split()]
    assert left and not [p for p in left if _alive(p)]


def test_stragglers_after_a_normal_exit_are_killed(tmp_path):
    pids = tmp_path / "pids"
    shell = tmp_path / "leaky-sh"
    # Exits at once but leaves a background child with its stdout pointed elsewhere.
    shell.write_text(f"#!/bin/sh\ncat >/dev/null\nsleep 300 >/dev/null 2>&1 &\necho $! >> {pids}\nexit 0\n")
    shell.chmod(0o755)
    run = local.run(str(tmp_path), timeout=30, shell=str(shell))
    assert not run.timed_out
    time.sleep(0.5)
    assert not [p for p in map(int, pids.read_text().split()) if _alive(p)]
