"""A small facts builder for check unit tests: a Sections holding only the probe sections a
row names, parsed by the real parsers (nodecheck.facts.gather). Everything not given is
absent from the probe output, so the row shows exactly what its verdict depends on."""

from __future__ import annotations

import dataclasses

from nodecheck.facts import gather
from nodecheck.sections import Section, Sections

ALL_TOOLS = ("docker", "dockerd", "containerd", "crio", "kubelet", "rsync", "iptables", "fusermount",
             "fusermount3", "modprobe", "jq", "sysbox-runc", "snap")
BIN_DIR = {"iptables": "/usr/sbin", "modprobe": "/usr/sbin"}


def build(*, pkgs: dict | None = None, bins=(), kernel: str | None = None, arch: str | None = None,
          os_release: str | None = None, files: dict | None = None, snaps: list[str] | None = ()):
    """Facts from named inputs.

    pkgs: dpkg packages, name -> version, or (version, "hold") for a held one; None = no dpkg database.
    bins: the tools on PATH (the rest are listed as absent); None = the tool list was not read.
    files: probe section name -> text, or None for ENOENT.  snaps: the /snap entries; None = unread.
    """
    by = {}
    if pkgs is not None:
        stanzas = []
        for name, v in pkgs.items():
            ver, sel = v if isinstance(v, tuple) else (v, "install")
            stanzas.append(f"Package: {name}\nStatus: {sel} ok installed\nArchitecture: amd64\nVersion: {ver}")
        by["dpkg-status"] = Section("dpkg-status", "ok", "\n\n".join(stanzas) + "\n")
    if bins is not None:
        by["bins"] = Section("bins", "ok", "".join(
            f"{t} {BIN_DIR.get(t, '/usr/bin') + '/' + t if t in bins else '-'}\n" for t in ALL_TOOLS))
    if snaps is not None:
        by["snaps"] = Section("snaps", "ok", "".join(f"{s}\n" for s in snaps))
    if kernel:
        by["/proc/sys/kernel/osrelease"] = Section("/proc/sys/kernel/osrelease", "ok", kernel + "\n")
    if arch:
        by["/proc/sys/kernel/arch"] = Section("/proc/sys/kernel/arch", "ok", arch + "\n")
    if os_release:
        by["/etc/os-release"] = Section("/etc/os-release", "ok", os_release)
    for name, text in (files or {}).items():
        by[name] = Section(name, "ENOENT") if text is None else Section(name, "ok", text)
    return gather(Sections(by_name=by, version=1, done=True))


def with_pin(release, **changes):
    """The release with its containerd_pin entry changed (e.g. where="host"): a matrix variant."""
    return dataclasses.replace(release, containerd_pin=dataclasses.replace(release.containerd_pin, **changes))


def one(matrix, facts, release, check_id: str):
    """The finding of one check for one release (through the registry, as a scan runs it)."""
    from nodecheck.checks import run_checks

    rel = matrix.release(release) if isinstance(release, str) else release
    got = [f for f in run_checks(facts, matrix, rel) if f.id == check_id]
    assert len(got) == 1, (check_id, [f.id for f in run_checks(facts, matrix, rel)])
    return got[0]
