"""A cached Debian root filesystem made by debootstrap, and per-host copies of it.

The tree is built once per package list (the cache key is a hash of suite, variant,
mirror and packages) under /var/cache/nodecheck-lab/, so reruns and CI reruns skip the
download. Per host the tree is mounted as an overlay (lower = cache, upper = the host's
own changes) or, where overlayfs is unavailable, copied with `cp -a`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

CACHE = Path(os.environ.get("NODECHECK_LAB_CACHE", "/var/cache/nodecheck-lab"))
SUITE = "bookworm"
VARIANT = "minbase"
# What the play needs on a host: sshd + python3 for Ansible, python3-apt for the apt
# module, systemd for systemctl (enable works offline in a chroot), procps for sysctl,
# and what Sysbox needs on the host (jq rsync iptables; fuse3, which provides the `fuse`
# that sysbox-ce depends on and the fusermount3 that sysbox-fs >= 0.7.0 calls; kmod for
# sysbox-mgr's modprobe), pre-seeded so the play never needs the Debian mirror at test
# time and a healthy host passes the preflight's host-tools check, as a real one would.
PACKAGES = (
    "openssh-server", "python3", "python3-apt", "systemd", "procps",
    "jq", "fuse3", "kmod", "rsync", "iptables",
)


def mirror() -> str:
    """The Debian mirror configured on this machine (deb822 or one-line sources)."""
    env = os.environ.get("NODECHECK_LAB_MIRROR")
    if env:
        return env
    files = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        for m in re.finditer(r"^URIs:\s*(\S+)", text, re.M):
            if "security" not in m.group(1):
                return m.group(1)
        for m in re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):
            if "security" not in m.group(1):
                return m.group(1)
    return "http://deb.debian.org/debian"


def cache_key(packages=PACKAGES, suite=SUITE, variant=VARIANT) -> str:
    # The mirror is deliberately not part of the key: the same suite from another
    # mirror is the same tree.
    blob = "\n".join([suite, variant, *sorted(packages)])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def base_tree(packages=PACKAGES, suite=SUITE, variant=VARIANT, log=print) -> tuple[Path, float]:
    """The cached tree for this package list, built when missing. Returns (path, seconds spent)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    key = cache_key(packages, suite, variant)
    final = CACHE / f"{suite}-{variant}-{key}"
    t0 = time.monotonic()
    with open(CACHE / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent run waits for the first build
        if (final / ".nodecheck-lab-complete").exists():
            return final, time.monotonic() - t0
        work = CACHE / f".build-{key}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        log(f"lab: debootstrap {suite} ({variant}, {len(packages)} extra packages) from {mirror()} into {work}")
        subprocess.run(
            ["debootstrap", f"--variant={variant}", "--include=" + ",".join(packages),
             suite, str(work), mirror()],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        _prepare(work)
        (work / ".nodecheck-lab-complete").write_text(" ".join(packages) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        os.rename(work, final)
        return final, time.monotonic() - t0


def _prepare(root: Path) -> None:
    """One-time tweaks of the cached tree: no apt lists from the mirror, sshd host keys."""
    subprocess.run(["chroot", str(root), "apt-get", "clean"], check=True)
    for f in (root / "var/lib/apt/lists").glob("*"):
        if f.is_file():
            f.unlink()
    (root / "etc/apt/sources.list").write_text("")
    for f in (root / "etc/apt/sources.list.d").glob("*"):
        f.unlink()
    # Host keys are regenerated per host copy (ssh-keygen -A) so hosts differ.
    for f in (root / "etc/ssh").glob("ssh_host_*"):
        f.unlink()
    # Hosts must not start daemons while packages are installed into the chroot.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)


def overlay_supported() -> bool:
    try:
        return "overlay" in Path("/proc/filesystems").read_text()
    except OSError:
        return False


def make_host_root(base: Path, workdir: Path, name: str) -> tuple[Path, list[Path]]:
    """A private writable root for one host. Returns (root, mounts to undo, innermost last)."""
    root = workdir / name / "root"
    root.mkdir(parents=True, exist_ok=True)
    if overlay_supported():
        upper, work = workdir / name / "upper", workdir / name / "work"
        upper.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        r = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={base},upperdir={upper},workdir={work}", str(root)],
            capture_output=True, text=True,
        )
        if r.returncode == 0:
            return root, [root]
    subprocess.run(["cp", "-a", f"{base}/.", str(root)], check=True)
    return root, []
