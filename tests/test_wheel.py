"""The built wheel works on its own: installed into a fresh venv outside the checkout, it
finds its matrix, schema, probe and playbooks, scans a fixture tree, and runs
`nodecheck install --check` against a real lab host (tests/ansible_lab).

The wheel is built offline (`pip wheel --no-build-isolation`, setuptools from this venv)
from a copy of the checkout's files, so the build can neither see nor leave anything in the
shared working tree. The fresh venv gets the wheel itself with --no-deps --no-index; its
dependencies come from this venv's site-packages through a .pth file (a path line only:
the checkout's editable-install hook in that directory is not processed), so `nodecheck`
can only be imported from the wheel. Ansible's entry points are written for the fresh
venv's interpreter, as pip would write them, so the action plugin imports the wheel too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FIXTURE = REPO / "tests" / "fixtures" / "hosts" / "ubuntu-24.04" / "root"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _checkout_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split("\n")
    return [f for f in out if f and not f.startswith("tests/") and (REPO / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    for f in _checkout_files():
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, src / f)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--disable-pip-version-check", "-w", str(work / "dist"), "."],
                       cwd=src, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # setuptools warns about a `project.license` table (PEP 639 wants an SPDX string).
    assert "License classifiers are deprecated" not in r.stderr and "project.license" not in r.stderr, r.stderr
    (whl,) = (work / "dist").glob("nodecheck-*.whl")
    return whl


# What the wheel must carry, and where from in the repository (the one source of truth).
DATA = {
    "nodecheck/data/matrix/sysbox.yaml": "matrix/sysbox.yaml",
    "nodecheck/data/matrix/schema.json": "matrix/schema.json",
    "nodecheck/probe/probe.sh": "nodecheck/probe/probe.sh",
    "nodecheck/schemas/report.schema.json": "nodecheck/schemas/report.schema.json",
    "nodecheck/schemas/snapshot.schema.json": "nodecheck/schemas/snapshot.schema.json",
    "nodecheck/data/playbooks/site.yml": "playbooks/site.yml",
    "nodecheck/data/playbooks/ansible.cfg": "playbooks/ansible.cfg",
    "nodecheck/data/playbooks/action_plugins/nodecheck_preflight.py": "playbooks/action_plugins/nodecheck_preflight.py",
}


def test_wheel_carries_matrix_probe_schemas_and_playbooks(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for inside, repo_path in DATA.items():
            assert inside in names, f"{inside} missing from {wheel.name}"
            assert z.read(inside) == (REPO / repo_path).read_bytes(), f"{inside} differs from {repo_path}"
        # every file of the Ansible project, roles included, and nothing else under data/
        repo_playbooks = {str(p.relative_to(REPO / "playbooks")) for p in (REPO / "playbooks").rglob("*")
                          if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")}
        packaged = {n[len("nodecheck/data/playbooks/"):] for n in names if n.startswith("nodecheck/data/playbooks/")}
        assert packaged == repo_playbooks
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta


def _fresh_venv(root: Path, wheel: Path) -> tuple[Path, dict]:
    venv = root / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    # pip from this venv installs into the fresh one (--prefix is the fresh venv's layout).
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile",
                        "--disable-pip-version-check", "--target", str(site), str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    # The console script, as pip writes it for the fresh interpreter.
    (venv / "bin" / "nodecheck").write_text(
        f"#!{py}\nimport sys\nfrom nodecheck.cli import main\nsys.exit(main())\n")
    (venv / "bin" / "nodecheck").chmod(0o755)
    # The dependencies: this venv's site-packages, after the fresh one's (a path line only).
    deps = sysconfig.get_paths()["purelib"]
    (site / "zz-nodecheck-test-deps.pth").write_text(deps + "\n")
    for script in BIN.glob("ansible*"):
        text = script.read_text(errors="replace")
        if text.startswith("#!"):
            (venv / "bin" / script.name).write_text(f"#!{py}\n" + text.split("\n", 1)[1])
            (venv / "bin" / script.name).chmod(0o755)
    env = {"PATH": f"{venv}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(root), "LC_ALL": "C.UTF-8",
           "NO_COLOR": "1", "COLUMNS": "200", "ANSIBLE_NOCOLOR": "1"}
    return venv, env


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh")
    venv, env = _fresh_venv(root, wheel)
    return root, venv, env


def test_installed_package_finds_its_data_outside_the_checkout(installed):
    root, venv, env = installed
    code = ("import nodecheck, nodecheck.matrix as m, nodecheck.install as i, nodecheck.probe as p;"
            "print(nodecheck.__file__); print(m.default_path()); print(m.schema_path()); print(i.playbooks_dir());"
            "print(len(p.script()))")
    r = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.split()
    assert all(line.startswith(str(venv)) for line in lines[:4]), lines
    assert int(lines[4]) > 1000


def test_installed_scan_of_a_fixture_tree_matches_the_checkout(installed):
    root, venv, env = installed
    fresh = subprocess.run([str(venv / "bin" / "nodecheck"), "scan", "--root", str(FIXTURE)], cwd=root, env=env,
                           capture_output=True, text=True, timeout=120)
    assert fresh.returncode in (0, 1, 2, 3), fresh.stderr[-2000:]
    here = subprocess.run([sys.executable, "-m", "nodecheck.cli", "scan", "--root", str(FIXTURE)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"})
    a, b = json.loads(fresh.stdout), json.loads(here.stdout)
    assert a["matrix_version"] == b["matrix_version"]
    assert fresh.returncode == here.returncode
    assert [(n["verdict"], [(c["id"], c["status"]) for c in n["checks"]]) for n in a["nodes"]] == \
           [(n["verdict"], [(c["id"], c["status"]) for c in n["checks"]]) for n in b["nodes"]]


def _lab_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (the install lab: network namespaces, chroot, mounts)"
    for tool in ("debootstrap", "ip", "unshare", "dpkg-deb", "dpkg-scanpackages", "ssh", "ssh-keygen"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (tests/setup-system.sh installs it)"
    if not (BIN / "ansible-playbook").exists():
        return "ansible-playbook is not in this venv"
    return None


@pytest.mark.lab
def test_installed_install_check_against_a_lab_host(installed):
    reason = _lab_reason()
    if reason:
        pytest.skip(reason)
    sys.path.insert(0, str(REPO / "tests"))
    from ansible_lab import HostSpec, Lab

    root, venv, env = installed
    work = Path(tempfile.mkdtemp(prefix="nodecheck-wheel-lab-"))
    lab = Lab(work, [HostSpec("wheelhost")], log=lambda m: print(m, file=sys.stderr))
    try:
        lab.start()
        inv = lab.write_inventory(work / "inv.yml")
        before = subprocess.run(lab.ctl_cmd(["ssh", *lab.ssh_opts(), f"root@{lab.hosts['wheelhost'].addr}",
                                             "find /etc /var/cache /usr/bin -newer /etc/hostname | sort"]),
                                capture_output=True, text=True).stdout
        r = subprocess.run(lab.ctl_cmd([str(venv / "bin" / "nodecheck"), "install", "-i", str(inv), "--check",
                                        "--sysbox", "0.7.1", "--sysbox-deb-url", lab.mirror_url,
                                        "--sysbox-deb-sha256", lab.pkgs["sysbox_sha256"],
                                        "--private-data-dir", str(work / "pdd")]),
                           cwd=root, env={**env, "ANSIBLE_HOME": str(root / "ansible-home")},
                           capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-4000:]
        # the plan's last column, its wrapped lines joined (the other cells of those lines are empty)
        flat = " ".join(re.sub(r"[│┃]", " ", out).split())
        assert "install sysbox-ce 0.7.1-0" in flat, out[-4000:]
        assert "Check mode: nothing was changed" in out
        # the run used the wheel's playbooks, not a checkout's
        cwd = json.loads((work / "pdd" / "artifacts" / "plan" / "command").read_text())["cwd"]
        assert cwd.startswith(str(venv)) and cwd.endswith("nodecheck/data/playbooks"), cwd
        after = subprocess.run(lab.ctl_cmd(["ssh", *lab.ssh_opts(), f"root@{lab.hosts['wheelhost'].addr}",
                                            "find /etc /var/cache /usr/bin -newer /etc/hostname | sort"]),
                               capture_output=True, text=True).stdout
        assert after == before, "check mode changed the host"
    finally:
        lab.stop()
        shutil.rmtree(work, ignore_errors=True)

