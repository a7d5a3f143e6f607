"""A capped or unreadable input is unknown, never fail/pass (issue 12, "Wrong verdicts"):
trees built by the tests, the real probe run over them (as root, and as an unprivileged user)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from hostile import GOOD, copy_root, nodecheck
from nodecheck import pipeline, probe
from nodecheck.matrix import load as load_matrix


def _check(node: dict, cid: str) -> dict:
    return next(c for c in node["checks"] if c["id"] == cid)


def _scan(root: Path) -> dict:
    p = nodecheck("scan", "--root", root, "-o", "json", timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    return json.loads(p.stdout)["nodes"][0]


def test_kconfig_over_the_cap_is_unknown_not_fail(tmp_path):
    root = copy_root(tmp_path / "root")
    cfg = next((root / "boot").glob("config-*"))
    real = (GOOD / "boot" / cfg.name).resolve().read_text()
    cfg.unlink()
    cfg.write_text(real)
    # Without the sysctl the verdict rests on the kernel config alone.
    (root / "proc/sys/user/max_user_namespaces").unlink(missing_ok=True)
    control = _check(_scan(root), "userns")["status"]
    pad = "".join(f"CONFIG_NODECHECK_PAD_{i}=y\n" for i in range(200_000))  # > 4 MiB of CONFIG_ lines first
    cfg.write_text(pad + real)
    c = _check(_scan(root), "userns")
    assert c["status"] == "unknown" and control != "fail", (control, c)
    snap = json.loads(nodecheck("collect", "--root", root).stdout)
    assert "size cap" in json.dumps(snap["facts"]["kconfig"])  # capped: no option is taken as absent


def test_mountinfo_over_the_cap_is_unknown_not_pass(tmp_path):
    root = copy_root(tmp_path / "root")
    mi = root / "proc/1/mountinfo"
    real = mi.read_text()
    pad = "".join(f"{1000 + i} 1 0:{i % 200} / /pad/{i} rw - ext4 /dev/pad{i} rw\n" for i in range(80_000))
    nfs = "99999 1 0:999 / /var/lib rw - nfs4 server:/export rw\n"  # past the cap
    mi.write_text(real + pad + nfs)
    c = _check(_scan(root), "storage.data-root")
    assert c["status"] == "unknown", c


def _pci_device(root: Path, addr: str = "0000:00:1f.0", vendor="0x8086", cls="0x060100") -> Path:
    d = root / "sys/bus/pci/devices" / addr
    d.mkdir(parents=True, exist_ok=True)
    for k, v in (("vendor", vendor), ("class", cls), ("device", "0x7a06")):
        (d / k).write_text(v + "\n")
    return d


@pytest.fixture
def world_readable_root():
    """A tree an unprivileged user can read (pytest's tmp dirs are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="nodecheck-hostile-", dir="/tmp"))
    os.chmod(base, 0o755)
    root = copy_root(base / "root")
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    yield root
    shutil.rmtree(base, ignore_errors=True)


def _probe_as_nobody(root: Path) -> dict:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to drop to an unprivileged user")
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-s", "--", str(root)],
                       input=probe.script().encode(), capture_output=True, timeout=120)
    return pipeline.node_from_output("n", p.stdout.decode("utf-8", "replace"), matrix=load_matrix())


def test_unreadable_pci_dir_is_unknown_not_no_gpu(world_readable_root):
    root = world_readable_root
    _pci_device(root)
    assert _check(_probe_as_nobody(root), "gpu.nvidia")["status"] == "pass"  # control: readable, no GPU
    os.chmod(root / "sys/bus/pci/devices", 0o700)
    assert _check(_probe_as_nobody(root), "gpu.nvidia")["status"] == "unknown"


def test_unsearchable_sys_bus_is_unknown_not_no_pci_bus(world_readable_root):
    root = world_readable_root
    _pci_device(root)
    os.chmod(root / "sys/bus", 0o700)
    assert _check(_probe_as_nobody(root), "gpu.nvidia")["status"] == "unknown"


def test_unreadable_pci_attribute_is_unknown(world_readable_root):
    root = world_readable_root
    d = _pci_device(root, "0000:05:00.0", vendor="0x10de", cls="0x030000")
    _pci_device(root)
    os.chmod(d / "vendor", 0o600)  # the one device that is an NVIDIA GPU cannot be identified
    assert _check(_probe_as_nobody(root), "gpu.nvidia")["status"] == "unknown"


def test_fifo_as_pci_attribute_does_not_block(tmp_path):
    root = copy_root(tmp_path / "root")
    d = _pci_device(root)
    (d / "vendor").unlink()
    os.mkfifo(d / "vendor")
    t0 = time.monotonic()
    node = _scan(root)
    assert time.monotonic() - t0 < 60
    assert _check(node, "gpu.nvidia")["status"] == "unknown"


def _facts(root: Path) -> dict:
    p = nodecheck("collect", "--root", root)
    return json.loads(p.stdout)["facts"]


def _node_os_release(root: Path) -> None:
    (root / "etc/os-release").unlink(missing_ok=True)
    (root / "usr/lib").mkdir(parents=True, exist_ok=True)
    (root / "usr/lib/os-release").unlink(missing_ok=True)
    (root / "usr/lib/os-release").write_text('ID=nodecheckos\nVERSION_ID="9.9"\nNAME="Inside The Root"\n')


@pytest.mark.parametrize("link", ["/usr/lib/os-release", "../../../../../../usr/lib/os-release",
                                  "/../usr/./lib/os-release", "/usr/lib/../lib/os-release"])
def test_os_release_links_resolve_inside_the_root(tmp_path, link):
    root = copy_root(tmp_path / "root")
    _node_os_release(root)
    (root / "etc/os-release").symlink_to(link)
    assert _facts(root)["distro"]["id"] == "nodecheckos"  # never the controller's own distro


def test_absolute_directory_link_is_re_rooted(tmp_path):
    root = copy_root(tmp_path / "root")
    _node_os_release(root)
    (root / "etc/os-release").symlink_to("/alt/os-release")
    (root / "alt").symlink_to("/usr/lib")  # an absolute link in the middle of the path
    assert _facts(root)["distro"]["id"] == "nodecheckos"


def test_symlink_loop_is_unknown(tmp_path):
    root = copy_root(tmp_path / "root")
    (root / "etc/os-release").unlink(missing_ok=True)
    (root / "usr/lib/os-release").unlink(missing_ok=True)
    (root / "etc/os-release").symlink_to("/usr/lib/os-release")
    (root / "usr/lib/os-release").symlink_to("/etc/os-release")
    facts = _facts(root)
    assert facts["distro"]["id"] is None
