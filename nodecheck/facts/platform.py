"""Bare metal or virtual machine, from DMI, the hypervisor sysfs node and CPU flags.

Coder supports NVIDIA GPUs in CVMs on bare-metal clusters only, so this matters.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..sections import Sections
from ._common import first_line

# DMI sys_vendor / product_name words of hypervisors and clouds' virtual machines.
_VM_MARKERS = (
    "qemu", "kvm", "vmware", "virtualbox", "innotek", "xen", "microsoft corporation",
    "amazon ec2", "google compute engine", "openstack", "bochs", "parallels", "bhyve",
    "digitalocean", "hetzner vserver", "alibaba cloud ecs", "oracle cloud", "nutanix ahv",
    "cloud hypervisor", "firecracker", "standard pc",
)


@dataclass
class PlatformFacts:
    virtual: bool | None = None  # True: a VM; False: bare metal; None: unknown
    hypervisor: str | None = None
    sys_vendor: str | None = None
    product_name: str | None = None
    evidence: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def parse(sections: Sections) -> PlatformFacts:
    f = PlatformFacts()
    f.sys_vendor = first_line(sections.text("dmi:sys_vendor"))
    f.product_name = first_line(sections.text("dmi:product_name"))
    hyp = first_line(sections.text("/sys/hypervisor/type"))
    flags = (sections.text("cpuinfo-flags") or "").split()
    dmi = " ".join(filter(None, [f.sys_vendor, f.product_name])).lower()
    marker = next((m for m in _VM_MARKERS if m in dmi), None)
    if hyp:
        f.virtual, f.hypervisor, f.evidence = True, hyp, f"/sys/hypervisor/type = {hyp}"
    elif marker:
        f.virtual, f.hypervisor, f.evidence = True, marker, f"DMI says {dmi!r}"
    elif "hypervisor" in flags:
        f.virtual, f.evidence = True, "CPU flag 'hypervisor' (running under a hypervisor)"
    elif f.sys_vendor and sections.get("cpuinfo-flags").ok and flags:
        # The hypervisor CPUID bit is set by every mainstream hypervisor on x86; on other
        # architectures there is no such flag, so DMI alone cannot prove bare metal.
        if any(x in flags for x in ("fpu", "sse2", "lm")):
            f.virtual, f.evidence = False, f"DMI {dmi!r}, no hypervisor CPU flag"
        else:
            f.evidence = "DMI present but no hypervisor flag on this architecture: unknown"
    else:
        f.evidence = "no DMI data and no hypervisor evidence"
    return f
