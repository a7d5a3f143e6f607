"""The install lab: debootstrap'd Debian hosts with their own sshd in network namespaces,
a local apt repository of stand-in packages, and an HTTP mirror for the sysbox .deb.
See lab.py for the topology."""

from .lab import HostSpec, Lab  # noqa: F401
