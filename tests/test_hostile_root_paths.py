"""Under `--root`, every path the probe scans resolves inside the root (issue 12, "Paths escape
the root"): kernel-config candidates, the PCI scan, the module directory and its shiftfs
`find`, the tool directories. Each hostile tree is built by the test next to a "controller"
directory outside the root holding what a leak would find (a kernel config with a marker
option, an NVIDIA GPU, a shiftfs module, a dockerd), reached by absolute links (the
controller's path), `../` links and link loops. The verdict must never come from it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from hostile import GOOD, copy_root, nodecheck
from nodecheck import sections

REL = "6.8.0-45-generic"  # the GOOD tree's release (its proc/sys/kernel/osrelease)
MARK = "CONFIG_NODECHECK_CONTROLLER_ONLY=y"


def _collect(root: Path) -> tuple[dict, sections.Sections]:
    p = nodecheck("collect", "--root", root, "--timeout", "30", timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    doc = json.loads(p.stdout)
    return doc["facts"], sections.parse(doc["probe"]["output"])


def _scan_check(root: Path, cid: str) -> dict:
    p = nodecheck("scan", "--root", root, "-o", "json", "--timeout", "30", timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    return next(c for c in json.loads(p.stdout)["nodes"][0]["checks"] if c["id"] == cid)


@pytest.fixture
def world(tmp_path):
    """(root, controller): a copy of the passing tree and, beside it, the controller's files."""
    root = copy_root(tmp_path / "root")
    ctl = tmp_path / "controller"
    (ctl / "boot").mkdir(parents=True)
    real = (GOOD / "boot" / f"config-{REL}").read_text()
    (ctl / "boot" / f"config-{REL}").write_text(real + MARK + "\n")
    return root, ctl


def _no_node_config(root: Path) -> None:
    for cfg in (root / "boot").glob("config-*"):
        cfg.unlink()
    (root / "proc/sys/user/max_user_namespaces").unlink(missing_ok=True)  # userns rests on the config


def test_control_in_root_config_is_read(world):
    root, _ = world
    facts, _ = _collect(root)
    assert facts["kconfig"]["source"] == f"/boot/config-{REL}"  # the tree's own copy: read


@pytest.mark.parametrize("how", ["absolute", "dotdot", "absolute-dir", "dotdot-dir"])
def test_kconfig_link_out_of_the_root_never_reads_the_controllers(world, how):
    root, ctl = world
    _no_node_config(root)
    cfg = root / "boot" / f"config-{REL}"
    outside = ctl / "boot" / f"config-{REL}"
    if how == "absolute":
        cfg.symlink_to(outside)  # the controller's path: re-rooted, it does not exist in the root
    elif how == "dotdot":
        cfg.symlink_to("../" * 12 + str(outside).lstrip("/"))  # clamped at the root
    elif how == "absolute-dir":
        shutil.rmtree(root / "boot")
        (root / "boot").symlink_to(ctl / "boot")
    else:
        shutil.rmtree(root / "boot")
        (root / "boot").symlink_to("../" * 12 + str(ctl / "boot").lstrip("/"))
    facts, s = _collect(root)
    assert facts["kconfig"]["source"] is None, facts["kconfig"]
    assert "NODECHECK_CONTROLLER_ONLY" not in json.dumps(facts)
    assert s.get(f"kconfig:/boot/config-{REL}").status == "ENOENT"
    assert _scan_check(root, "userns")["status"] == "unknown"


def test_absolute_link_inside_the_root_is_followed_there(world):
    root, _ = world
    _no_node_config(root)
    (root / "srv/kernels").mkdir(parents=True)
    (root / "srv/kernels/cfg").write_text((GOOD / "boot" / f"config-{REL}").read_text())
    (root / "boot" / f"config-{REL}").symlink_to("/srv/kernels/cfg")  # the node's own /srv
    facts, _ = _collect(root)
    assert facts["kconfig"]["source"] == f"/boot/config-{REL}" and facts["kconfig"]["options"]["USER_NS"] == "y"


def test_kconfig_link_loop_is_eloop_and_unknown(world):
    root, _ = world
    _no_node_config(root)
    (root / "boot" / f"config-{REL}").symlink_to(f"/boot/loop-a")
    (root / "boot/loop-a").symlink_to("loop-b")
    (root / "boot/loop-b").symlink_to(f"/boot/config-{REL}")
    facts, s = _collect(root)
    assert s.get(f"kconfig:/boot/config-{REL}").status == "ELOOP"
    assert facts["kconfig"]["source"] is None
    assert _scan_check(root, "userns")["status"] == "unknown"


def _gpu_dir(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for k, v in (("vendor", "0x10de"), ("class", "0x030200"), ("device", "0x2330")):
        (d / k).write_text(v + "\n")
    return d


def test_control_in_root_gpu_is_seen(world):
    root, _ = world
    _gpu_dir(root / "sys/devices/pci0000:00/0000:05:00.0")
    (root / "sys/bus/pci/devices").mkdir(parents=True, exist_ok=True)
    (root / "sys/bus/pci/devices/0000:05:00.0").symlink_to("../../../devices/pci0000:00/0000:05:00.0")
    facts, _ = _collect(root)
    assert facts["gpu"]["count"] == 1


@pytest.mark.parametrize("how", ["device-absolute", "device-dotdot", "attribute-absolute", "devices-dir-absolute",
                                 "sys-absolute"])
def test_pci_links_out_of_the_root_never_see_the_controllers_gpu(world, how):
    root, ctl = world
    gpu = _gpu_dir(ctl / "sys/devices/pci0000:00/0000:05:00.0")
    devs = root / "sys/bus/pci/devices"
    devs.mkdir(parents=True, exist_ok=True)
    if how == "device-absolute":
        (devs / "0000:05:00.0").symlink_to(gpu)
    elif how == "device-dotdot":
        (devs / "0000:05:00.0").symlink_to("../" * 12 + str(gpu).lstrip("/"))
    elif how == "attribute-absolute":
        d = devs / "0000:05:00.0"
        d.mkdir()
        for k in ("vendor", "class", "device"):
            (d / k).symlink_to(gpu / k)
    elif how == "devices-dir-absolute":
        shutil.rmtree(devs)
        devs.symlink_to(gpu.parent)
    else:
        shutil.rmtree(root / "sys")
        (root / "sys").symlink_to(ctl / "sys")
        (ctl / "sys/bus/pci").mkdir(parents=True)
        (ctl / "sys/bus/pci/devices").symlink_to(gpu.parent)
    facts, s = _collect(root)
    assert not facts["gpu"]["gpus"], facts["gpu"]
    assert "10de" not in (s.text("pci") or "")


def test_pci_devices_linked_to_the_controllers_sysfs_is_not_its_device_list(world):
    root, _ = world
    shutil.rmtree(root / "sys/bus", ignore_errors=True)
    (root / "sys/bus/pci").mkdir(parents=True)
    (root / "sys/bus/pci/devices").symlink_to("/sys/bus/pci/devices")  # re-rooted: links to itself
    facts, s = _collect(root)
    assert s.get("pci").status == "ELOOP"
    assert facts["gpu"]["count"] is None  # unknown, neither the controller's devices nor "none"


def _controller_modules(ctl: Path) -> Path:
    mods = ctl / "lib/modules" / REL
    (mods / "kernel/fs/shiftfs").mkdir(parents=True)
    (mods / "kernel/fs/shiftfs/shiftfs.ko").write_bytes(b"\x7fELF")
    (mods / "modules.builtin").write_text("kernel/fs/shiftfs/shiftfs.ko\n")
    return mods


@pytest.mark.parametrize("how", ["moddir-absolute", "moddir-dotdot", "subdir-absolute", "subdir-dotdot",
                                 "modules-parent-absolute", "lib-absolute"])
def test_module_scan_never_reaches_the_controllers_modules(world, how):
    root, ctl = world
    mods = _controller_modules(ctl)
    node = root / "usr/lib/modules" / REL  # lib -> usr/lib in the tree
    if how == "modules-parent-absolute":  # a link in the middle of the path, not the last part
        shutil.rmtree(root / "usr/lib/modules")
        (root / "usr/lib/modules").symlink_to(ctl / "lib/modules")
    elif how == "lib-absolute":
        (root / "lib").unlink()
        (root / "lib").symlink_to(ctl / "lib")
    elif how.startswith("moddir"):
        shutil.rmtree(node)
        node.symlink_to(mods if how.endswith("absolute") else "../" * 12 + str(mods).lstrip("/"))
    else:
        (node / "kernel").symlink_to(mods / "kernel" if how.endswith("absolute")
                                     else "../" * 12 + str(mods / "kernel").lstrip("/"))
    facts, s = _collect(root)
    assert not facts["modules"]["shiftfs_files"], facts["modules"]
    assert facts["modules"]["shiftfs_available"] is not True
    assert "shiftfs" not in (s.text("modules.builtin") or "")


def test_module_found_inside_the_root_is_listed_by_its_node_path(world):
    root, _ = world
    d = root / "usr/lib/modules" / REL / "kernel/fs/shiftfs"
    d.mkdir(parents=True)
    (d / "shiftfs.ko").write_bytes(b"\x7fELF")
    facts, _ = _collect(root)
    assert facts["modules"]["shiftfs_files"] == [f"/lib/modules/{REL}/kernel/fs/shiftfs/shiftfs.ko"]


def test_unreadable_module_subdir_is_unknown_not_absent(world):
    if os.geteuid() == 0:
        pytest.skip("root reads a 000 directory; the unprivileged case is the point")
    root, _ = world
    d = root / "usr/lib/modules" / REL / "kernel"
    d.mkdir()
    d.chmod(0)
    try:
        facts, _ = _collect(root)
    finally:
        d.chmod(0o755)
    assert facts["modules"]["shiftfs_files"] is None


def test_tool_dirs_linked_out_of_the_root_find_nothing(world):
    root, ctl = world
    (ctl / "bin").mkdir()
    for b in ("dockerd", "sysbox-runc", "rsync"):
        (ctl / "bin" / b).write_text("#!/bin/sh\n")
    shutil.rmtree(root / "usr/local", ignore_errors=True)
    (root / "usr/local").mkdir(parents=True)
    (root / "usr/local/bin").symlink_to(ctl / "bin")
    (root / "usr/local/sbin").symlink_to("../" * 12 + str(ctl / "bin").lstrip("/"))
    _, s = _collect(root)
    bins = dict(line.split(" ", 1) for line in (s.text("bins") or "").splitlines())
    assert bins["sysbox-runc"] == "-" and not bins["dockerd"].startswith("/usr/local"), bins
