"""A rescan after `nodecheck install` must not report what the install itself did (issue 13).

For a fixture tree and a release: the real preflight plugin scores the tree and decides the
install (tests/test_preflight_plugin.py runs it the same way); the roles' own defaults,
templated by Ansible with that decision, say what the plain-host path changes (the packages,
the containerd.io pin, the sysctls); those changes, plus what the sysbox-ce package's postinst
does (daemon.json's runtime, bip and pools, jq-pretty-printed), are applied to a copy of the
tree; the copy is scanned again. Every finding must then be as before or better: a lower
status, or the same status and message with a caveat gone. A finding that is new, worse, or
reworded (e.g. "containerd.io is held at 1.5.11-1; Sysbox 0.7.1 does not need the pin") is one
the install caused.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ansible")

from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.template import Templar, trust_as_template  # noqa: E402

from nodecheck import pipeline  # noqa: E402
from nodecheck.matrix import load  # noqa: E402
from nodecheck.transport import local  # noqa: E402

from test_preflight_plugin import HOSTS, REPO, _loaders, run_plugin  # noqa: E402,F401 (fixture reused)

ROLES = REPO / "playbooks" / "roles"
ORDER = {"pass": 0, "warn": 1, "unknown": 2, "fail": 3}

# Debian package -> the binaries the probe looks for (nodecheck/probe/probe.sh's tool list).
BINARIES = {"jq": ["usr/bin/jq"], "rsync": ["usr/bin/rsync"], "iptables": ["usr/sbin/iptables"],
            "kmod": ["usr/sbin/modprobe"], "fuse3": ["usr/bin/fusermount3"], "fuse": ["usr/bin/fusermount"],
            "sysbox-ce": ["usr/bin/sysbox-runc"], "containerd.io": ["usr/bin/containerd"]}


@pytest.fixture(scope="module")
def matrix():
    return load()


def role_plan(decision: dict, release: str) -> dict:
    """What the plain-host path does, from the roles' defaults templated with the decision."""
    defaults = {}
    for role in ("sysbox", "containerd_pin"):
        defaults.update(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()))
    variables = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in defaults.items()}
    variables.update(nodecheck_install=decision, sysbox_resolved_release=release, nodecheck_target_kind="docker-host")
    t = Templar(loader=DataLoader(), variables=variables)
    return {"pin": t.template(variables["containerd_pin_version"]) if t.template(variables["containerd_pin_enabled"]) else "",
            "packages": list(t.template(variables["sysbox_dependencies"])),
            "sysctls": dict(t.template(variables["sysbox_sysctls"]))}


def _stanzas(text: str) -> dict[str, str]:
    out = {}
    for block in re.split(r"\n\s*\n", text.strip()):
        m = re.search(r"^Package: (\S+)", block, re.M)
        if m:
            out[m[1]] = block
    return out


def apply_install(root: Path, plan: dict, release: str, docker_installed: bool) -> None:
    """The install's changes to a copy of a fixture tree (dpkg database, binaries, sysctls,
    daemon.json), as apt, the roles and the sysbox-ce postinst make them."""
    status = root / "var/lib/dpkg/status"
    pkgs = _stanzas(status.read_text())

    def add(name: str, version: str, held: bool = False) -> None:
        pkgs[name] = (f"Package: {name}\nStatus: {'hold' if held else 'install'} ok installed\n"
                      f"Architecture: amd64\nVersion: {version}")
        for b in BINARIES.get(name, []):
            p = root / b
            if not p.exists() and not p.is_symlink():
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text("#!/bin/sh\n")
                p.chmod(0o755)

    for name in plan["packages"]:
        if name not in pkgs:
            if name == "fuse3" and "fuse" in pkgs:  # fuse3 Replaces/Breaks fuse: apt removes fuse 2
                del pkgs["fuse"]
                for b in ("usr/bin/fusermount", "bin/fusermount"):
                    if (root / b).exists() and not (root / b).is_symlink():
                        (root / b).unlink()
            add(name, "1.0-1")
    add("sysbox-ce", f"{release}-0")
    if plan["pin"]:
        add("containerd.io", plan["pin"], held=True)
    status.write_text("\n\n".join(pkgs.values()) + "\n")
    for key, value in plan["sysctls"].items():
        f = root / "proc/sys" / key.replace(".", "/")
        if f.exists():  # the role skips keys the kernel does not have
            f.write_text(f"{value}\n")
    if docker_installed:  # postinst: jq adds the runtime, and bip/pools unless present
        dj = root / "etc/docker/daemon.json"
        cfg = json.loads(dj.read_text() or "{}") if dj.exists() else {}
        cfg.setdefault("runtimes", {})["sysbox-runc"] = {"path": "/usr/bin/sysbox-runc"}
        cfg.setdefault("bip", "172.20.0.1/16")
        cfg.setdefault("default-address-pools", [{"base": "172.25.0.0/16", "size": 24}])
        dj.parent.mkdir(parents=True, exist_ok=True)
        dj.write_text(json.dumps(cfg, indent=2) + "\n")


def scan(root: Path, matrix, release: str) -> dict[str, dict]:
    run = local.run(str(root))
    node = pipeline.node_from_output("n", run.stdout, matrix=matrix, target=release)
    return {c["id"]: c for c in node["checks"]}


def caused_by_install(before: dict, after: dict) -> list[str]:
    out = []
    for cid, a in after.items():
        b = before.get(cid)
        if b is None:
            out.append(f"new: {cid} {a['status']}: {a['message']}")
        elif ORDER[a["status"]] > ORDER[b["status"]]:
            out.append(f"worse: {cid} {b['status']} -> {a['status']}: {a['message']}")
        elif a["status"] == b["status"] and (a["message"] != b["message"]
                                             or a.get("caveat") and a.get("caveat") != b.get("caveat")):
            out.append(f"reworded: {cid}: {b['message']!r} -> {a['message']!r} caveat {a.get('caveat')!r}")
    return out


CASES = [("ubuntu-24.04", "0.7.1"), ("debian-12", "0.7.1"), ("ubuntu-22.04-arm64", "0.7.1"),
         ("ubuntu-20.04", "0.6.7"), ("ubuntu-18.04-5.4-hwe", "0.6.7"), ("debian-12", "0.5.2"),
         ("debian-12", "0.5.1"), ("ubuntu-20.04", "0.4.1")]


@pytest.mark.parametrize("profile, release", CASES, ids=[f"{p}@{r}" for p, r in CASES])
def test_rescan_after_install_has_no_finding_the_install_caused(tmp_path, matrix, profile, release):
    src = HOSTS / profile / "root"
    res, _ = run_plugin(target=release, root=str(src))
    assert res["verdict"] != "fail" and res["target_kind"] == "docker-host", (res["verdict"], res["failing"])
    plan = role_plan(res["install"], release)
    root = tmp_path / "root"
    shutil.copytree(src, root, symlinks=True)
    before = scan(root, matrix, release)
    apply_install(root, plan, release, docker_installed=res["report"]["facts"].get("runtime.docker.version") is not None)
    after = scan(root, matrix, release)
    assert caused_by_install(before, after) == []
    # and the install did what it is for: the packages Sysbox runs are there now
    assert after["deps.host-tools"]["status"] == "pass", after["deps.host-tools"]


def test_the_pin_is_decided_per_release_from_the_matrix():
    """No release the matrix lists pins the host by default: 0.4.x-0.5.1 need 1.5.11-1 in the
    workspace image (sysbox#544, coder/images#157), 0.5.2+ need none."""
    for release, version in (("0.4.1", "1.5.11-1"), ("0.5.1", "1.5.11-1"), ("0.5.2", None), ("0.7.1", None)):
        res, _ = run_plugin(target=release, root=str(HOSTS / "debian-12" / "root"))
        pin = res["install"]["containerd_pin"]
        assert pin["version"] == version and pin["where"] == "workspace-image"
        assert role_plan(res["install"], release)["pin"] == ""


def test_a_host_pin_in_the_matrix_reaches_the_role():
    """Where the matrix says `host`, the role pins exactly that version (the decision's host_version)."""
    from nodecheck.install.decision import PinDecision

    host = PinDecision("containerd.io", "1.5.11-1", "host", "https://example.invalid/src").to_vars()
    assert role_plan({"containerd_pin": host}, "0.5.1")["pin"] == "1.5.11-1"
    # an explicit -e containerd_pin_version wins over the decision (the user's call), and no
    # decision at all (preflight off) pins nothing unless asked
    assert role_plan({}, "0.7.1")["pin"] == ""
