"""The words every layer shares, defined once: verdicts and their order, error kinds, the
architecture names, and when the console may use colour.

Checks, the pipeline, the renderers, the fleet and the Kubernetes scan import these instead of
spelling their own copies, so a new verdict or error kind is added in one place and a renderer
can never disagree with the scorer about what "worse" means.
"""

from __future__ import annotations

import os

# --- verdicts ---------------------------------------------------------------------------------
PASS, WARN, FAIL, UNKNOWN = "pass", "warn", "fail", "unknown"
# The order reports list them in (summary counts, table columns).
VERDICTS = (PASS, WARN, FAIL, UNKNOWN)
# Severity: fail beats unknown beats warn beats pass. Unknown ranks above warn because "we could
# not tell" must never read as "works with a caveat"; below fail because a known blocker is worse.
_ORDER = {PASS: 0, WARN: 1, UNKNOWN: 2, FAIL: 3}
SEVERITY = _ORDER


def worst(statuses) -> str:
    """The most severe of `statuses` (pass for none)."""
    out = PASS
    for s in statuses:
        if _ORDER[s] > _ORDER[out]:
            out = s
    return out


# --- error kinds: why a node has no findings ----------------------------------------------------
# What a transport (SSH, local) reports when the probe's output never arrived or is not ours.
TRANSPORT_ERROR_KINDS = ("unreachable", "auth-failed", "host-key-unknown", "host-key-mismatch", "timeout",
                         "probe-error")
# `nodecheck k8s scan`: why a node's preflight pod gave no report (nodecheck/k8s/diagnose.py).
POD_ERROR_KINDS = ("unschedulable", "not-started", "pod-failed", "pod-deleted", "api-error")
ERROR_KINDS = TRANSPORT_ERROR_KINDS + POD_ERROR_KINDS

# --- architectures ------------------------------------------------------------------------------
# uname -m (and /proc/sys/kernel/arch) to Debian architecture names, which the Sysbox .deb files,
# the matrix and Kubernetes' kubernetes.io/arch use.
ARCH = {
    "x86_64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64", "aarch64_be": "arm64",
    "armv7l": "armhf", "armv7": "armhf", "armv8l": "armhf", "armhf": "armhf",
    "armv6l": "armel", "armv5tel": "armel", "armel": "armel",
    "i386": "i386", "i486": "i386", "i586": "i386", "i686": "i386",
    "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64",
}


def debian_arch(machine: str | None) -> str | None:
    """The Debian name of a `uname -m` value; None when it is not one we know (never a guess)."""
    return ARCH.get(machine.strip()) if machine else None


# --- console ------------------------------------------------------------------------------------
def color_allowed(stream) -> bool:
    """Colour only on a TTY and never with NO_COLOR set to anything (https://no-color.org/)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def console(stream=None, *, soft_wrap: bool = False):
    """The rich Console every command renders through (no markup guessing from node strings)."""
    import sys

    from rich.console import Console

    stream = stream if stream is not None else sys.stdout
    return Console(file=stream, no_color=not color_allowed(stream), highlight=False, soft_wrap=soft_wrap)
