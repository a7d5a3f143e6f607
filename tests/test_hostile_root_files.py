"""Under `--root`, a FIFO, a device, a directory or a huge single-line file at any path the
probe reads (issue 12, "Hangs"): each gives unknown for what it would have told, the run ends
well inside `--timeout`, and no probe child (dd, grep, awk, sed, gzip, find) is left running.
Children are found by a tag in their environment, which every child of the probe inherits."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import zlib
from pathlib import Path

import pytest

from hostile import copy_root, nodecheck
from nodecheck import sections

REL = "6.8.0-45-generic"
PCI = "sys/bus/pci/devices/0000:05:00.0"

# node path -> (the section that reads it, a function of the facts that must be unknown)
TARGETS = {
    "etc/os-release": ("/etc/os-release", lambda f: f["distro"]["id"] is None),
    f"boot/config-{REL}": (f"kconfig:/boot/config-{REL}", lambda f: f["kconfig"]["source"] is None),
    "proc/config.gz": ("kconfig:/proc/config.gz", lambda f: f["kconfig"]["source"] is None),
    f"usr/lib/modules/{REL}/modules.builtin": ("modules.builtin", lambda f: f["modules"]["builtin_count"] is None),
    "proc/1/mountinfo": ("mountinfo", lambda f: f["mounts"]["reason"] is not None),
    "var/lib/dpkg/status": ("dpkg-status", lambda f: f["packages"]["known"] is False),
    "proc/cpuinfo": ("cpuinfo-flags", None),
    f"{PCI}/vendor": ("pci", lambda f: f["gpu"]["count"] is None),
    "etc/docker/daemon.json": ("/etc/docker/daemon.json", lambda f: f["runtimes"]["docker_time_namespaces"] is None),
    "etc/containerd/config.toml": ("/etc/containerd/config.toml",
                                   lambda f: f["runtimes"]["containerd_config_version"] is None),
    "proc/sys/kernel/osrelease": ("/proc/sys/kernel/osrelease", None),  # the release then comes from uname
    "etc/hostname": (None, None),
}
KINDS = ["fifo", "device", "directory", "huge-line", "gzip-bomb"]


def _gzip_bomb(path: Path, mib: int = 512) -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"CONFIG_NODECHECK_PAD=y\n" * 45_000  # ~1 MiB, all CONFIG_ lines: nothing is filtered out
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(comp.compress(chunk))
        f.write(comp.flush())


def _plant(root: Path, rel: str, kind: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()
    if kind == "fifo":
        os.mkfifo(p)
    elif kind == "device":
        if os.geteuid() != 0:
            pytest.skip("mknod needs root")
        os.mknod(p, 0o644 | 0o020000, os.makedev(1, 5))  # a /dev/zero: endless if ever opened
    elif kind == "directory":
        p.mkdir()
        (p / "x").write_text("CONFIG_USER_NS=y\nID=controller\n")
    elif kind == "huge-line":
        with open(p, "wb") as f:
            f.truncate(600 * 1024 * 1024)  # 600 MB of NULs, not one newline (sparse: no disk used)
    else:
        _gzip_bomb(p)


def _prepare(root: Path, rel: str) -> None:
    """Take away the tree's fallbacks for `rel`, so the planted file alone decides."""
    if rel in ("etc/os-release",):
        (root / "usr/lib/os-release").unlink(missing_ok=True)
    if rel.startswith("boot/") or rel == "proc/config.gz":
        for cfg in (root / "boot").glob("config-*"):
            cfg.unlink()
    if rel.startswith(PCI):
        d = root / PCI
        d.mkdir(parents=True, exist_ok=True)
        for k, v in (("vendor", "0x10de"), ("class", "0x030200"), ("device", "0x2330")):
            (d / k).write_text(v + "\n")


def _children(tag: str) -> list[str]:
    left = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
            if tag.encode() in env and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
                left.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return left


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rel", list(TARGETS))
def test_special_file_at_a_probed_path_is_unknown_bounded_and_leaves_no_child(tmp_path, rel, kind):
    if kind == "gzip-bomb" and not rel.endswith((".gz", REL)):
        pytest.skip("a gzip bomb matters only where the probe decompresses or greps a kernel config")
    root = copy_root(tmp_path / "root")
    _prepare(root, rel)
    _plant(root, rel, kind)
    tag = f"NODECHECK_HOSTILE_TAG={uuid.uuid4().hex}"
    t0 = time.monotonic()
    p = nodecheck("collect", "--root", root, "--timeout", "40", timeout=120,
                  env={"NODECHECK_HOSTILE_TAG": tag.split("=", 1)[1]})
    took = time.monotonic() - t0
    assert "Traceback" not in p.stderr, p.stderr
    assert took < 30, took  # well inside --timeout: nothing blocked or ran away
    time.sleep(0.3)
    assert not _children(tag.split("=", 1)[1]), _children(tag.split("=", 1)[1])
    doc = json.loads(p.stdout)
    section, unknown = TARGETS[rel]
    if unknown:
        assert unknown(doc["facts"]), doc["facts"]
    elif section:
        s = sections.parse(doc["probe"]["output"]).get(section)
        assert not s.complete, s  # never read as if it were the file
