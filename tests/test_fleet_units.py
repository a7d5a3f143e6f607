"""Unit tests for fleet targets (Ansible inventory, --limit, hosts files), JSONL and JUnit."""

from __future__ import annotations

import json
import os
import textwrap
import xml.etree.ElementTree as ET

import pytest

from nodecheck import fleet
from nodecheck.report import jsonl, junit

INI = textwrap.dedent("""\
    [web]
    web1 ansible_host=10.0.0.1 ansible_port=2222
    web2 ansible_host=10.0.0.2 ansible_user=deploy

    [db]
    db1 ansible_ssh_private_key_file=/keys/db

    [gpu:children]
    db

    [all:vars]
    ansible_user=ops
    """)

YAML = textwrap.dedent("""\
    all:
      vars:
        ansible_user: ops
      children:
        web:
          hosts:
            web1: {ansible_host: 10.0.0.1, ansible_port: 2222}
            web2: {ansible_host: 10.0.0.2, ansible_user: deploy}
        db:
          hosts:
            db1: {ansible_ssh_private_key_file: /keys/db}
        gpu:
          children:
            db: {}
    """)


@pytest.fixture(params=["ini", "yaml"])
def inventory(request, tmp_path):
    p = tmp_path / ("inv.ini" if request.param == "ini" else "inv.yml")
    p.write_text(INI if request.param == "ini" else YAML)
    return str(p)


def _by_name(ts):
    return {t.name: t for t in ts}


def test_inventory_hosts_vars_and_groups(inventory):
    ts = _by_name(fleet.load_targets([], inventory, None, None))
    assert set(ts) == {"web1", "web2", "db1"}
    assert (ts["web1"].host, ts["web1"].port, ts["web1"].user) == ("10.0.0.1", 2222, "ops")
    assert ts["web2"].user == "deploy"  # host var beats all:vars
    assert ts["db1"].host == "db1" and ts["db1"].port is None
    assert ts["db1"].key_file == "/keys/db"
    assert set(ts["db1"].groups) == {"db", "gpu"}
    assert ts["web1"].groups == ("web",)


@pytest.mark.parametrize("limit,expected", [
    ("web", {"web1", "web2"}),
    ("gpu", {"db1"}),
    ("web1,db1", {"web1", "db1"}),
    ("web:db", {"web1", "web2", "db1"}),
    ("all:!web2", {"web1", "db1"}),
    ("web:&web1", {"web1"}),
    ("web*", {"web1", "web2"}),
])
def test_inventory_limit(inventory, limit, expected):
    assert {t.name for t in fleet.load_targets([], inventory, None, limit)} == expected


def test_limit_matching_nothing_is_an_error(inventory):
    with pytest.raises(ValueError, match="matches no host"):
        fleet.load_targets([], inventory, None, "nosuchhost")


def test_missing_inventory_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        fleet.load_targets([], str(tmp_path / "nope.ini"), None, None)


def test_unparseable_inventory_is_an_error(tmp_path):
    p = tmp_path / "bad.yml"
    p.write_text("all: [unbalanced\n  : : :\n")
    with pytest.raises(ValueError):
        fleet.load_targets([], str(p), None, None)


def test_hostspecs_and_hosts_file(tmp_path):
    hf = tmp_path / "hosts"
    hf.write_text("# fleet\nalpha\nadmin@beta:2200  # comment\n\n[fe80::1]:22\n")
    ts = fleet.load_targets(["gamma", "root@delta"], None, str(hf), None)
    t = _by_name(ts)
    assert list(t) == ["gamma", "delta", "alpha", "beta:2200", "[fe80::1]:22"]
    assert (t["delta"].user, t["delta"].host) == ("root", "delta")
    assert (t["beta:2200"].user, t["beta:2200"].host, t["beta:2200"].port) == ("admin", "beta", 2200)
    assert t["[fe80::1]:22"].host == "fe80::1"
    assert {x.name for x in fleet.load_targets(["a1", "a2", "b1"], None, None, "a*:!a2")} == {"a1"}


@pytest.mark.parametrize("bad", ["", "host name", "-oProxyCommand=x", "h:99999", "a@b@c d"])
def test_bad_hostspecs_rejected(bad):
    with pytest.raises(ValueError):
        fleet.load_targets([bad], None, None, None)


def test_hosts_file_bad_line_names_the_line(tmp_path):
    hf = tmp_path / "hosts"
    hf.write_text("ok1\nnot a host\n")
    with pytest.raises(ValueError, match=r"hosts:2"):
        fleet.load_targets([], None, str(hf), None)


def test_settle_classifies_a_real_probe_run():
    from nodecheck import probe
    from nodecheck.transport import ProbeRun, settle
    import subprocess
    out = subprocess.run(["sh", "-s", "--", "/"], input=probe.script(), capture_output=True, text=True).stdout

    def status(stdout, rc):
        return settle(ProbeRun(stdout, exit_status=rc)).status
    assert status(out, 0) == "ok"
    assert status(out, 3) == "probe-error"
    assert status(out.rsplit("\n", 2)[0], 0) == "probe-error"  # no DONE
    assert status("\x00\xff random bytes", 0) == "probe-error"


def test_run_fleet_unreachable_hosts_never_raise(tmp_path):
    # Port 1 on this machine's loopback: nothing listens (refused) -> unreachable rows.
    ts = [fleet.Target(f"h{i}", "127.0.0.1", port=1) for i in range(3)]
    seen = []
    res = fleet.run_fleet(ts, fleet.FleetOptions(forks=2, timeout=5, known_hosts=str(tmp_path / "kh")),
                          seen.append, lambda d, n, r: None)
    assert [r.status for r in res] == ["unreachable"] * 3
    assert {r.target.name for r in seen} == {"h0", "h1", "h2"}


# -- JSONL -----------------------------------------------------------------

def test_jsonl_writes_lines_and_tolerates_a_torn_tail(tmp_path):
    p = str(tmp_path / "out.jsonl")
    with jsonl.JsonlWriter(p) as w:
        w.write({"node": "a", "verdict": "pass"})
        w.write({"node": "b", "verdict": "fail"})
    with open(p, "ab") as f:
        f.write(b'{"node": "c", "verd')  # a SIGKILL mid-write
    assert jsonl.done_names(p) == {"a", "b"}
    with jsonl.JsonlWriter(p) as w:  # a resumed run appends after the torn line
        w.write({"node": "d", "verdict": "warn"})
    assert jsonl.done_names(p) == {"a", "b", "d"}
    lines = open(p, "rb").read().split(b"\n")
    assert json.loads(lines[-2])["node"] == "d"
    assert jsonl.done_names(str(tmp_path / "missing.jsonl")) == set()


# -- JUnit -----------------------------------------------------------------

def _report():
    return {"schema": "nodecheck.report/v1", "nodes": [
        {"node": "n1", "verdict": "fail", "checks": [
            {"id": "kernel.version", "status": "pass", "message": "5.15 >= 5.12"},
            {"id": "shiftfs", "status": "warn", "message": "no shiftfs", "remediation": "use idmap"},
            {"id": "selinux", "status": "fail", "message": "enforcing", "remediation": "setenforce 0"},
            {"id": "cgroups", "status": "unknown", "message": "cgroup.controllers unreadable"},
        ]},
        {"node": "n2", "verdict": "unknown", "checks": [],
         "error": {"kind": "timeout", "message": "no result within 5s", "stderr_tail": "boom"}},
    ]}


def test_junit(tmp_path):
    p = tmp_path / "j.xml"
    junit.write_junit(_report(), str(p))
    root = ET.parse(p).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "2", "1")
    s1, s2 = root.findall("testsuite")
    assert s1.get("name") == "n1"
    cases = {c.get("name"): c for c in s1.findall("testcase")}
    assert all(c.get("classname") == "n1" for c in cases.values())
    assert cases["selinux"].find("failure") is not None
    assert "setenforce 0" in cases["selinux"].find("failure").text
    assert cases["cgroups"].find("error") is not None
    assert cases["kernel.version"].find("failure") is None and cases["kernel.version"].find("error") is None
    assert cases["shiftfs"].find("failure") is None and "WARN" in cases["shiftfs"].find("system-out").text
    (host,) = s2.findall("testcase")
    assert host.get("name") == "host" and host.find("failure").get("type") == "timeout"
    assert "boom" in host.find("failure").text


# sudo 1.9.13p3 (Debian 12) stderr, captured from `sudo -n sh -s -- /` on the fleet lab (issue 11).
SUDO_NO_PASSWORD = "sudo: a password is required\n"


def test_become_failure_names_sudo_and_only_sudo():
    from nodecheck.fleet import become_failure
    assert become_failure(SUDO_NO_PASSWORD, "ops").startswith("sudo needs a password")
    assert "ops" in become_failure(SUDO_NO_PASSWORD, "ops")
    assert become_failure("Sorry, user ops is not allowed to execute '/usr/bin/sh -s -- /' as root on web1.\n",
                          "ops").startswith("sudo refused")
    assert become_failure("sh: 1: sudo: not found\n").startswith("sudo is not installed")
    assert become_failure("") is None
    assert become_failure("random noise from a garbage host") is None


# --- known_hosts, ProxyCommand tokens, the open-file limit (issue 12): pure parts --------------

def test_known_hosts_markers_are_per_host_and_never_break_the_file():
    import base64
    import hashlib
    import hmac

    from nodecheck.transport import ssh

    key_a = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"A" * 36).decode()
    key_b = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"B" * 36).decode()
    salt = b"s" * 20
    hashed = "|1|%s|%s" % (base64.b64encode(salt).decode(),
                           base64.b64encode(hmac.new(salt, b"[10.0.0.9]:2222", hashlib.sha1).digest()).decode())
    entries = ssh.parse_known_hosts(
        f"@cert-authority *.example.org ssh-ed25519 {key_b}\n"
        f"@revoked bad.example ssh-ed25519 {key_a}\n"
        "@future-marker x ssh-ed25519 AAAA\n"
        "not base64 ssh-ed25519 !!!\n"
        f"{hashed} ssh-ed25519 {key_a}\n"
        f"good.example,!evil.example,*.example ssh-ed25519 {key_a}\n")
    blob_a, blob_b = base64.b64decode(key_a), base64.b64decode(key_b)
    assert len(entries) == 4  # the unknown marker and the bad key are skipped, not fatal
    assert ssh.host_key_status(entries, ["[10.0.0.9]:2222"], "ssh-ed25519", blob_a) == "known"
    assert ssh.host_key_status(entries, ["good.example"], "ssh-ed25519", blob_a) == "known"
    assert ssh.host_key_status(entries, ["bad.example"], "ssh-ed25519", blob_a) == "revoked"
    assert ssh.host_key_status(entries, ["evil.example"], "ssh-ed25519", blob_a) == "unknown"
    assert ssh.host_key_status(entries, ["ca.example.org"], "ssh-ed25519", blob_b) == "unknown"
    assert ssh.host_key_status(entries, ["good.example"], "ssh-ed25519", blob_b) == "mismatch"
    # Brackets are literal, not a character class.
    assert ssh.host_matches(("[10.0.0.1]:22",), "[10.0.0.1]:22")
    assert not ssh.host_matches(("[10.0.0.1]:22",), "1")



def test_a_private_key_is_loaded_once_per_file_while_it_is_unchanged(tmp_path, monkeypatch):
    """An RSA key's load is OpenSSL's key validation, ~230 ms of CPU for 3072 bits: once per
    host, a 1,000-host fleet spent minutes loading one file."""
    import subprocess

    import paramiko

    from nodecheck.transport import ssh
    path = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    loads = []
    real = paramiko.PKey.from_path
    monkeypatch.setattr(paramiko.PKey, "from_path", lambda p: loads.append(p) or real(p))
    first = ssh.load_private_key(str(path))
    assert ssh.load_private_key(str(path)) is first and len(loads) == 1
    (tmp_path / "first").write_bytes(path.read_bytes())
    # A new key written to the same path is the one used next.
    path.unlink()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    again = ssh.load_private_key(str(path))
    assert len(loads) == 2 and again.asbytes() != first.asbytes()
    # The first key's bytes written back in place, same size, old mtime: loaded again.
    st = path.stat()
    old_bytes = (tmp_path / "first").read_bytes()
    assert len(old_bytes) == st.st_size
    with open(path, "r+b") as f:
        f.write(old_bytes)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ssh.load_private_key(str(path)).asbytes() == first.asbytes() and len(loads) == 3
    # Failures are not cached: an encrypted key raises each time, a missing file too.
    enc = tmp_path / "id_enc"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(enc)], check=True)
    for n in (4, 5):  # paramiko raises cryptography's TypeError here, not PasswordRequiredException
        with pytest.raises((paramiko.PasswordRequiredException, TypeError)):
            ssh.load_private_key(str(enc))
        assert len(loads) == n
    with pytest.raises(FileNotFoundError):
        ssh.load_private_key(str(tmp_path / "absent"))

def _hashed(name: str, salt: bytes) -> str:
    import base64
    import hashlib
    import hmac
    return "|1|%s|%s" % (base64.b64encode(salt).decode(),
                         base64.b64encode(hmac.new(salt, name.encode(), hashlib.sha1).digest()).decode())


# (line patterns, names looked up): every kind of pattern the index treats apart.
KNOWN_HOSTS_LINES = [
    "web1", "WEB2,web2.example", "[10.0.0.9]:2222", "*.example,!evil.example", "db?",
    "!web1,*", _hashed("web3", b"a" * 20), _hashed("[10.0.0.9]:2222", b"b" * 20),
    "|1|not-base64|!!", "web1", "Web1",
]
KNOWN_HOSTS_NAMES = [["web1"], ["WEB1"], ["web2"], ["web2.example"], ["evil.example"], ["x.example"],
                     ["db1"], ["db12"], ["web3"], ["[10.0.0.9]:2222"], ["nothing"], ["web3", "web1"]]


@pytest.mark.parametrize("names", KNOWN_HOSTS_NAMES, ids=lambda n: ",".join(n))
def test_known_hosts_index_matches_what_a_scan_of_every_line_matches(names):
    """The name index must find exactly the lines OpenSSH's per-line match_hostname finds,
    in file order (known_key_types' order is the host key types asked for first)."""
    from nodecheck.transport import ssh
    text = "".join(f"{p} ssh-ed25519 AAAA{i:04d}\n" for i, p in enumerate(KNOWN_HOSTS_LINES))
    known = ssh.parse_known_hosts(text)
    scan = [e for e in known if any(ssh.host_matches(e.patterns, n) for n in names)]
    assert known.matching(names) == scan


def test_a_fleet_sized_known_hosts_is_parsed_once_and_looked_up_without_a_line_scan(tmp_path, monkeypatch):
    """1,000 hosts each scanning a 1,000-line file was ~50 ms of controller CPU per host."""
    import base64

    from nodecheck.transport import ssh
    blob = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + b"A" * 36).decode()
    path = tmp_path / "known_hosts"
    path.write_text("".join(f"10.0.{i // 250}.{i % 250} ssh-ed25519 {blob}\n" for i in range(1000)))
    parses = []
    real_parse = ssh.parse_known_hosts
    monkeypatch.setattr(ssh, "parse_known_hosts", lambda text: parses.append(1) or real_parse(text))
    matches = []
    real_match = ssh.host_matches
    monkeypatch.setattr(ssh, "host_matches", lambda p, n: matches.append(1) or real_match(p, n))
    for i in range(100):
        known = ssh.read_known_hosts(str(path))
        assert ssh.host_key_status(known, [f"10.0.1.{i}"], "ssh-ed25519", base64.b64decode(blob)) == "known"
    assert len(parses) == 1 and matches == []
    # A key appended (accept-new) is seen on the next read: the file is parsed again.
    with open(path, "a") as f:
        f.write(f"new.example ssh-ed25519 {blob}\n")
    assert ssh.known_key_types(ssh.read_known_hosts(str(path)), ["new.example"]) == ["ssh-ed25519"]
    assert len(parses) == 2
    # Rewritten in place to the same size with the old mtime (as a write within one clock tick
    # leaves it): the change is seen all the same, since the bytes are compared.
    st = path.stat()
    text = path.read_text().replace("new.example", "old.example")
    with open(path, "r+") as f:
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    known = ssh.read_known_hosts(str(path))
    assert ssh.known_key_types(known, ["new.example"]) == [] and ssh.known_key_types(known, ["old.example"])
    assert len(parses) == 3


def test_proxycommand_tokens_follow_the_effective_port_user_and_escape():
    import paramiko

    from nodecheck.transport import ssh

    cfg = paramiko.SSHConfig.from_text("Host bastioned\n  HostName 10.1.1.1\n  Port 2200\n  User cfg\n"
                                       "  ProxyCommand exec nc -X %% %h %p %r %n\n")
    assert ssh.resolve("bastioned", config=cfg, port=2222, user="ops").proxy_command == \
        "exec nc -X % 10.1.1.1 2222 ops bastioned"
    assert ssh.resolve("bastioned", config=cfg).proxy_command == "exec nc -X % 10.1.1.1 2200 cfg bastioned"
    bad = paramiko.SSHConfig.from_text("Host b\n  ProxyCommand nc %h %Q\n")
    with pytest.raises(ssh.SSHError, match="%Q"):
        ssh.resolve("b", config=bad)


def test_forks_lowered_to_the_open_file_limit():
    import subprocess
    import sys

    # In a child: a lowered hard limit cannot be raised again (no CAP_SYS_RESOURCE, even as root).
    code = textwrap.dedent("""\
        import os, resource
        from nodecheck import fleet
        n = len(os.listdir("/proc/self/fd")) + 64
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        said = []
        got = fleet.fd_limited_forks(200, said.append)
        assert 1 <= got < 200 and got * fleet.FDS_PER_HOST <= 64, got
        assert len(said) == 1 and "--forks 200 lowered to %d" % got in said[0], said
        assert fleet.fd_limited_forks(2, said.append) == 2 and len(said) == 1
        # A soft limit under a higher hard one is raised instead, and nothing is said.
        resource.setrlimit(resource.RLIMIT_NOFILE, (n - 40, n))
        assert fleet.fd_limited_forks(5, said.append) == 5 and len(said) == 1
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > n - 40
        print("ok")
        """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_unparseable_inventory_is_an_error_after_ansible_was_loaded(tmp_path, monkeypatch):
    """CI order: another test loaded ansible's constants before the env var was set."""
    import ansible.constants as C
    monkeypatch.setattr(C, "INVENTORY_UNPARSED_IS_FAILED", False)
    p = tmp_path / "bad.yml"
    p.write_text("all: [unbalanced\n  : : :\n")
    with pytest.raises(ValueError):
        fleet.load_targets([], str(p), None, None)
