"""Hostile SSH peers (issue 12): real sshd hosts and raw TCP peers built by the tests.

known_hosts markers per host, ProxyCommand tokens and `exec`, fd exhaustion, the deadline
covering parsing/scoring, remote processes ended at a deadline, and peers that misbehave at
every stage (endless banners, stalls, floods, a connection cut mid-output): each is an
error row within its deadline, never a traceback, never a verdict.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import lab as lablib
from tests.sshpeer import RawPeer, Sshd
from nodecheck import fleet

pytestmark = [pytest.mark.lab]
_why = lablib.available()
if _why:
    pytestmark.append(pytest.mark.skip(reason=_why))

NODECHECK = [sys.executable, "-m", "nodecheck.cli"]
SLACK = 2.5


def _target(peer, name="peer", **kw) -> fleet.Target:
    kw.setdefault("user", lablib.LAB_USER)
    kw.setdefault("key_file", getattr(peer, "key", None))
    return fleet.Target(name, "127.0.0.1", port=peer.port, **kw)


def _run(targets, known_hosts, timeout=6.0, **kw):
    return fleet.run_fleet(targets, fleet.FleetOptions(forks=20, timeout=timeout, known_hosts=known_hosts, **kw),
                           lambda r: None)


def _env():
    return dict(os.environ, NODECHECK_NO_PROGRESS="1", NO_COLOR="1")


@pytest.fixture(scope="module")
def peer():
    with Sshd() as p:
        yield p


# --- known_hosts: markers and hashes, per host -----------------------------------------------

def _hashed(name: str) -> str:
    salt = os.urandom(20)
    mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"


def test_marker_lines_for_other_hosts_do_not_break_this_one(peer, tmp_path):
    kh = tmp_path / "known_hosts"
    # Before: paramiko read each marker line as a host named "@..." with a non-base64 key and
    # failed the whole file, so every host was unreachable.
    kh.write_text(f"@cert-authority *.example.org ssh-ed25519 {peer.other_key_pub}\n"
                  f"@revoked elsewhere.example ssh-ed25519 {peer.other_key_pub}\n"
                  f"{_hashed(peer.name)} ssh-ed25519 {peer.host_key_pub}\n"
                  "this line is not a known_hosts entry\n")
    [r] = _run([_target(peer)], str(kh))
    assert r.status == "ok", r.message


def test_revoked_key_is_refused_even_when_also_listed(peer, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{peer.name} ssh-ed25519 {peer.host_key_pub}\n"
                  f"@revoked * ssh-ed25519 {peer.host_key_pub}\n")
    [r] = _run([_target(peer)], str(kh))
    assert r.status == "host-key-mismatch" and "revoked" in r.message, (r.status, r.message)


def test_revoked_key_refused_even_with_accept_new(peer, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(f"@revoked {_hashed(peer.name)} ssh-ed25519 {peer.host_key_pub}\n")
    [r] = _run([_target(peer)], str(kh), accept_new_host_keys=True)
    assert r.status == "host-key-mismatch" and "revoked" in r.message, (r.status, r.message)
    assert peer.host_key_pub not in kh.read_text().replace(f"ssh-ed25519 {peer.host_key_pub}\n", "", 1)


def test_a_cert_authority_is_no_plain_host_key(peer, tmp_path):
    kh = tmp_path / "known_hosts"
    # The host's own key as a CA: OpenSSH would not accept it as the plain host key either.
    kh.write_text(f"@cert-authority * ssh-ed25519 {peer.host_key_pub}\n")
    [r] = _run([_target(peer)], str(kh))
    assert r.status == "host-key-unknown", (r.status, r.message)


def test_negated_pattern_excludes_the_host(peer, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(f"!{peer.name},127.0.0.* ssh-ed25519 {peer.host_key_pub}\n"
                  f"[127.0.0.?]:{peer.port} ssh-ed25519 {peer.other_key_pub}\n")
    [r] = _run([_target(peer)], str(kh))
    assert r.status == "host-key-mismatch", (r.status, r.message)  # only the wildcard line applies


def test_install_path_reads_openssh_revoked_as_mismatch():
    from nodecheck.install.hostkeys import classify_unreachable

    # OpenSSH 9.2's words (sshconnect.c) for a key under @revoked, as Ansible relays them.
    msg = ("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n"
           "@       WARNING: REVOKED HOST KEY DETECTED!               @\r\n"
           "The ED25519 host key for 10.0.0.1 is marked as revoked.\r\n"
           "This could mean that a stolen key is being used to\r\nimpersonate this host.\r\n"
           "Host key verification failed.")
    assert classify_unreachable(msg) == "host-key-mismatch"


def test_install_path_revoked_from_real_openssh(peer, tmp_path):
    # The real ssh client against the real peer, under the install path's own options.
    from nodecheck.install.hostkeys import classify_unreachable, ssh_env

    kh = tmp_path / "known_hosts"
    kh.write_text(f"{peer.name} ssh-ed25519 {peer.host_key_pub}\n@revoked * ssh-ed25519 {peer.host_key_pub}\n"
                  f"@cert-authority *.example.org ssh-ed25519 {peer.other_key_pub}\n")
    args = ssh_env(accept_new=False, known_hosts=str(kh))["ANSIBLE_SSH_ARGS"]
    import shlex
    p = subprocess.run(["ssh", *shlex.split(args), "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-i", peer.key,
                        "-p", str(peer.port), f"{lablib.LAB_USER}@127.0.0.1", "true"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert classify_unreachable(p.stderr) == "host-key-mismatch", p.stderr


# --- ProxyCommand ------------------------------------------------------------------------------

def test_proxycommand_tokens_use_the_effective_port_and_user(peer, tmp_path):
    cfg = tmp_path / "ssh_config"
    # Port 1 in the config is wrong on purpose: -p / host:port / ansible_port must win, in %p too.
    cfg.write_text("Host via-exec\n  HostName 127.0.0.1\n  Port 1\n  ProxyCommand exec socat - TCP:%h:%p\n"
                   "Host via-shell\n  HostName 127.0.0.1\n  Port 1\n"
                   "  ProxyCommand sh -c 'test %r@%n = nclab@via-shell && test \"$(printf a%%sb -)\" = a-b && exec socat - TCP:%h:%p'\n"
                   f"Host *\n  User {lablib.LAB_USER}\n  IdentityFile {peer.key}\n")
    ts = [fleet.Target("via-exec", "via-exec", port=peer.port), fleet.Target("via-shell", "via-shell", port=peer.port)]
    res = _run(ts, peer.known_hosts, ssh_config=str(cfg))
    assert [(r.status, r.message) for r in res] == [("ok", ""), ("ok", "")]


def test_proxycommand_from_inventory_port_cli(peer, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host n1\n  HostName 127.0.0.1\n  Port 1\n  ProxyCommand exec socat - TCP:%h:%p\n")
    inv = tmp_path / "inv.ini"
    inv.write_text(f"n1 ansible_port={peer.port} ansible_user={lablib.LAB_USER} "
                   f"ansible_ssh_private_key_file={peer.key}\n")
    p = subprocess.run([*NODECHECK, "scan", "-i", str(inv), "--ssh-config", str(cfg), "--known-hosts",
                        peer.known_hosts, "--format", "json", "--timeout", "30"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    [node] = json.loads(p.stdout)["nodes"]
    assert "error" not in node or not node.get("error"), node.get("error")
    assert node["checks"], node


def test_failing_proxycommand_says_what_it_printed(peer, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host broken\n  HostName 127.0.0.1\n  ProxyCommand echo no route to %h >&2; exit 1\n")
    [r] = _run([fleet.Target("broken", "broken", port=peer.port, user=lablib.LAB_USER, key_file=peer.key)],
               peer.known_hosts, ssh_config=str(cfg))
    assert r.status == "unreachable" and "no route to 127.0.0.1" in r.message, r.message


def test_unknown_proxycommand_token_is_an_error_row(peer, tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host odd\n  HostName 127.0.0.1\n  ProxyCommand socat - TCP:%h:%Z\n")
    [r] = _run([fleet.Target("odd", "odd", port=peer.port)], peer.known_hosts, ssh_config=str(cfg))
    assert r.status == "unreachable" and "%Z" in r.message, r.message


# --- fd exhaustion -----------------------------------------------------------------------------

def test_low_open_file_limit_lowers_forks_and_no_host_reads_as_a_key_problem(peer, tmp_path):
    n = 30
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host h*\n  HostName 127.0.0.1\n  Port {peer.port}\n  User {lablib.LAB_USER}\n"
                   f"  IdentityFile {peer.key}\n")
    hosts = tmp_path / "hosts"
    hosts.write_text("".join(f"h{i:03d}\n" for i in range(n)))
    cmd = " ".join([*NODECHECK, "scan", "--hosts-file", str(hosts), "--ssh-config", str(cfg), "--known-hosts",
                    peer.known_hosts, "--forks", "200", "--timeout", "60", "--format", "json"])
    t0 = time.monotonic()
    p = subprocess.run(["bash", "-c", f"ulimit -n 64 && exec {cmd}"], capture_output=True, text=True,
                       env=_env(), timeout=600, cwd=str(Path(__file__).parents[1]))
    wall = time.monotonic() - t0
    assert "Traceback" not in p.stderr, p.stderr
    assert "--forks 200 lowered to" in p.stderr and "ulimit -n" in p.stderr, p.stderr
    nodes = json.loads(p.stdout)["nodes"]
    errors = [(x["node"], x["error"]["kind"], x["error"]["message"]) for x in nodes if x.get("error")]
    assert len(nodes) == n and not errors, (errors[:5], wall)


def test_emfile_is_named_not_a_host_key_problem(peer):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    from nodecheck.transport import ssh

    config = ssh.load_ssh_config("/dev/null")
    sess = ssh.Session(ssh.resolve("127.0.0.1", config=config, port=peer.port, user=lablib.LAB_USER,
                                   key_file=peer.key, known_hosts=peer.known_hosts), config=config)
    held = []
    try:
        # Leave no descriptor free at all, then try one host: the first open to fail is the
        # socket or the known_hosts file (the latter used to read as host-key-unknown).
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
        try:
            while True:
                held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass
        with pytest.raises(ssh.SSHError) as ei:
            sess.run("true")
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert ei.value.kind == "unreachable" and "too many open files" in str(ei.value), (ei.value.kind, ei.value)


# --- the deadline covers parsing and scoring --------------------------------------------------

def test_slow_scoring_is_a_timeout_row_and_stops(peer):
    spins = {"n": 0}

    def score(r):
        if r.target.name == "slow":
            while True:  # a pathological parse: pure Python, never ends by itself
                spins["n"] += 1
        return {"node": r.target.name}

    deadline = 5.0
    rows = []
    t0 = time.monotonic()
    res = fleet.run_fleet([_target(peer, "slow"), _target(peer, "fast")],
                          fleet.FleetOptions(forks=5, timeout=deadline, known_hosts=peer.known_hosts),
                          rows.append, score=score)
    wall = time.monotonic() - t0
    by = {r.target.name: r for r in res}
    assert by["slow"].status == "timeout" and "parse/score" in by["slow"].message, by["slow"]
    assert by["slow"].node is None and deadline - 0.1 <= by["slow"].seconds <= deadline + SLACK
    assert by["fast"].status == "ok" and by["fast"].node == {"node": "fast"}
    assert by["fast"].stdout == ""  # scored: the output is not kept
    assert sorted(r.target.name for r in rows) == ["fast", "slow"]  # on_result saw each once
    assert wall <= deadline + SLACK + 2.5  # closers get at most 2 s at the end
    before = spins["n"]
    time.sleep(0.5)
    assert spins["n"] - before < 1000, "the scoring thread was not stopped"


def test_a_scorer_exception_is_this_hosts_error_row(peer):
    def score(r):
        raise RecursionError("deep")

    [r] = fleet.run_fleet([_target(peer)], fleet.FleetOptions(timeout=10, known_hosts=peer.known_hosts),
                          lambda r: None, score=score)
    assert r.status == "probe-error" and "RecursionError" in r.message


# --- remote processes end at a deadline ---------------------------------------------------------

def _procs_with(marker: str) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker.encode() in cmd and st != "Z":
                out.append(int(pid))
    return out


def test_a_blocked_probe_is_ended_on_the_host_at_the_deadline():
    secs = str(random.randint(40000, 49999))  # marks this test's remote processes
    p = Sshd()
    # The node's `sh` (first in sshd's PATH) reads the probe and then blocks, with a child: a
    # probe stuck on a dead mount, as the remote side sees it.
    d = p.dir / "bin"
    d.mkdir()
    d.chmod(0o755)
    (d / "sh").write_text(f"#!/bin/dash\ncat >/dev/null\nsleep {secs} &\nexec sleep {secs}\n")
    (d / "sh").chmod(0o755)
    p.extra = (f"SetEnv PATH={d}:/usr/bin:/bin",)
    with p:
        [r] = _run([_target(p)], p.known_hosts, timeout=4.0)
        assert r.status == "timeout", (r.status, r.message)
        end = time.monotonic() + 5
        while _procs_with(f"sleep\0{secs}") and time.monotonic() < end:
            time.sleep(0.1)
        left = _procs_with(f"sleep\0{secs}")
        for pid in left:
            os.kill(pid, 9)
        assert not left, "remote processes left running after the deadline"


def _in_netns(h) -> list:
    """The processes in a lab host's network namespace other than its sshd."""
    ns = os.stat(f"/run/netns/{h.netns}").st_ino
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != h.proc.pid:
            try:
                if os.stat(f"/proc/{pid}/ns/net").st_ino == ns:
                    out.append((int(pid), Path(f"/proc/{pid}/cmdline").read_bytes()[:60]))
            except OSError:
                pass
    return out


@pytest.mark.parametrize("become", [False, True], ids=["user", "become"])
def test_lab_hang_host_leaves_no_process_in_its_namespace(become):
    # The lab's hang host: the probe's `uname -r` sleeps (and the probe's other children run).
    # As root (--become) the SSH user's signal reaches only sudo: the wrapper must do the rest.
    spec = lablib.HostSpec("hang", fault="hang", sudo="nopasswd" if become else None)
    with lablib.Lab([spec], max_lifetime=300) as lab:
        h = lab.hosts[0]
        res = fleet.run_fleet([fleet.Target("hang", h.ip, user=lablib.LAB_USER, key_file=lab.key)],
                              fleet.FleetOptions(timeout=4.0, known_hosts=lab.known_hosts, become=become),
                              lambda r: None)
        assert res[0].status == "timeout", (res[0].status, res[0].message)
        end = time.monotonic() + 5
        while _in_netns(h) and time.monotonic() < end:
            time.sleep(0.1)
        assert not _in_netns(h), _in_netns(h)


# --- peers that misbehave at every stage ---------------------------------------------------------

def _endless_line(peer, conn):
    chunk = b"x" * 65536
    while not peer.stop.is_set():
        conn.sendall(chunk)


def _endless_lines(peer, conn):
    while not peer.stop.is_set():
        conn.sendall(b"Welcome to a very chatty server\r\n" * 100)


def _stall(peer, conn):
    peer.stop.wait(60)


def _banner_then_stall(peer, conn):
    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
    peer.stop.wait(60)


# Fixed bytes, not random ones: paramiko checks only that a packet's length fits its block size (8
# before kex) and has no upper bound, so one random length in eight passed that check and left the
# client waiting for up to 4 GiB (seen in CI as a "timeout" row). Each case now pins one of the two.
def _banner_then_garbage(peer, conn):
    # length 0x1003: (0x1003 - 4) % 8 != 0, so paramiko rejects it as soon as it reads the header.
    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" + b"\x00\x00\x10\x03" + b"\xa5" * 4092)
    peer.stop.wait(5)


def _banner_then_huge_packet(peer, conn):
    # length 0x7ffffffc is well blocked, so the client reads on; only the deadline ends it.
    conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" + b"\x7f\xff\xff\xfc" + b"\xa5" * 4092)
    peer.stop.wait(60)


def _close_at_once(peer, conn):
    pass


def _bad_version(peer, conn):
    conn.sendall(b"SSH-1.5-ancient\r\n")
    peer.stop.wait(5)


RAW = {
    "endless banner line": (_endless_line, {"unreachable"}),
    "endless banner lines": (_endless_lines, {"unreachable"}),
    "accept then stall": (_stall, {"timeout"}),
    "banner then stall": (_banner_then_stall, {"timeout"}),
    "banner then garbage": (_banner_then_garbage, {"unreachable"}),
    "banner then a 2 GiB packet": (_banner_then_huge_packet, {"timeout"}),
    "close at once": (_close_at_once, {"unreachable"}),
    "SSH-1.5": (_bad_version, {"unreachable"}),
}


@pytest.mark.parametrize("case", sorted(RAW))
def test_raw_peer_is_an_error_row_in_the_deadline(case, tmp_path):
    behaviour, statuses = RAW[case]
    deadline = 4.0
    with RawPeer(behaviour) as p:
        t0 = time.monotonic()
        [r] = _run([fleet.Target(case, "127.0.0.1", port=p.port, user="x")], str(tmp_path / "kh"), timeout=deadline)
        wall = time.monotonic() - t0
    assert r.status in statuses, (r.status, r.message)
    assert r.message and "Traceback" not in r.message
    assert wall <= deadline + SLACK, wall


FORCED = {
    # stdout flood with no newline at all: capped (probe-error) or cut at the deadline (timeout)
    "flood without newlines": ("flood.sh", "#!/bin/sh\nexec tr '\\000' x < /dev/zero\n", {"probe-error", "timeout"}),
    # the session process killed mid-output: the connection drops under the reader
    "connection cut mid-output": ("cut.sh", "#!/bin/sh\nhead -c 300000 /dev/urandom\nkill -9 $PPID\n",
                                  {"probe-error", "unreachable"}),
    "early exit mid-output": ("early.sh", "#!/bin/sh\ncat >/dev/null\nhead -c 5000 /dev/urandom\nexit 3\n",
                              {"probe-error"}),
    "stdout closed, process lingers": ("linger.sh", "#!/bin/sh\nexec >/dev/null 2>&1\nexec sleep {secs}\n",
                                       {"probe-error", "timeout"}),
    "stderr flood": ("err.sh", "#!/bin/sh\nexec tr '\\000' y < /dev/zero >&2\n", {"timeout", "probe-error"}),
}


@pytest.mark.parametrize("case", sorted(FORCED))
def test_forced_command_peer_is_an_error_row_in_the_deadline(case):
    name, text, statuses = FORCED[case]
    secs = str(random.randint(50000, 59999))
    deadline = 6.0
    p = Sshd()
    p.force = p.script(name, text.replace("{secs}", secs))
    with p:
        t0 = time.monotonic()
        rows = []
        res = fleet.run_fleet([_target(p)], fleet.FleetOptions(timeout=deadline, known_hosts=p.known_hosts),
                              rows.append, score=lambda r: {"scored": r.status})
        wall = time.monotonic() - t0
    # sshd refuses to signal a forced command's processes (see README): clean up after the test.
    for pid in _procs_with(f"sleep\0{secs}"):
        os.kill(pid, 9)
    [r] = res
    assert r.status in statuses, (r.status, r.message)
    assert "Traceback" not in r.message and len(r.stdout) <= 1
    assert [x.target.name for x in rows] == ["peer"]
    if r.status != "timeout":  # scored in the worker, error rows too (the CLI makes them error nodes)
        assert r.node == {"scored": r.status}
    assert wall <= deadline + SLACK + 2.0, wall


def test_cli_against_hostile_peers_is_rows_not_tracebacks(tmp_path):
    with RawPeer(_endless_line) as a, RawPeer(_banner_then_stall) as b:
        p = subprocess.run([*NODECHECK, "scan", f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}", "--known-hosts",
                            str(tmp_path / "kh"), "--timeout", "3", "--format", "json"],
                           capture_output=True, text=True, env=_env(), timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 3
    kinds = sorted(n["error"]["kind"] for n in json.loads(p.stdout)["nodes"])
    assert kinds == ["timeout", "unreachable"], kinds


def test_a_flood_stops_at_the_fleets_output_cap():
    """The per-host stdout cap (shared out of fleet.OUTPUT_BUDGET by the forks) ends a flood as a
    probe-error at the cap, long before the deadline, without parsing it."""
    p = Sshd()
    p.force = p.script("flood.sh", "#!/bin/sh\nexec tr '\\000' x < /dev/zero\n")
    with p:
        t0 = time.monotonic()
        [r] = fleet.run_fleet([_target(p)], fleet.FleetOptions(timeout=30, known_hosts=p.known_hosts,
                                                                stdout_cap=1 << 20), lambda r: None)
        wall = time.monotonic() - t0
    assert r.status == "probe-error" and "exceeded 1048576 bytes" in r.message, (r.status, r.message)
    assert r.stdout == "" and r.parsed is None
    assert wall < 15, wall
