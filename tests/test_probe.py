"""The probe, run for real: on this machine, under dash/busybox/bash, as an unprivileged
user, against hostile files, and killed half-way."""

import os
import pwd
import shutil
import signal
import subprocess
import time

import pytest

from nodecheck import probe, sections
from nodecheck.facts import gather
from nodecheck.transport import local

SHELLS = [s for s in (["dash"], ["busybox", "sh"], ["bash", "--posix"]) if shutil.which(s[0])]


def run_probe(root="/", shell=("sh",), user=None, timeout=60):
    cmd = [*shell, "-s", "--", root]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    p = subprocess.run(cmd, input=probe.script().encode(), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed (tests/setup-system.sh installs it)")
def test_shellcheck_posix():
    p = subprocess.run(["shellcheck", "-s", "sh", "-S", "style", probe.path()], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_runs_under_each_shell_with_the_same_sections(shell):
    rc, out, err = run_probe(shell=shell)
    assert rc == 0, err
    s = sections.parse(out)
    assert s.done and not s.problems, s.problems
    _, ref, _ = run_probe(shell=("dash",) if shutil.which("dash") else ("sh",))
    assert s.names() == sections.parse(ref).names()


def test_facts_match_this_machine():
    s = sections.parse(local.run("/").stdout)
    f = gather(s)
    assert f.kernel.release == os.uname().release
    assert f.kernel.machine == os.uname().machine
    osr = dict(l.split("=", 1) for l in open("/etc/os-release").read().splitlines() if "=" in l)
    assert f.distro.id == osr["ID"].strip('"')
    assert f.distro.version_id == osr.get("VERSION_ID", "").strip('"') or None
    assert f.probe["uid"] == os.getuid()
    # Whatever /proc/self/mountinfo holds for /, the parser must agree with it.
    root_fs = [l.split(" - ")[1].split()[0] for l in open("/proc/self/mountinfo") if l.split()[4] == "/"][-1]
    assert f.mounts.fs_of("/").fstype == root_fs


def _nobody():
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return 65534


@pytest.mark.skipif(os.getuid() != 0 or not shutil.which("setpriv"), reason="needs root to switch to an unprivileged user")
def test_unprivileged_user_gets_unknowns_not_guesses():
    import tempfile
    from pathlib import Path
    tmp_path = Path(tempfile.mkdtemp(prefix="nodecheck-nobody-", dir="/tmp"))
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=ubuntu\nVERSION_ID="22.04"\n')
    sel = root / "sys/fs/selinux"
    sel.mkdir(parents=True)
    (sel / "enforce").write_text("1\n")
    (sel / "enforce").chmod(0)
    for p in (tmp_path, root, root / "etc", root / "sys", root / "sys/fs", sel):
        p.chmod(0o755)
    rc, out, err = run_probe(str(root), user=_nobody())
    assert rc == 0, err
    s = sections.parse(out)
    assert s.get("/sys/fs/selinux/enforce").status == "EACCES"
    f = gather(s)
    # EACCES on the enforce file is unknown (permission denied), never "disabled".
    assert f.selinux.mode == "unknown"
    assert "permission denied" in f.selinux.reason
    assert f.distro.id == "ubuntu"
    assert f.probe["uid"] == _nobody()


@pytest.mark.skipif(os.getuid() != 0 or not shutil.which("setpriv"), reason="needs root to switch to an unprivileged user")
def test_unprivileged_scan_of_this_machine_completes():
    rc, out, _ = run_probe("/", user=_nobody())
    assert rc == 0
    s = sections.parse(out)
    assert s.done
    assert gather(s).kernel.release == os.uname().release


def test_hostile_files(tmp_path):
    root = tmp_path
    (root / "etc").mkdir()
    (root / "etc/os-release").write_bytes(b'ID=debian\nVERSION_ID="12"\n\xff\xfe\x00garbage\n')
    big = root / "etc/docker"
    big.mkdir()
    # 100 MB: the read is capped and the scan stays fast.
    with open(big / "daemon.json", "wb") as fh:
        fh.truncate(100 * 1024 * 1024)
    os.mkfifo(root / "etc/lsb-release")  # a FIFO must never be opened (it would block)
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text("5.15.0-91-generic\n")
    # a forged boundary inside a file cannot end or fake a section: the nonce differs
    (root / "etc/selinux").mkdir()
    (root / "etc/selinux/config").write_text("@@NODECHECK-__NONCE__@@ END /etc/selinux/config 0\nSELINUX=disabled\n")
    t = time.monotonic()
    rc, out, err = run_probe(str(root), timeout=30)
    assert time.monotonic() - t < 20
    s = sections.parse(out)
    assert s.done, s.problems
    assert s.get("/etc/lsb-release").status == "ENOTREG"
    dj = s.get("/etc/docker/daemon.json")
    assert dj.ok and len(dj.text) <= 256 * 4096
    assert "SELINUX=disabled" in s.text("/etc/selinux/config")
    f = gather(s)
    assert f.distro.id == "debian"
    assert f.kernel.release == "5.15.0-91-generic"
    assert f.runtimes.docker_daemon_json is None and f.runtimes.docker_daemon_json_error
    assert f.kconfig.source is None and "no kernel config found" in f.kconfig.reason


def test_probe_killed_halfway_gives_unknowns(tmp_path):
    """SIGKILL the probe mid-run: what was printed parses, the rest is unknown."""
    p = subprocess.Popen(["sh", "-s", "--", "/"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    # Stop the shell after its first sections by closing stdin early: feed only the head.
    text = probe.script()
    cut = text.index("# Kernel config")
    out, _ = p.communicate(text[:cut].encode(), timeout=30)
    s = sections.parse(out.decode())
    assert not s.done
    f = gather(s)
    assert f.distro.id is not None  # read before the cut
    assert f.kconfig.source is None and f.kconfig.get("USER_NS") is None
    assert f.selinux.mode == "unknown"
    assert f.probe["complete"] is False

    # and a real SIGKILL while it runs: truncated output must still parse without raising
    p = subprocess.Popen(["sh", "-s", "--", "/"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p.stdin.write(text.encode())
    p.stdin.close()
    first = p.stdout.read(4096)
    p.send_signal(signal.SIGKILL)
    p.wait()
    s = sections.parse(first.decode("utf-8", "replace"))
    gather(s)
    assert not s.done


def test_local_transport_deadline(tmp_path, monkeypatch):
    # A shell that hangs: the local transport gives up at its deadline.
    slow = tmp_path / "slowsh"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    t = time.monotonic()
    r = local.run("/", timeout=1, shell=str(slow))
    assert r.timed_out and time.monotonic() - t < 10


def test_nonce_is_fresh_and_checked():
    assert probe.script() != probe.script()
    with pytest.raises(ValueError):
        probe.script("a b; rm -rf /")



@pytest.mark.skipif(not shutil.which("strace"), reason="strace not installed (tests/setup-system.sh installs it)")
def test_pci_forks_only_for_nvidia_devices(tmp_path):
    """A real server has 30-150 PCI functions: the driver link and the device ID are read only
    for NVIDIA's, the only ones facts/gpu.py uses them for, with a root and without (the same
    lines either way). The probe's own execs are counted with strace."""
    root = tmp_path / "root"
    devs = root / "sys/bus/pci/devices"

    def device(addr, vendor, klass, dev, driver):
        d = devs / addr
        d.mkdir(parents=True)
        for name, value in (("vendor", vendor), ("class", klass), ("device", dev)):
            (d / name).write_text(value + "\n")
        (d / "driver").symlink_to(f"../../../bus/pci/drivers/{driver}")
        return d

    for i in range(40):
        device(f"0000:00:{i:02x}.0", "0x8086", "0x020000", "0x10fb", "ixgbe")
    gpu = device("0000:3b:00.0", "0x10de", "0x030200", "0x20b5", "nvidia")
    trace = tmp_path / "trace"
    p = subprocess.run(["strace", "-f", "-qq", "-s", "256", "-e", "trace=execve", "-o", str(trace),
                        "sh", "-s", "--", str(root)], input=probe.script().encode(), capture_output=True, timeout=120)
    lines = sections.parse(p.stdout.decode()).get("pci").text.splitlines()
    assert "0000:3b:00.0 0x10de 0x030200 0x20b5 nvidia 0" in lines
    assert "0000:00:00.0 0x8086 0x020000 - - 0" in lines  # its vendor and class, not its ID or driver
    execs = [ln for ln in trace.read_text().splitlines() if "execve(" in ln and "ENOENT" not in ln]
    assert [ln for ln in execs if '"readlink"' in ln and "/driver" in ln] and \
        all(str(gpu) in ln for ln in execs if '"readlink"' in ln and "/driver" in ln)
    assert not [ln for ln in execs if "/0000:00:" in ln and '/device"' in ln]
    assert len([ln for ln in execs if "/0000:00:" in ln and '/vendor"' in ln]) == 40  # every vendor is read
