"""Container engines, the containerd.io pin, Kubernetes, and the host tools Sysbox runs."""

from __future__ import annotations

from ..versions import DebianVersion, parse_major_minor, parse_version
from . import FAIL, PASS, UNKNOWN, WARN, Ctx, Finding, check
from ._fix import install

_DEB_PKG = {"rsync": "rsync", "iptables": "iptables", "fusermount": "fuse", "modprobe": "kmod"}


@check("runtime.docker", per_release=True)
def docker(ctx: Ctx) -> Finding:
    r = ctx.facts.runtimes
    d = r.get("docker")
    spec = ctx.release.runtimes.get("docker", {})
    src = spec.get("source", "")
    if r.docker_snap:
        return ctx.finding(FAIL, "Docker is installed as a snap: Sysbox cannot register its runtime with "
                           "the snap (docker run fails with `Unknown runtime specified sysbox-runc`)",
                           "sudo snap remove docker, then install Docker Engine from Docker's apt repository "
                           "(https://docs.docker.com/engine/install/).", src)
    if d.installed is None:
        return ctx.finding(UNKNOWN, f"cannot tell whether Docker is installed: {r.reason or ctx.facts.packages.reason}",
                           source=src)
    if not d.installed:
        return ctx.finding(PASS, "Docker is not installed (fine for Kubernetes nodes; install Docker "
                           "Engine first for Docker-based Coder templates)", source=src)
    if r.docker_daemon_json_error:
        return ctx.finding(FAIL, f"/etc/docker/daemon.json is unusable ({r.docker_daemon_json_error}): the "
                           "sysbox-ce package edits it with jq and its install would fail",
                           "Fix /etc/docker/daemon.json (e.g. `jq . /etc/docker/daemon.json` shows the error).", src)
    ver = d.upstream or "version unknown"
    # A caveat, not a warning: the node is fine, but the install has a side effect the user
    # must plan for, so the table shows it even when passing checks are hidden. Decided by the
    # package's own test (facts: docker_network_preset), the one the install's guard uses too.
    trap = ("" if r.docker_network_preset else
            "installing sysbox-ce restarts Docker to set bip/default-address-pools and aborts if containers "
            "exist (stop or remove them first, or set both keys in /etc/docker/daemon.json, pretty-printed, "
            "one key per line, as the package greps them)"
            + ("" if r.docker_network_preset is False else f" (daemon.json unreadable: {r.reason or 'unknown'})"))
    return ctx.finding(PASS, f"Docker {ver} ({d.source}) is a native install", source=src, caveat=trap)


@check("runtime.containerd", per_release=True)
def containerd(ctx: Ctx) -> Finding:
    """The containerd.io pin (Coder docs: 1.5.11-1 for Sysbox releases whose inner runc breaks
    with runc >= 1.1, sysbox#544), and which K8s path the installer will take."""
    c = ctx.facts.runtimes.get("containerd")
    pin = ctx.release.containerd_pin
    pkg = ctx.facts.packages.get("containerd.io")
    notes = []
    caveat = ""
    if pin is not None and pin.version and pin.where != "host":
        # Where the matrix says the pin belongs (the workspace image: the runc that breaks is
        # the inner one, #544), the host's containerd.io is not judged, and the install does
        # not pin it (nodecheck/install/decision.py). The user must still know.
        caveat = (f"Sysbox {ctx.rel} needs {pin.package}={pin.version} in the {pin.where.replace('-', ' ')} (an inner runc >= 1.1 "
                  f"fails, {pin.source}); the host's {pin.package} is not what breaks")
    if pin is not None and pkg is not None:
        installed = DebianVersion.parse(pkg.version)
        if pin.version and pin.where == "host":
            want = DebianVersion.parse(pin.version)
            if installed and want and installed > want:
                return ctx.finding(WARN,
                                   f"containerd.io {pkg.version} is newer than {pin.version}, which Sysbox {ctx.rel} "
                                   "needs on the host",
                                   f"Pin containerd.io={pin.version} (nodecheck install does it: apt preferences + hold).",
                                   pin.source)
        elif not pin.version and (pkg.held or pkg.version == "1.5.11-1"):
            # Not a warning: #544 says the pin is needed up to 0.5.1, and nothing upstream says
            # it breaks a later release. Say that, and nothing more.
            notes.append(f"containerd.io is {'held' if pkg.held else 'pinned'} at {pkg.version}; Sysbox {ctx.rel} does "
                         "not need the 1.5.11-1 pin (#544 was fixed in 0.5.2), and no upstream report says it breaks "
                         "this release")
    if c.installed is None:
        return ctx.finding(UNKNOWN, "cannot tell whether containerd is installed", source=pin.source if pin else "",
                           caveat=caveat)
    if not c.installed:
        return ctx.finding(PASS, "containerd is not installed", source=pin.source if pin else "", caveat=caveat)
    kspec = ctx.release.runtimes.get("kubernetes", {})
    cspec = kspec.get("containerd") or {}
    cmin = cspec.get("min_version")
    if ctx.facts.runtimes.get("kubelet").installed:
        # The installer's own test (is_containerd_with_userns): >= min_version, except the
        # userns-bug range, which gets CRI-O.
        in_bug = bool(c.upstream and cspec.get("userns_bug_from") and _ge(c.upstream, cspec["userns_bug_from"])
                      and _ge(cspec["userns_bug_to"], c.upstream))
        if cmin and c.upstream and _ge(c.upstream, cmin) and not in_bug:
            notes.append(f"the K8s installer will configure containerd {c.upstream} directly (pods use hostUsers: false)")
        else:
            # A caveat (shown without -v): the node passes, but the install disrupts its pods.
            crio = "the K8s installer will install its own CRI-O and switch the kubelet to it (~1 min of pod disruption)"
            caveat = f"{caveat}; {crio}" if caveat else crio
    return ctx.finding(PASS, f"containerd {c.upstream or 'version unknown'} ({c.source})"
                       + ("; " + "; ".join(notes) if notes else ""), source=kspec.get("source", ""), caveat=caveat)


def _ge(a: str, b: str) -> bool:
    va, vb = parse_version(a), parse_version(b)
    return bool(va and vb and va >= vb)


@check("kubernetes.version", per_release=True)
def kubernetes(ctx: Ctx) -> Finding:
    k = ctx.facts.runtimes.get("kubelet")
    spec = ctx.release.kubernetes
    minors = ", ".join(spec.minors)
    if k.installed is False and not ctx.facts.runtimes.kubelet_configured:
        return ctx.finding(PASS, "not a Kubernetes node (no kubelet)", source=spec.source)
    if k.installed is None and ctx.facts.runtimes.kubelet_configured is None:
        return ctx.finding(UNKNOWN, "cannot tell whether this is a Kubernetes node", source=spec.source)
    mm = parse_major_minor(k.upstream)
    if mm is None:
        return ctx.finding(UNKNOWN, "kubelet present but its version is unknown (not installed from a package)",
                           f"Check `kubelet --version`; Sysbox {ctx.rel}'s installer accepts {minors}.", spec.source)
    minor = f"{mm[0]}.{mm[1]}"
    if minor in spec.minors:
        return ctx.finding(PASS, f"kubelet {k.upstream}: Kubernetes {minor} is accepted by Sysbox {ctx.rel}'s installer ({minors})",
                           source=spec.source)
    eol = spec.eol_minors and minor in spec.eol_minors
    return ctx.finding(FAIL, f"kubelet {k.upstream}: Kubernetes {minor} is {'end-of-life for' if eol else 'not accepted by'} "
                       f"Sysbox {ctx.rel}'s installer (accepts {minors})",
                       f"Upgrade the cluster to one of {minors}, or pick a Sysbox release that accepts {minor} "
                       "(`nodecheck matrix list`).", spec.source)


@check("deps.host-tools", per_release=True)
def host_tools(ctx: Ctx) -> Finding:
    """The tools sysbox-mgr and sysbox-fs exec, for this release (matrix host_tools).

    A missing tool the sysbox-ce package pulls in only warns (installing the package fixes
    it); one it does not pull in fails: from 0.7.0 sysbox-fs runs fusermount3 (sysbox PR
    #955), but the .deb and the K8s helper still install only fuse 2's fusermount."""
    r = ctx.facts.runtimes
    tools = ctx.matrix.host_tools_for(ctx.rel)
    if not r.tools_known:
        return ctx.finding(UNKNOWN, f"cannot list the node's tools: {r.reason}",
                           source=tools[0]["source"] if tools else "")
    missing = [t for t in tools if not r.tools.get(t["name"])]
    names = ", ".join(t["name"] for t in tools)
    if not missing:
        return ctx.finding(PASS, f"{names} are installed (needed by Sysbox {ctx.rel})",
                           source=tools[-1]["source"] if tools else "")
    hard = [t for t in missing if t.get("installed_by_sysbox_package") is False]
    pkgs = sorted({t.get("package") or _DEB_PKG.get(t["name"], t["name"]) for t in missing})
    worst_tool = (hard or missing)[0]
    what = "; ".join(f"{t['name']} (needed by {t['needed_by']})" for t in missing)
    if hard:
        return ctx.finding(FAIL,
                           f"missing {what}: the sysbox-ce package does not install "
                           f"{', '.join(t.get('package') or t['name'] for t in hard)}, so Sysbox {ctx.rel} fails at "
                           "container start", install(ctx.facts, *pkgs), worst_tool["source"])
    return ctx.finding(WARN, f"missing {what}; the sysbox-ce package depends on {', '.join(pkgs)}, "
                       "which installs it unless another package already satisfies that dependency",
                       install(ctx.facts, *pkgs), worst_tool["source"])


CHECKS = [docker, containerd, kubernetes, host_tools]
