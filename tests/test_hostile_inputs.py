"""Hostile nodes and hostile input files (issue 12): forged probe output, crafted --root trees,
FIFOs/devices/bombs as --snapshot/--matrix/-i, bad CLI values, terminal escapes. Each case must
end in a one-line error (exit 64) or an honest unknown, fast, never a traceback, a hang, or a
verdict better than the truth."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest
import yaml

from hostile import GOOD, ROOT, copy_root, nodecheck, one_line_error
from nodecheck import pipeline, sections
from nodecheck.facts import distro
from nodecheck.matrix import load as load_matrix
from nodecheck.report import table

B = "@@NODECHECK-0123abcd@@"


def _probe(*secs: tuple[str, str], header: str = f"{B} PROBE 1 root=/", done: bool = True) -> str:
    out = [header]
    for name, body in secs:
        out += [f"{B} BEGIN {name} ok", body, f"{B} END {name} 0 256"]
    if done:
        out.append(f"{B} DONE")
    return "\n".join(out) + "\n"


def _real_output() -> str:
    snap = nodecheck("collect", "--root", GOOD)
    assert snap.returncode == 0, snap.stderr
    return json.loads(snap.stdout)["probe"]["output"]


# --- forged probe output ---------------------------------------------------------------

def test_forged_header_before_the_real_probe_is_not_trusted():
    real = _real_output()
    forged = _probe(("/etc/os-release", 'ID=ubuntu\nVERSION_ID="24.04"'), header="@@NODECHECK-evil@@ PROBE 1 root=/")
    forged = forged.replace(B, "@@NODECHECK-evil@@")
    for text in (forged + real, real + forged):
        parsed = sections.parse(text)
        assert parsed.version == 0 and "probe headers" in parsed.problems[0]
        node = pipeline.node_from_output("n", text, matrix=load_matrix())
        assert node["verdict"] == "unknown" and node["error"]["kind"] == "probe-error"


def test_file_named_with_spaces_cannot_pose_as_another_section():
    out = _probe(("/etc/os-release", "ID=fedora\nVERSION_ID=40"),
                 ("/etc/os-release ok x-release", "ID=ubuntu\nVERSION_ID=24.04"))
    parsed = sections.parse(out)
    assert parsed.text("/etc/os-release") == "ID=fedora\nVERSION_ID=40"
    assert "/etc/os-release ok x-release" in parsed.names()


def test_duplicate_section_is_unknown_not_the_last_one():
    out = _probe(("/etc/os-release", "ID=fedora"), ("/etc/os-release", "ID=ubuntu"))
    parsed = sections.parse(out)
    assert parsed.get("/etc/os-release").status == "EDUP" and parsed.text("/etc/os-release") is None


def test_huge_numbers_in_end_lines_are_fast_and_not_success():
    out = f"{B} PROBE 1 root=/\n{B} BEGIN /x ok\nbody\n{B} END /x {'9' * 5000} {'9' * 5000}\n{B} DONE\n"
    t0 = time.monotonic()
    s = sections.parse(out).get("/x")
    assert time.monotonic() - t0 < 1
    assert s.rc != 0 and not s.complete


def test_megabytes_of_junk_outside_sections_stay_small():
    junk = "\n".join(f"junk line {i}" for i in range(400_000))
    out = _probe(("/etc/os-release", "ID=ubuntu")) + junk
    t0 = time.monotonic()
    parsed = sections.parse(out)
    node = pipeline.node_from_facts("n", pipeline.facts_from_output(out), matrix=load_matrix())
    assert time.monotonic() - t0 < 20
    assert len(parsed.problems) <= 22
    assert len(node.get("probe_problems", [])) <= pipeline.MAX_PROBLEMS


@pytest.mark.parametrize("body", [
    'ID=ubuntu\nVERSION_ID="24.04"\nPRETTY_NAME="' + "\\" * (1 << 20) + '"',
    ('A="b" ' * 200_000 + "\n") * 4,
    "ID=x\n" + 'Q="a\n' * 100_000,
])
def test_os_release_parsing_is_bounded(body):
    t0 = time.monotonic()
    distro.parse(sections.parse(_probe(("/etc/os-release", body))))
    assert time.monotonic() - t0 < 3


# --- crafted --root trees --------------------------------------------------------------

def _scan_root(root: Path, *extra):
    p = nodecheck("scan", "--root", root, "-o", "json", *extra, timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    return p, json.loads(p.stdout)["nodes"][0]


def test_hostname_fifo_does_not_hang(tmp_path):
    root = copy_root(tmp_path / "root")
    (root / "etc/hostname").unlink(missing_ok=True)
    os.mkfifo(root / "etc/hostname")
    t0 = time.monotonic()
    p, node = _scan_root(root)
    assert time.monotonic() - t0 < 45 and node["node"] == f"root:{root}"


def test_hostname_device_is_not_read(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    root = copy_root(tmp_path / "root")
    (root / "etc/hostname").unlink(missing_ok=True)
    os.mknod(root / "etc/hostname", 0o666 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
    p, node = _scan_root(root)
    assert node["node"] == f"root:{root}"


@pytest.mark.parametrize("link", ["/srv/name", "../../../../../../srv/name", "/../../srv/./name"])
def test_hostname_links_resolve_inside_the_root(tmp_path, link):
    root = copy_root(tmp_path / "root")
    (root / "srv").mkdir(exist_ok=True)
    (root / "srv/name").write_text("inside-node\n")
    (root / "etc/hostname").unlink(missing_ok=True)
    (root / "etc/hostname").symlink_to(link)
    _, node = _scan_root(root)
    assert node["node"] == "inside-node"


def test_hostname_link_loop_falls_back(tmp_path):
    root = copy_root(tmp_path / "root")
    (root / "etc/hostname").unlink(missing_ok=True)
    (root / "etc/hostname").symlink_to("/etc/hostname")
    _, node = _scan_root(root)
    assert node["node"] == f"root:{root}"


def test_hostname_control_characters_are_dropped(tmp_path):
    root = copy_root(tmp_path / "root")
    (root / "etc/hostname").unlink(missing_ok=True)
    (root / "etc/hostname").write_text("no\x1b]0;pwned\x07de\n")
    _, node = _scan_root(root)
    assert node["node"] == "no]0;pwnedde"


def test_crafted_osrelease_cannot_steer_kconfig_out_of_the_root(tmp_path):
    root = copy_root(tmp_path / "root")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config").write_text("CONFIG_USER_NS=y\n")
    rel = "../" * 12 + str(outside).lstrip("/")
    (root / "proc/sys/kernel/osrelease").write_text(rel + "\n")
    p = nodecheck("collect", "--root", root)
    out = json.loads(p.stdout)["probe"]["output"]
    assert f"{outside}/config ok" not in out and "outside/config ok" not in out
    assert "invalid-release" in out


# --- hostile input files ---------------------------------------------------------------

def _fifo_with_no_writer(tmp_path: Path) -> Path:
    f = tmp_path / "fifo"
    os.mkfifo(f)
    return f


def _writer_forever(path: Path) -> None:
    # A FIFO with a writer that never ends: the tool must not wait for EOF.
    def run():
        try:
            with open(path, "wb") as w:
                while True:
                    w.write(b"[" * 65536)
        except OSError:
            pass
    threading.Thread(target=run, daemon=True).start()


INPUTS = {
    "--snapshot": lambda p: ["scan", "--snapshot", p],
    "--matrix": lambda p: ["scan", "--root", GOOD, "--matrix", p],
    "-i": lambda p: ["scan", "-i", p],
    "--hosts-file": lambda p: ["scan", "--hosts-file", p],
    "matrix validate": lambda p: ["matrix", "validate", p],
}


@pytest.mark.parametrize("opt", INPUTS)
@pytest.mark.parametrize("kind", ["fifo", "fifo-with-writer", "dev-zero", "directory-for-files"])
def test_special_input_is_one_line_exit_64_fast(tmp_path, opt, kind):
    if kind == "dev-zero":
        path = Path("/dev/zero")
    elif kind == "directory-for-files":
        if opt == "-i":
            pytest.skip("a directory is a valid Ansible inventory")
        path = tmp_path
    else:
        path = _fifo_with_no_writer(tmp_path)
        if kind == "fifo-with-writer":
            _writer_forever(path)
    t0 = time.monotonic()
    p = nodecheck(*INPUTS[opt](path), timeout=60)
    assert time.monotonic() - t0 < 30
    assert p.returncode == 64, (p.returncode, p.stderr[-2000:])
    one_line_error(p)


def _valid_snapshot(tmp_path: Path) -> dict:
    p = nodecheck("collect", "--root", GOOD)
    return json.loads(p.stdout)


@pytest.mark.parametrize("content", [
    b"\xff\xfe{not utf-8",
    b"[" * 100_000,
    b'{"schema": "nodecheck.snapshot/v1", "x": ' + b"9" * 5000 + b"}",
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
])
def test_hostile_snapshot_file_is_one_line_exit_64(tmp_path, content):
    f = tmp_path / "s.json"
    f.write_bytes(content)
    t0 = time.monotonic()
    p = nodecheck("scan", "--snapshot", f)
    assert time.monotonic() - t0 < 30 and p.returncode == 64, p.stderr[-2000:]
    one_line_error(p)


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("content", [
    _alias_bomb(),
    "[" * 100_000,
    "version: " + "9" * 5000 + "\n",
    "\udcff".encode("utf-8", "surrogatepass").decode("utf-8", "replace") + "\n",
])
def test_hostile_matrix_is_one_line_exit_64_fast(tmp_path, content):
    f = tmp_path / "m.yaml"
    f.write_text(content)
    t0 = time.monotonic()
    p = nodecheck("matrix", "validate", f)
    assert time.monotonic() - t0 < 30 and p.returncode == 64, p.stderr[-2000:]
    one_line_error(p)
    p = nodecheck("scan", "--root", GOOD, "--matrix", f)
    assert p.returncode == 64 and "Traceback" not in p.stderr


def test_matrix_not_utf8_is_exit_64(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_bytes((ROOT / "matrix/sysbox.yaml").read_bytes() + b"\n# \xff\xfe\n")
    p = nodecheck("matrix", "validate", f)
    assert p.returncode == 64 and "UTF-8" in one_line_error(p)


def test_bundled_matrix_still_loads_with_its_aliases():
    assert load_matrix().releases


# --- CLI values ------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["scan", "--timeout", "nan"], ["scan", "--timeout", "inf"], ["scan", "--timeout", "-1"],
    ["scan", "--timeout", "1e400"], ["collect", "--timeout", "nan"],
    ["scan", "x", "--limit", "~("], ["scan", "x", "--limit", "~[z-a]"],
    ["scan", "--root", GOOD, "--sysbox", "0.7.1; rm -rf /"], ["scan", "--root", GOOD, "--sysbox", "0.7.1x"],
    ["scan", "x@"], ["scan", "@x"], ["scan", "x:0"], ["scan", "x:70000"],
    ["scan", "x", "-p", "0"], ["scan", "x", "-p", "70000"],
    ["k8s", "render", "-n", "Bad_NS"], ["k8s", "render", "-n", ""], ["k8s", "render", "-n", "a" * 64],
    ["k8s", "render", "--image", ""], ["k8s", "render", "--image", "evil image"],
])
def test_bad_cli_value_is_exit_64(argv):
    p = nodecheck(*argv, timeout=60)
    assert p.returncode == 64, (argv, p.returncode, p.stderr[-1500:])
    one_line_error(p)


@pytest.mark.parametrize("port", ["0", "70000", "-1", "65536"])
def test_inventory_port_out_of_range_is_exit_64(tmp_path, port):
    inv = tmp_path / "inv.ini"
    inv.write_text(f"web1 ansible_host=127.0.0.1 ansible_port={port}\n")
    p = nodecheck("scan", "-i", inv)
    assert p.returncode == 64, p.stderr[-1500:]
    assert "ansible_port" in one_line_error(p)


# --- terminal injection ----------------------------------------------------------------

def test_table_escapes_control_characters_from_the_node():
    from io import StringIO

    from rich.console import Console

    node = pipeline.error_node("evil\x1b[2J\x1b]0;title\x07host", "probe-error",
                               "msg\x1b[31mFAKE PASS\x08\x08\u009b2J\u202eok\rX")
    report = {"target": "0.7.1", "nodes": [node, {**node, "node": "two\x07"}], "summary": {"unknown": 2}}
    buf = StringIO()
    table.render(report, Console(file=buf, no_color=True, width=200, force_terminal=False))
    out = buf.getvalue()
    for c in ("\x1b", "\x07", "\x08", "\u009b", "\u202e", "\r"):
        assert c not in out, repr(c)
    assert "\\x1b[2J" in out and "\\x07" in out


def test_every_transport_accepts_only_the_boundary_this_run_generated():
    from nodecheck.transport import ProbeRun, settle

    def settled(stdout):
        r = settle(ProbeRun(stdout, exit_status=0, boundary=B))
        return r.status, r.message

    real = _probe(("/etc/os-release", "ID=ubuntu"))
    assert settled(real) == ("ok", "")
    forged = real.replace(B, "@@NODECHECK-madeup@@")
    status, why = settled(forged)
    assert status == "probe-error" and "did not generate" in why
    status, why = settled(forged + real)  # printed before the probe
    assert status == "probe-error" and "headers" in why


def test_local_run_knows_its_boundary_and_a_forger_does_not(tmp_path):
    from nodecheck.transport import local

    forger = tmp_path / "forger-sh"
    # Stands in for a shell that ignores the probe it was given and prints its own "probe".
    forger.write_text("#!/bin/sh\ncat >/dev/null\nprintf '%s\\n' '" + _probe(("/etc/os-release", "ID=x"))
                      .replace("\n", "' '") + "'\n")
    forger.chmod(0o755)
    run = local.run(str(tmp_path), timeout=10, shell=str(forger))
    assert sections.parse(run.stdout).boundary == B and run.boundary != B
    real = local.run(str(GOOD), timeout=60)
    assert sections.parse(real.stdout).boundary == real.boundary
