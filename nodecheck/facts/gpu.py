"""NVIDIA GPUs from PCI sysfs (needs no driver) plus the driver version and flavour.

A GPU is vendor 0x10de with class 0x0300 (VGA) or 0x0302 (3D controller); NVSwitch
(0x0680) is not a GPU and SR-IOV virtual functions (a `physfn` link) are not counted,
as NVIDIA's go-nvlib does (peers.md §6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..sections import Sections
from ._common import first_line

NVIDIA = "10de"
GPU_CLASSES = ("0300", "0302")


@dataclass(frozen=True)
class PciDevice:
    address: str
    vendor: str  # 4 hex digits, lower case, no 0x
    klass: str  # 6 hex digits
    device: str
    driver: str | None
    virtual_function: bool

    def to_dict(self) -> dict:
        return {"address": self.address, "vendor": self.vendor, "class": self.klass,
                "device": self.device, "driver": self.driver, "virtual_function": self.virtual_function}


@dataclass
class GpuFacts:
    pci_readable: bool = False
    gpus: list[PciDevice] = field(default_factory=list)
    driver_version: str | None = None
    driver_flavour: str | None = None  # open | proprietary
    dev_nodes: list[str] = field(default_factory=list)
    operator_driver: bool | None = None  # /run/nvidia/driver (GPU Operator's containerised driver)
    reason: str | None = None

    @property
    def count(self) -> int | None:
        return len(self.gpus) if self.pci_readable else None

    @property
    def bindings(self) -> list[str]:
        return sorted({g.driver or "none" for g in self.gpus})

    def to_dict(self) -> dict:
        return {"count": self.count, "gpus": [g.to_dict() for g in self.gpus],
                "bindings": self.bindings, "driver_version": self.driver_version,
                "driver_flavour": self.driver_flavour, "dev_nodes": self.dev_nodes,
                "operator_driver": self.operator_driver, "reason": self.reason}


def _hex(v: str, width: int) -> str | None:
    v = v.strip().lower().removeprefix("0x")
    if not v or not re.fullmatch(r"[0-9a-f]+", v):
        return None
    return v.zfill(width)[-width:]


def parse_pci(text: str) -> list[PciDevice]:
    """The probe's `addr vendor class device driver physfn` lines; bad lines skipped."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 6:
            continue
        addr, vendor, klass, device, driver, pf = parts
        v, c, d = _hex(vendor, 4), _hex(klass, 6), _hex(device, 4)
        if v is None or c is None:
            continue
        out.append(PciDevice(addr, v, c, d or "", None if driver == "-" else driver, pf == "1"))
    return out


def unidentified(text: str) -> list[str]:
    """Addresses of the probe's device lines whose vendor or class is not a hex ID (`-` for an
    attribute it could not read, the NULs of a planted 600 MB file): such a device might be a
    GPU, so the scan is unknown. Lines that are not device lines at all are skipped as before."""
    bad = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 6 and (_hex(parts[1], 4) is None or _hex(parts[2], 6) is None):
            bad.append(parts[0][:40])
    return bad


def is_gpu(dev: PciDevice) -> bool:
    return dev.vendor == NVIDIA and dev.klass[:4] in GPU_CLASSES and not dev.virtual_function


_PROC_VERSION = re.compile(r"NVRM version:.*?Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)")


def parse_proc_version(text: str) -> tuple[str | None, str | None]:
    """`/proc/driver/nvidia/version` line 1 -> (version, flavour)."""
    line = first_line(text) or ""
    m = _PROC_VERSION.search(line)
    if not m:
        return None, None
    return m.group(1), "open" if "Open Kernel Module" in line else "proprietary"


def parse(sections: Sections) -> GpuFacts:
    f = GpuFacts()
    s = sections.get("pci")
    if s.ok:
        bad = unidentified(s.text or "")
        f.pci_readable = s.complete and not bad
        f.gpus = [d for d in parse_pci(s.text or "") if is_gpu(d)]
        if not s.complete:
            f.reason = s.why()
        elif bad:
            f.reason = f"pci: vendor or class of {len(bad)} device(s) unreadable ({', '.join(bad[:5])})"
    elif s.exists is False:
        f.pci_readable, f.reason = True, "no PCI bus in sysfs (no PCI devices)"
    else:
        f.reason = s.why()
    v = first_line(sections.text("/sys/module/nvidia/version"))
    pv, flavour = parse_proc_version(sections.text("/proc/driver/nvidia/version") or "")
    f.driver_version = v if v and re.fullmatch(r"\d+(\.\d+)+", v) else pv
    f.driver_flavour = flavour
    f.dev_nodes = [l for l in (sections.text("dev-nvidia") or "").splitlines() if l.strip()]
    f.operator_driver = sections.get("run-nvidia-driver").exists
    return f
