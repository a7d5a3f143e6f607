"""Hostile output paths: nothing at an output path is ever replaced or followed, a write error is
one line with exit 74 and keeps what was written, outputs are 0600, `--resume` keeps only lines
this run could have written (issue 12, "Data destroyed")."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from hostile import GOOD, nodecheck, one_line_error, tmpfs

# (argv before the path, the option that takes the path)
WRITERS = {
    "scan --output-file": ["scan", "--root", GOOD, "--output-file"],
    "scan --junit": ["scan", "--root", GOOD, "--junit"],
    "scan --nfd-features-file": ["scan", "--root", GOOD, "--nfd-features-file"],
    "collect --output-file": ["collect", "--root", GOOD, "--output-file"],
    "k8s render --output-file": ["k8s", "render", "--output-file"],
}


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _device_full(p: Path) -> None:
    # A real character device (the same major/minor as /dev/full), built by the test, so a
    # regression replaces this one and not the machine's.
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 7))


def _device_null(p: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))


def _symlink(p: Path) -> None:
    victim = p.with_name("victim.txt")
    victim.write_text("precious\n")
    p.symlink_to(victim)


def _dangling_symlink(p: Path) -> None:
    p.symlink_to(p.with_name("does-not-exist-yet"))


def _socket(p: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()


def _directory(p: Path) -> None:
    p.mkdir()
    (p / "keep").write_text("x")


SPECIALS = {"fifo": _fifo, "dev-full": _device_full, "dev-null": _device_null, "symlink": _symlink,
            "dangling-symlink": _dangling_symlink, "socket": _socket, "directory": _directory}


@pytest.mark.parametrize("kind", SPECIALS)
@pytest.mark.parametrize("writer", WRITERS)
def test_special_output_target_is_refused_not_replaced(tmp_path, writer, kind):
    target = tmp_path / "out"
    SPECIALS[kind](target)
    before = os.lstat(target)
    t0 = time.monotonic()
    p = nodecheck(*WRITERS[writer], target, timeout=30)
    assert time.monotonic() - t0 < 20  # a FIFO without a reader must not block the run
    assert p.returncode == 64, (p.returncode, p.stderr)
    err = one_line_error(p)
    assert str(target) in err and "refusing" in err
    after = os.lstat(target)
    assert (after.st_ino, stat.S_IFMT(after.st_mode)) == (before.st_ino, stat.S_IFMT(before.st_mode))
    if kind == "symlink":
        assert (tmp_path / "victim.txt").read_text() == "precious\n"  # not written through either
    if kind == "dangling-symlink":
        assert not (tmp_path / "does-not-exist-yet").exists()
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]  # no temp file left behind


@pytest.mark.parametrize("writer", WRITERS)
def test_outputs_are_created_0600(tmp_path, writer):
    target = tmp_path / "out"
    os.umask(0o022)
    p = nodecheck(*WRITERS[writer], target)
    assert p.returncode in (0, 1), p.stderr
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_stdout_dash_still_works(tmp_path):
    p = nodecheck("collect", "--root", GOOD, "--output-file", "-")
    assert p.returncode == 0 and json.loads(p.stdout)["schema"] == "nodecheck.snapshot/v1"


def _fill(mount: Path, leave_pages: int) -> None:
    """Fill the tmpfs so exactly `leave_pages` blocks stay free."""
    st = os.statvfs(mount)
    free = st.f_bavail - leave_pages
    if free > 0:
        (mount / "filler").write_bytes(b"\0" * (free * st.f_frsize))
    assert os.statvfs(mount).f_bavail == leave_pages


@pytest.mark.parametrize("option", ["--junit", "--nfd-features-file"])
def test_disk_full_side_output_is_one_line_exit_74_and_report_kept(tmp_path, option):
    with tmpfs(tmp_path / "full", "size=64k") as mnt:
        _fill(mnt, 0)
        p = nodecheck("scan", "--root", GOOD, "-o", "json", option, mnt / "out")
        assert p.returncode == 74, p.stderr
        err = one_line_error(p)
        assert "No space left on device" in err and str(mnt / "out") in err and len(err.splitlines()) == 1
        assert json.loads(p.stdout)["verdict"] == "pass"  # the report itself still came out
        assert not (mnt / "out").exists() and os.listdir(mnt) == ["filler"]


def test_disk_full_mid_jsonl_keeps_the_lines_already_written(tmp_path):
    snap = tmp_path / "s.json"
    assert nodecheck("collect", "--root", GOOD, "--output-file", snap).returncode == 0
    probe = tmp_path / "probe.jsonl"
    assert nodecheck("scan", "--snapshot", snap, "--output-file", probe).returncode == 0
    line = probe.read_bytes()
    with tmpfs(tmp_path / "full", "size=256k") as mnt:
        pages = -(-len(line) // os.statvfs(mnt).f_frsize)
        _fill(mnt, pages)  # room for the first node's line, not for the second's
        out = mnt / "fleet.jsonl"
        p = nodecheck("scan", "--snapshot", snap, "--snapshot", snap, "-o", "json", "--output-file", out)
        assert p.returncode == 74, p.stderr
        assert "No space left on device" in one_line_error(p)
        assert len(json.loads(p.stdout)["nodes"]) == 2  # both hosts scored and reported
        kept = out.read_bytes()
        assert kept.count(b"\n") == 1 and json.loads(kept)["verdict"] == "pass"  # whole first line, no torn one


@pytest.mark.parametrize("argv", [["scan", "--root", GOOD, "--junit"], ["collect", "--root", GOOD, "--output-file"],
                                  ["scan", "--root", GOOD, "--output-file"]])
def test_read_only_directory_is_one_line_exit_74(tmp_path, argv):
    with tmpfs(tmp_path / "ro", "size=64k", "ro") as mnt:
        p = nodecheck(*argv, mnt / "out")
        assert p.returncode == 74, p.stderr
        assert "Read-only file system" in one_line_error(p)


# --- --resume -----------------------------------------------------------------------------

DEAD = "127.0.0.1:1"  # connection refused at once: a rescanned host is visibly `unreachable`


def _real_line(tmp_path: Path, *extra: str) -> dict:
    snap = tmp_path / "snap.json"
    if not snap.exists():
        assert nodecheck("collect", "--root", GOOD, "--output-file", snap).returncode == 0
    out = tmp_path / f"real{len(extra)}{'-'.join(extra)}.jsonl"
    p = nodecheck("scan", "--snapshot", snap, "--output-file", out, *extra)
    assert p.returncode in (0, 1, 2, 3), p.stderr
    node = json.loads(out.read_text())
    node["node"] = DEAD
    return node


def _resume(tmp_path: Path, lines: list[dict]):
    out = tmp_path / "fleet.jsonl"
    out.write_text("".join(json.dumps(n) + "\n" for n in lines))
    p = nodecheck("scan", DEAD, "--output-file", out, "--resume", "-o", "json", "--timeout", "5", "--known-hosts",
                  tmp_path / "kh")
    return p, json.loads(p.stdout)


def test_resume_keeps_a_line_this_run_would_have_written(tmp_path):
    p, doc = _resume(tmp_path, [_real_line(tmp_path)])
    assert "resuming, 1 hosts" in p.stderr
    assert p.returncode == 0 and doc["nodes"][0]["verdict"] == "pass" and doc["nodes"][0]["error"] is None


@pytest.mark.parametrize("forge", [
    "bare-pass", "empty-checks-pass", "pass-over-failing-check", "other-target", "other-matrix",
    "no-matrix-version", "bad-status"])
def test_resume_rescans_lines_it_cannot_trust(tmp_path, forge):
    real = _real_line(tmp_path)
    line = {
        "bare-pass": {"node": DEAD, "verdict": "pass"},
        "empty-checks-pass": {**real, "checks": []},
        "pass-over-failing-check": {**real, "checks": [{**real["checks"][0], "status": "fail"}] + real["checks"][1:]},
        "other-target": _real_line(tmp_path, "--sysbox", "0.6.7"),
        "other-matrix": {**real, "matrix_version": "1999-01-01"},
        "no-matrix-version": {k: v for k, v in real.items() if k != "matrix_version"},
        "bad-status": {**real, "verdict": "excellent"},
    }[forge]
    p, doc = _resume(tmp_path, [line])
    assert "rescanning 1 hosts" in p.stderr, p.stderr
    node = doc["nodes"][0]
    assert node["verdict"] == "unknown" and node["error"]["kind"] == "unreachable"
    assert p.returncode == 3
