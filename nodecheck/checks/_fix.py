"""Distro-aware remediation text: the exact command for this node's package manager."""

from __future__ import annotations

from ..facts import Facts

_DNF = ("fedora", "rhel", "rocky", "almalinux", "centos", "ol", "amzn")


def install(facts: Facts, *pkgs: str) -> str:
    """`apt-get install -y X` / `dnf install -y X` / ... for this node."""
    did = (facts.distro.id or "").lower()
    like = facts.distro.like
    names = " ".join(pkgs)
    if did in ("ubuntu", "debian") or "debian" in like or facts.packages.manager == "dpkg":
        return f"sudo apt-get install -y {names}"
    if did == "amzn" and facts.distro.version_id == "2" or did == "centos" and (facts.distro.version_id or "").startswith("7"):
        return f"sudo yum install -y {names}"
    if did in _DNF or any(x in like for x in ("rhel", "fedora", "centos")):
        return f"sudo dnf install -y {names}"
    if did.startswith(("sles", "opensuse")) or "suse" in like:
        return f"sudo zypper install -y {names}"
    return f"install {names} with the node's package manager"


def sysctl(key: str, value: str) -> str:
    return (f"sudo sysctl -w {key}={value} && echo '{key} = {value}' | "
            f"sudo tee /etc/sysctl.d/90-sysbox.conf")
