"""Typed facts about one node, parsed from the probe's sections.

`gather(sections)` runs every subject's parser. Each parser is a pure function of the
probe text (no filesystem, no globals) and never raises: what it cannot read stays
None/unknown with a `reason`. A parser bug is contained the same way, so one bad file
can never cost the whole node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sections import Sections
from . import apparmor, cgroups, distro, gpu, hostpaths, kconfig, kernel, modules, mounts, packages, platform, runtimes, selinux, userns
from ._common import first_line


@dataclass
class Facts:
    kernel: kernel.KernelFacts
    distro: distro.DistroFacts
    kconfig: kconfig.KconfigFacts
    modules: modules.ModuleFacts
    filesystems: list[str] | None
    mounts: mounts.MountFacts
    selinux: selinux.SelinuxFacts
    apparmor: apparmor.ApparmorFacts
    userns: userns.UsernsFacts
    cgroups: cgroups.CgroupFacts
    gpu: gpu.GpuFacts
    platform: platform.PlatformFacts
    packages: packages.PackageFacts
    runtimes: runtimes.RuntimeFacts
    probe: dict = field(default_factory=dict)
    hostpaths: hostpaths.HostPathFacts = field(default_factory=lambda: hostpaths.HostPathFacts(reason="not collected"))

    def to_dict(self) -> dict:
        out = {"probe": self.probe, "filesystems": self.filesystems}
        for name in ("kernel", "distro", "kconfig", "modules", "mounts", "selinux", "apparmor",
                     "userns", "cgroups", "gpu", "platform", "packages", "runtimes", "hostpaths"):
            out[name] = getattr(self, name).to_dict()
        return out

    def summary(self) -> dict:
        """The flat, dotted key facts every report carries."""
        cn = self.runtimes.get("containerd")
        dk = self.runtimes.get("docker")
        kb = self.runtimes.get("kubelet")
        var_lib = self.mounts.data.get("var_lib")
        return {
            "kernel.release": self.kernel.release,
            "arch": self.kernel.arch,
            "distro.id": self.distro.id,
            "distro.version_id": self.distro.version_id,
            "distro.name": self.distro.pretty_name,
            "selinux.mode": self.selinux.mode,
            "apparmor.enabled": self.apparmor.enabled,
            "cgroups.version": self.cgroups.version,
            "kconfig.source": self.kconfig.source,
            "userns.unprivileged_userns_clone": self.userns.unprivileged_userns_clone,
            "mounts.var_lib.fstype": var_lib.fstype if var_lib else None,
            "runtime.docker.version": dk.upstream if dk.installed else None,
            "runtime.containerd.version": cn.upstream if cn.installed else None,
            "kubelet.version": kb.upstream if kb.installed else None,
            "runtime.docker.time_namespaces": self.runtimes.docker_time_namespaces if dk.installed else None,
            "runtime.containerd.config_version": self.runtimes.containerd_config_version if cn.installed else None,
            "userns.clone_sysctl": _yes_no(self.userns.clone_sysctl_exists, "present", "absent"),
            "modules.shiftfs_loaded": _yes_no(self.modules.is_loaded("shiftfs"), "yes", "no"),
            "gpu.count": self.gpu.count,
            "gpu.driver_version": self.gpu.driver_version,
            "platform.virtual": self.platform.virtual,
        }


def _yes_no(value: bool | None, yes: str, no: str) -> str | None:
    return None if value is None else (yes if value else no)


def _safe(fn, default, problems: list[str], *args):
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - contain parser bugs; the reason names them
        import traceback  # only when a parser failed: ~3 ms a scan does not need
        problems.append(f"parser {fn.__module__} failed: {traceback.format_exc(limit=1).strip().splitlines()[-1]}")
        return default


def gather(sections: Sections) -> Facts:
    problems = list(sections.problems)
    pk = _safe(packages.parse, packages.PackageFacts(reason="parser failed"), problems, sections)
    fs_text = sections.text("/proc/filesystems")
    # Parsers that need another's result get it here, computed once (runtimes reads the
    # package database; mounts, cgroups and selinux read one parsed mount table).
    mt = _safe(mounts.read_table, None, problems, sections)
    facts = Facts(
        kernel=_safe(kernel.parse, kernel.KernelFacts(reason="parser failed"), problems, sections),
        distro=_safe(distro.parse, distro.DistroFacts(reason="parser failed"), problems, sections),
        kconfig=_safe(kconfig.parse, kconfig.KconfigFacts(reason="parser failed"), problems, sections),
        modules=_safe(modules.parse, modules.ModuleFacts(reason="parser failed"), problems, sections),
        filesystems=[l.split()[-1] for l in fs_text.splitlines() if l.split()] if fs_text is not None else None,
        mounts=_safe(mounts.parse, mounts.MountFacts(reason="parser failed"), problems, sections, mt),
        selinux=_safe(selinux.parse, selinux.SelinuxFacts(reason="parser failed"), problems, sections, mt),
        apparmor=_safe(apparmor.parse, apparmor.ApparmorFacts(reason="parser failed"), problems, sections),
        userns=_safe(userns.parse, userns.UsernsFacts(reason="parser failed"), problems, sections),
        cgroups=_safe(cgroups.parse, cgroups.CgroupFacts(reason="parser failed"), problems, sections, mt),
        gpu=_safe(gpu.parse, gpu.GpuFacts(reason="parser failed"), problems, sections),
        platform=_safe(platform.parse, platform.PlatformFacts(evidence="parser failed"), problems, sections),
        packages=pk,
        runtimes=_safe(runtimes.parse, runtimes.RuntimeFacts(reason="parser failed"), problems, sections, pk),
        hostpaths=_safe(hostpaths.parse, hostpaths.HostPathFacts(reason="parser failed"), problems, sections),
    )
    uid = first_line(sections.text("cmd:id-u"))
    facts.probe = {"root": sections.root, "version": sections.version, "complete": sections.done,
                   "uid": int(uid) if uid and uid.isdigit() else None, "problems": problems}
    return facts
