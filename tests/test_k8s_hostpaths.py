"""The CVM host-path rows (issue 16): the probe's `hostpaths` section -> facts/hostpaths.py -> which rows of
the Coder docs' "HostPath mounts" table a node can serve (checks/hostpaths.py, `storage.hostpaths`).

Samples: the section as the real probe prints it for this machine's / (captured, and re-run live), for the
fixture trees, and for temp roots built with the cases real nodes have (a file where a directory belongs,
a link loop, a read-only /usr, /var/lib on NFS: the nfs-var-lib fixture's mountinfo line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodecheck import matrix, sections
from nodecheck.checks import Ctx, registry, run_one
from nodecheck.checks import hostpaths as C
from nodecheck.facts import gather, hostpaths as H
from nodecheck.k8s import requirements

REPO = Path(__file__).resolve().parent.parent
PROBE = REPO / "nodecheck" / "probe" / "probe.sh"
FIXTURES = REPO / "tests" / "fixtures" / "hosts"
B = "@@NODECHECK-test@@"

# `sh nodecheck/probe/probe.sh /` on the lab VM (kernel 6.18.44-fc-v1045 has no /lib/modules tree there).
THIS_VM = "dir /usr/src\nabsent /lib/modules/6.18.44-fc-v1045\ndir /var/run\ndir /var/lib\n"
NFS_LINE = ("34 29 0:52 / /var/lib rw,relatime shared:40 - nfs4 10.20.0.5:/export/node07/var-lib rw,vers=4.2,"
            "rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys")
ROOT_LINE = "29 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw,discard,errors=remount-ro"
USR_RO = "40 29 259:2 / /usr ro,relatime shared:2 - ext4 /dev/usr ro"


def _sections(**named) -> sections.Sections:
    out = [f"{B} PROBE 1 root=/"]
    for name, val in named.items():
        status, text = val if isinstance(val, tuple) else ("ok", val)
        out.append(f"{B} BEGIN {name} {status}")
        out.append(text if status == "ok" else "")
        out.append(f"{B} END {name} 0 256")
    out.append(f"{B} DONE")
    return sections.parse("\n".join(out) + "\n")


def _probe(root: Path | str) -> sections.Sections:
    r = subprocess.run(["sh", str(PROBE), str(root)], capture_output=True, text=True, timeout=120, cwd="/tmp")
    return sections.parse(r.stdout)


def _finding(facts):
    """storage.hostpaths as the registry runs it (its id and crash handling included)."""
    m = matrix.load()
    spec = next(s for s in registry() if s.id == "storage.hostpaths")
    [f] = run_one(spec, Ctx(facts, m.newest, m))
    return f


def _rows(facts) -> dict[str, dict]:
    return {r["row"]: r for r in C.report(facts.hostpaths, facts.mounts)}


OFF, ON_OFF, ON_ON = ("caching off, shiftfs auto-load N/A", "caching on, shiftfs auto-load off",
                      "caching on, shiftfs auto-load on")


# --- the parser -----------------------------------------------------------------------------------------

def test_parse_real_section_by_column():
    hp = H.parse(_sections(hostpaths=THIS_VM))
    assert hp.reason is None
    assert {c: (p.path, p.kind) for c, p in hp.paths.items()} == {
        "/usr/src": ("/usr/src", "dir"), "/lib/modules": ("/lib/modules/6.18.44-fc-v1045", "absent"),
        "/var/run": ("/var/run", "dir"), "/var/lib": ("/var/lib", "dir")}


def test_parse_skips_unknown_kinds_paths_and_repeats():
    hp = H.parse(_sections(hostpaths="dir /usr/src\nweird /var/run\ndir /etc\nabsent /usr/src\n"
                                     "dir /lib/modules/a/b\neloop /var/lib\n"))
    assert {c: p.kind for c, p in hp.paths.items()} == {"/usr/src": "dir", "/var/lib": "eloop"}


@pytest.mark.parametrize("named,why", [
    ({}, "not in the probe output"),
    ({"hostpaths": ("EACCES", "")}, "permission denied"),
    ({"hostpaths": ""}, "no readable lines"),
])
def test_missing_or_unreadable_section_is_unknown(named, why):
    facts = gather(_sections(**named, mountinfo=ROOT_LINE))
    assert why in facts.hostpaths.reason and not facts.hostpaths.paths
    f = _finding(facts)
    assert f.status == "unknown" and why in f.message


def test_cut_section_judges_nothing():
    text = f"{B} PROBE 1 root=/\n{B} BEGIN hostpaths ok\ndir /usr/src\n"  # the stream ends inside it
    hp = H.parse(sections.parse(text))
    assert hp.reason and not hp.paths


# --- the rows -------------------------------------------------------------------------------------------

def test_this_vm_serves_every_row_with_an_empty_modules_dir():
    facts = gather(_sections(hostpaths=THIS_VM, mountinfo=ROOT_LINE))
    rows = _rows(facts)
    assert [r["status"] for r in rows.values()] == ["pass", "pass", "pass"]
    f = _finding(facts)
    assert f.status == "pass" and OFF in f.message and ON_ON in f.message
    assert "/lib/modules/6.18.44-fc-v1045 absent" in f.caveat


def test_var_lib_on_nfs_serves_only_caching_off():
    facts = gather(_sections(hostpaths=THIS_VM, mountinfo=ROOT_LINE + "\n" + NFS_LINE))
    rows = _rows(facts)
    assert rows[OFF]["status"] == "pass"
    assert rows[ON_OFF]["status"] == rows[ON_ON]["status"] == "warn"
    assert "nfs4" in rows[ON_OFF]["blockers"][0]
    f = _finding(facts)
    assert f.status == "warn" and f.message.startswith(f"serves the CVM host-path rows: {OFF};")


def test_read_only_usr_blocks_the_shiftfs_autoload_row_only():
    text = "dir /usr/src\ndir /lib/modules/5.15.32-flatcar\ndir /var/run\ndir /var/lib\n"
    facts = gather(_sections(hostpaths=text, mountinfo=ROOT_LINE + "\n" + USR_RO))
    rows = _rows(facts)
    assert rows[OFF]["status"] == rows[ON_OFF]["status"] == "pass"
    assert rows[ON_ON]["status"] == "warn" and "/usr/src is on a read-only mount (/usr)" in rows[ON_ON]["blockers"]
    f = _finding(facts)
    assert f.status == "warn"


def test_unreadable_mount_table_leaves_var_lib_rows_unknown():
    facts = gather(_sections(hostpaths=THIS_VM, mountinfo=("EACCES", "")))
    rows = _rows(facts)
    assert rows[OFF]["status"] == "pass"
    assert rows[ON_OFF]["status"] == "unknown"
    assert _finding(facts).status == "unknown"


def test_restricted_view_is_unknown_for_paths_the_pod_does_not_mount():
    hp = H.restrict_view(H.parse(_sections(hostpaths=THIS_VM)), ("/usr", "/proc"), "the preflight pod")
    assert hp.get("/usr/src").kind == "dir"
    assert hp.get("/var/lib").kind is None and "not mounted into the preflight pod" in hp.get("/var/lib").why


# --- the real probe, live -------------------------------------------------------------------------------

def test_live_probe_of_this_machine_matches_the_filesystem():
    facts = gather(_probe("/"))
    rel = os.uname().release
    assert facts.hostpaths.get("/lib/modules").path == f"/lib/modules/{rel}"
    for col, path in (("/usr/src", "/usr/src"), ("/lib/modules", f"/lib/modules/{rel}"), ("/var/lib", "/var/lib")):
        want = "dir" if os.path.isdir(path) else "absent" if not os.path.lexists(path) else "notdir"
        assert facts.hostpaths.get(col).kind == want, col


def test_live_probe_of_built_roots(tmp_path):
    """A root with a file at /usr/src, a link loop at /var/run and the kernel's modules dir present."""
    rel = "6.1.0-18-amd64"
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/osrelease").write_text(rel + "\n")
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/mountinfo").write_text(ROOT_LINE + "\n")
    (tmp_path / "usr").mkdir()
    (tmp_path / "usr/src").write_text("not a directory\n")
    (tmp_path / f"lib/modules/{rel}").mkdir(parents=True)
    (tmp_path / "var/lib").mkdir(parents=True)
    os.symlink("loop-b", tmp_path / "var/run")
    os.symlink("run", tmp_path / "var/loop-b")
    facts = gather(_probe(tmp_path))
    kinds = {c: p.kind for c, p in facts.hostpaths.paths.items()}
    assert kinds == {"/usr/src": "notdir", "/lib/modules": "dir", "/var/run": "eloop", "/var/lib": "dir"}
    rows = _rows(facts)
    assert all(r["status"] == "warn" for r in rows.values())  # /usr/src is in every row
    assert "/usr/src is not a directory" in rows[OFF]["blockers"]
    assert "/var/run is a link loop or an unreadable link" in rows[ON_OFF]["blockers"]


def test_live_probe_of_the_nfs_fixture():
    facts = gather(_probe(FIXTURES / "nfs-var-lib" / "root"))
    assert facts.hostpaths.get("/lib/modules").kind == "dir"
    rows = _rows(facts)
    assert rows[OFF]["status"] == "pass" and rows[ON_ON]["status"] == "warn"


def test_scan_reports_the_finding_under_its_id():
    r = subprocess.run([sys.executable, "-m", "nodecheck.cli", "scan", "--root", str(FIXTURES / "nfs-var-lib" / "root"),
                        "-o", "json"], capture_output=True, text=True, timeout=180, cwd=REPO)
    node = json.loads(r.stdout)["nodes"][0]
    f = next(c for c in node["checks"] if c["id"] == "storage.hostpaths")
    assert f["status"] == "warn" and OFF in f["message"] and "nfs4" in f["message"]


def test_rows_come_from_the_matrix_table():
    assert [r.label() for r in requirements.load().cvm_rows] == [OFF, ON_OFF, ON_ON]


def test_pod_view_infers_parents_of_mounted_paths_and_hides_the_rest():
    """What `k8s scan` scores: the Job's pod mounts /usr, /proc and /var/lib/dpkg (render.mounts_for with dpkg)."""
    from nodecheck.k8s import render as R
    visible = tuple(m.path for m in R.mounts_for(("dpkg", "libmodules")))
    pod_saw = "dir /usr/src\ndir /lib/modules/6.1.0-18-amd64\nabsent /var/run\ndir /var/lib\n"
    facts = gather(_sections(hostpaths=pod_saw, mountinfo=ROOT_LINE))
    facts.hostpaths = H.restrict_view(facts.hostpaths, visible, "the preflight pod")
    assert facts.hostpaths.get("/var/lib").kind == "dir"  # /var/lib/dpkg is a typed Directory mount below it
    assert facts.hostpaths.get("/var/run").hidden
    rows = _rows(facts)
    assert rows[OFF]["status"] == "pass" and rows[ON_OFF]["status"] == rows[ON_ON]["status"] == "hidden"
    f = _finding(facts)
    assert f.status == "pass" and "cannot tell from the preflight pod (it does not mount /var/run) for: caching on" in f.message
    # Without the libmodules component nothing is visible for any row: unknown, not a guess.
    facts.hostpaths = H.restrict_view(H.parse(_sections(hostpaths=pod_saw)), tuple(m.path for m in R.mounts_for(())),
                                      "the preflight pod")
    assert _finding(facts).status == "unknown"
