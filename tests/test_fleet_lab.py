"""The fleet lab, for real: sshd hosts in network namespaces, scanned over SSH.

A small mixed fleet (four profiles) plus every fault host, behind a 20 ms RTT relay.
Needs root, ip and sshd (tests/setup-system.sh installs them); skips otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import lab as lablib  # noqa: E402
from nodecheck import fleet, sections  # noqa: E402
from nodecheck.report import jsonl  # noqa: E402

pytestmark = [pytest.mark.lab]
_why = lablib.available()
if _why:
    pytestmark.append(pytest.mark.skip(reason=_why))

DEADLINE = 4.0
SLACK = 1.5
NODECHECK = str(Path(sys.executable).with_name("nodecheck"))
EXPECTED = {
    "fault-refuse": "unreachable",
    "fault-silent": "timeout",
    "fault-changed-key": "host-key-mismatch",
    "fault-hang": "timeout",
    "fault-garbage": "probe-error",
    "fault-bad-key": "auth-failed",
    "fault-unknown-key": "host-key-unknown",
}


@pytest.fixture(scope="module")
def lab():
    specs = lablib.mixed_specs(4, faults=tuple(k.removeprefix("fault-") for k in EXPECTED))
    with lablib.Lab(specs, rtt_ms=20, max_lifetime=600) as lab:
        yield lab


def _targets(lab, names=None):
    return [fleet.Target(h.name, h.ip, user=lablib.LAB_USER, key_file=lab.key, groups=(h.spec.profile,))
            for h in lab.hosts if names is None or h.name in names]


def _opts(lab, **kw):
    kw.setdefault("known_hosts", lab.known_hosts)
    return fleet.FleetOptions(forks=20, timeout=DEADLINE, **kw)


def _expected(h) -> str:
    return EXPECTED.get(h.name, "ok")


def test_statuses_deadline_and_one_exec_per_host(lab):
    before = lab.log_offsets()
    order = []
    t0 = time.monotonic()
    res = fleet.run_fleet(_targets(lab), _opts(lab), lambda r: order.append((r.target.name, time.monotonic() - t0)))
    wall = time.monotonic() - t0
    got = {r.target.name: r for r in res}
    assert {n: r.status for n, r in got.items()} == {h.name: _expected(h) for h in lab.hosts}
    # Every host gets a row, in target order, and on_result saw each exactly once.
    assert [r.target.name for r in res] == [h.name for h in lab.hosts]
    assert sorted(n for n, _ in order) == sorted(h.name for h in lab.hosts)
    # The deadline is hard, and the stuck hosts did not hold up the others.
    for name in ("fault-hang", "fault-silent"):
        assert DEADLINE - 0.1 <= got[name].seconds <= DEADLINE + SLACK, got[name]
    assert wall <= DEADLINE + SLACK
    healthy_done = [t for n, t in order if got[n].status == "ok"]
    assert max(healthy_done) < DEADLINE / 2, order
    assert "probe" in got["fault-hang"].message and "handshake" in got["fault-silent"].message
    for r in res:
        if r.status == "ok":
            assert r.kex and r.kex.startswith("curve25519-sha256")
            assert r.exit_status == 0
    time.sleep(0.5)  # let sshd finish its log lines
    counts = lab.ssh_counts(before)
    for h in lab.hosts:
        c = counts[h.name]
        if got[h.name].status in ("ok", "probe-error") or h.name == "fault-hang":
            assert (c["connections"], c["sessions"], c["exec"], c["subsystem"]) == (1, 1, 1, 0), (h.name, c)
        elif h.name in ("fault-refuse", "fault-silent"):
            assert c == {"connections": 0, "sessions": 0, "exec": 0, "subsystem": 0}, (h.name, c)
        else:  # key problems stop before any channel
            assert c["connections"] == 1 and c["sessions"] == 0 and c["exec"] == 0, (h.name, c)


def test_each_host_sees_its_own_fixture_files(lab):
    ok = [h for h in lab.hosts if _expected(h) == "ok"]
    res = fleet.run_fleet(_targets(lab, {h.name for h in ok}), _opts(lab), lambda r: None)
    seen_ids = set()
    for h, r in zip(ok, res):
        assert r.status == "ok", r
        s = sections.parse(r.stdout)
        prof = lablib._profile_files(h.spec.profile)
        assert s.text("/etc/os-release") == prof["os-release"].rstrip("\n") or \
            s.text("/etc/os-release").strip() == prof["os-release"].strip()
        assert s.text("/proc/sys/kernel/osrelease").strip() == prof["osrelease"]
        assert s.text("cmd:uname-r").strip() == prof["osrelease"]
        assert s.get(f"kconfig:/boot/config-{prof['osrelease']}").ok
        seen_ids.add(prof["osrelease"])
        if "gpu" in h.spec.profile:
            assert any(" 0x10de " in l for l in (s.text("pci") or "").splitlines())
    assert len(seen_ids) >= 3  # a mixed fleet, not four copies of this machine


def test_host_key_policy(lab, tmp_path):
    kh = tmp_path / "known_hosts"
    shutil.copy(lab.known_hosts, kh)
    names = {"fault-unknown-key", "fault-changed-key"}
    targets = _targets(lab, names)
    by = lambda res: {r.target.name: r.status for r in res}  # noqa: E731
    # Default: unknown refused, changed refused; nothing written.
    assert by(fleet.run_fleet(targets, _opts(lab, known_hosts=str(kh)), lambda r: None)) == {
        "fault-unknown-key": "host-key-unknown", "fault-changed-key": "host-key-mismatch"}
    assert kh.read_text() == Path(lab.known_hosts).read_text()
    # Opt-in: the unknown key is accepted and recorded; a changed key still fails.
    assert by(fleet.run_fleet(targets, _opts(lab, known_hosts=str(kh), accept_new_host_keys=True),
                              lambda r: None)) == {
        "fault-unknown-key": "ok", "fault-changed-key": "host-key-mismatch"}
    h = lab.host("fault-unknown-key")
    added = kh.read_text()[len(Path(lab.known_hosts).read_text()):].splitlines()
    assert added == [f"{h.ip} ssh-ed25519 {h.host_key_pub}"]
    # Recorded: the next default run trusts it.
    assert by(fleet.run_fleet(_targets(lab, {"fault-unknown-key"}), _opts(lab, known_hosts=str(kh)),
                              lambda r: None)) == {"fault-unknown-key": "ok"}


def _scan(lab, inv, out, *extra, timeout=DEADLINE):
    return [NODECHECK, "scan", "-i", inv, "--known-hosts", lab.known_hosts, "--format", "json",
            "--output-file", out, "--timeout", str(timeout), *extra]


def _env():
    return dict(os.environ, NODECHECK_NO_PROGRESS="1", NO_COLOR="1")


def test_cli_scan_inventory_jsonl_junit(lab, tmp_path):
    inv = lab.write_inventory(str(tmp_path / "inv.yml"), fmt="yaml")
    out, jx = str(tmp_path / "out.jsonl"), str(tmp_path / "j.xml")
    t0 = time.monotonic()
    r = subprocess.run(_scan(lab, inv, out, "--junit", jx), capture_output=True, text=True,
                       env=_env(), timeout=60)
    wall = time.monotonic() - t0
    assert r.returncode in (2, 3), r.stderr[-3000:]  # fault hosts make the worst verdict unknown or fail
    report = json.loads(r.stdout)
    lines = [json.loads(l) for l in Path(out).read_text().splitlines()]
    assert sorted(n["node"] for n in lines) == sorted(h.name for h in lab.hosts)
    by = {n["node"]: n for n in lines}
    assert {n["node"] for n in report["nodes"]} == set(by)
    for h in lab.hosts:
        n = by[h.name]
        want = _expected(h)
        if want == "ok":
            assert n["verdict"] in ("pass", "warn", "fail", "unknown") and n["checks"], n
            assert not n.get("error")
            assert n["facts"]["kernel.release"] == lablib._profile_files(h.spec.profile)["osrelease"]
        else:
            assert n["verdict"] == "unknown" and n["error"]["kind"] == want, n
    assert wall < DEADLINE + 10
    import xml.etree.ElementTree as ET
    suites = {s.get("name"): s for s in ET.parse(jx).getroot().findall("testsuite")}
    assert set(suites) == set(by)
    assert suites["fault-hang"].find("testcase/failure").get("type") == "timeout"


def test_sigkill_mid_run_keeps_finished_hosts_and_resume_skips_them(lab, tmp_path):
    inv = lab.write_inventory(str(tmp_path / "inv.ini"))
    out = str(tmp_path / "out.jsonl")
    slow = {"fault-hang", "fault-silent"}
    p = subprocess.Popen(_scan(lab, inv, out, "--forks", "20", timeout=30), env=_env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    end = time.monotonic() + 20
    fast = len(lab.hosts) - len(slow)
    while time.monotonic() < end and len(jsonl.done_names(out)) < fast:
        time.sleep(0.05)
    assert p.poll() is None, "the scan should still be waiting for the hanging hosts"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    raw = Path(out).read_bytes()
    assert raw.endswith(b"\n")
    lines = [json.loads(l) for l in raw.splitlines()]  # every line valid JSON
    names = [n["node"] for n in lines]
    assert len(names) == len(set(names)) == fast
    assert set(names) == {h.name for h in lab.hosts} - slow
    # Resume: only the hosts not in the file are contacted again.
    before = lab.log_offsets()
    r = subprocess.run(_scan(lab, inv, out, "--resume", timeout=2), capture_output=True, text=True,
                       env=_env(), timeout=60)
    assert r.returncode in (2, 3), r.stderr[-3000:]
    time.sleep(0.3)
    counts = lab.ssh_counts(before)
    assert all(counts[n]["connections"] == 0 for n in names), counts
    final = [json.loads(l)["node"] for l in Path(out).read_text().splitlines()]
    assert sorted(final) == sorted(h.name for h in lab.hosts)
    assert {n["node"] for n in json.loads(r.stdout)["nodes"]} == set(final)


def test_ssh_config_proxyjump_and_proxycommand(lab, tmp_path):
    a, b, c = [h for h in lab.hosts if _expected(h) == "ok"][:3]
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        f"Host via-jump\n  HostName {b.ip}\n  ProxyJump jumpbox\n"
        f"Host jumpbox\n  HostName {a.ip}\n"
        f"Host via-command\n  HostName {c.ip}\n  ProxyCommand socat - TCP:%h:%p\n"
        f"Host *\n  User {lablib.LAB_USER}\n  IdentityFile {lab.key}\n")
    before = lab.log_offsets()
    ts = [fleet.Target("via-jump", "via-jump"), fleet.Target("via-command", "via-command")]
    res = fleet.run_fleet(ts, _opts(lab, ssh_config=str(cfg)), lambda r: None)
    assert [r.status for r in res] == ["ok", "ok"], [(r.status, r.message) for r in res]
    time.sleep(0.3)
    counts = lab.ssh_counts(before)
    assert counts[a.name]["exec"] == 0 and counts[a.name]["connections"] == 1  # the jump host only forwards
    assert counts[b.name]["exec"] == 1 and counts[c.name]["exec"] == 1
    log_a = a.log.read_bytes()[before[a.name]:]
    assert b"direct-tcpip" in log_a


# --- Realistic hosts (issue 11) ----------------------------------------------------------

# What a healthy lab host must score, for the profiles in the lab. The hosts run on this
# machine's real /sys (cgroup mounts included) and its real tools (tests/setup-system.sh
# installs rsync, kmod, fuse3 and sudo), with the profile's os-release, kernel release and
# kernel config. Only findings that are true of the profile may remain:
#   debian-12          Sysbox 0.7.1 lists Debian 10 and 11 only (distro warn)
HEALTHY_NOT_PASSING = {
    "ubuntu-22.04": {},
    "debian-12": {"distro": "warn"},
}


def test_healthy_lab_hosts_pass(lab, tmp_path):
    hosts = [h for h in lab.hosts if not h.spec.fault and h.spec.profile in HEALTHY_NOT_PASSING]
    assert {h.spec.profile for h in hosts} == set(HEALTHY_NOT_PASSING)
    inv = lab.write_inventory(str(tmp_path / "inv.ini"), hosts=hosts)
    r = subprocess.run([NODECHECK, "scan", "-i", inv, "--known-hosts", lab.known_hosts, "-o", "json",
                        "--timeout", "30"], capture_output=True, text=True, env=_env(), timeout=90)
    by = {n["node"]: n for n in json.loads(r.stdout)["nodes"]}
    for h in hosts:
        n = by[h.name]
        got = {c["id"]: c["status"] for c in n["checks"] if c["status"] != "pass"}
        assert got == HEALTHY_NOT_PASSING[h.spec.profile], (h.name, h.spec.profile,
                                                             [c for c in n["checks"] if c["status"] != "pass"])
        cg = next(c for c in n["checks"] if c["id"] == "cgroups")
        assert cg["status"] == "pass" and n["facts"]["cgroups.version"] in (1, 2)
    assert by[hosts[0].name]["verdict"] in ("pass", "warn")
    assert any(n["verdict"] == "pass" for n in by.values())


@pytest.fixture(scope="module")
def sudo_lab():
    specs = [lablib.HostSpec("sudo-password", "ubuntu-22.04", sudo="password"),
             lablib.HostSpec("sudo-nopasswd", "ubuntu-22.04", sudo="nopasswd"),
             lablib.HostSpec("sudo-none", "ubuntu-22.04")]
    with lablib.Lab(specs, rtt_ms=0, max_lifetime=300) as lab:
        yield lab


@pytest.mark.skipif(not shutil.which("sudo"), reason="sudo not installed (run tests/setup-system.sh)")
def test_become_without_passwordless_sudo_says_so(sudo_lab, tmp_path):
    inv = sudo_lab.write_inventory(str(tmp_path / "inv.ini"))
    r = subprocess.run([NODECHECK, "scan", "-i", inv, "--known-hosts", sudo_lab.known_hosts, "-o", "json",
                        "--become", "--timeout", "30"], capture_output=True, text=True, env=_env(), timeout=90)
    assert r.returncode == 3, r.stderr[-2000:]
    by = {n["node"]: n for n in json.loads(r.stdout)["nodes"]}
    for name in ("sudo-password", "sudo-none"):
        err = by[name]["error"]
        assert err["kind"] == "auth-failed" and err["message"].startswith("sudo needs a password"), err
        assert "a password is required" in err["stderr_tail"]
    ok = by["sudo-nopasswd"]
    assert ok["error"] is None and ok["verdict"] == "pass", ok  # as root: the same host, fully read
    # Without --become the same hosts are scanned as the user, and nothing mentions sudo.
    r = subprocess.run([NODECHECK, "scan", "-i", inv, "--known-hosts", sudo_lab.known_hosts, "-o", "json",
                        "--timeout", "30"], capture_output=True, text=True, env=_env(), timeout=90)
    assert all(n["error"] is None for n in json.loads(r.stdout)["nodes"])
