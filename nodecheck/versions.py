"""Versions: release, kernel, containerd and kubelet strings read as PEP 440 (`parse_version`,
`cmp_release`, `specifier_set`), and the two kinds PEP 440 cannot order, Debian package
versions and kernel releases.

Debian versions follow dpkg's own algorithm (deb-version(7)): epoch, upstream version and
revision compared part by part, non-digits lexically with `~` sorting before everything,
digits numerically. Kernel releases are `MAJOR.MINOR[.PATCH]` plus a distribution suffix
(`-91-generic`, `-427.13.1.el9_4.x86_64`, `-0.deb11.13-amd64`) that only breaks ties.
Both parsers return None for strings they cannot read instead of raising.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

__all__ = ["DebianVersion", "KernelVersion", "cmp_release", "dpkg_compare", "parse_major_minor", "parse_version",
           "specifier_set"]

_NUM = re.compile(r"^v?(\d+(?:\.\d+)*)")


@functools.lru_cache(maxsize=4096, typed=True)  # Versions are immutable; scoring asks for the same few strings often
def parse_version(text: str | int | float | None) -> Version | None:
    """A PEP 440 version from a release, kernel, containerd or kubelet string; None if unreadable.

    A leading `v` is dropped; strings PEP 440 cannot read ("6.8.0-45-generic") fall back to their
    leading dotted numbers ("6.8.0").
    """
    if text is None:
        return None
    s = str(text).strip()
    if s[:1] in ("v", "V"):
        s = s[1:]
    try:
        return Version(s)
    except InvalidVersion:
        m = _NUM.match(s)
        return Version(m.group(1)) if m else None


@functools.lru_cache(maxsize=256)
def specifier_set(text: str):
    """A PEP 440 specifier, parsed once: each node asks for the same few per release (never
    mutated by its users; packaging.specifiers is imported on first use)."""
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(text)


def cmp_release(fact: Version, value: Version) -> int:
    """Compare on as many release components as `value` gives (kernel 6.17.2 == "6.17").

    A value with a pre/post/dev part (e.g. "1.1.0-rc.1") compares as a full PEP 440 version.
    """
    if value.pre is None and value.post is None and value.dev is None:
        n = len(value.release)
        a = (fact.release + (0,) * n)[:n]
        b = value.release
    else:
        a, b = fact, value  # type: ignore[assignment]
    return (a > b) - (a < b)


def _order(c: str) -> int:
    # dpkg's order(): digits never reach here; letters sort before other characters,
    # and '~' sorts before anything, even the end of the string.
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


_DEB_RE = re.compile(r"^(?:(\d+):)?([0-9][A-Za-z0-9.+~:-]*?)(?:-([A-Za-z0-9.+~]+))?$")


@functools.total_ordering
@dataclass(frozen=True)
class DebianVersion:
    """A Debian package version such as `1:1.0.6-2ubuntu2.1` or `5:24.0.7-1~ubuntu.22.04~jammy`."""

    epoch: int
    upstream: str
    revision: str

    @classmethod
    def parse(cls, text: str | None) -> DebianVersion | None:
        if not text:
            return None
        text = text.strip()
        m = _DEB_RE.match(text)
        if not m:
            return None
        epoch, upstream, revision = m.groups()
        # An upstream version may contain colons only with an epoch (deb-version(7)).
        if (":" in upstream and epoch is None) or upstream.endswith("-"):
            return None
        return cls(int(epoch or 0), upstream, revision or "")

    def _cmp(self, other: DebianVersion) -> int:
        if self.epoch != other.epoch:
            return self.epoch - other.epoch
        return _verrevcmp(self.upstream, other.upstream) or _verrevcmp(self.revision, other.revision)

    def __lt__(self, other: DebianVersion) -> bool:
        return self._cmp(other) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DebianVersion) and self._cmp(other) == 0

    def __hash__(self) -> int:  # equal versions may differ in spelling (1.0 vs 1.00)
        return hash(self.epoch)

    def __str__(self) -> str:
        s = f"{self.epoch}:" if self.epoch else ""
        s += self.upstream
        return s + (f"-{self.revision}" if self.revision else "")

    def upstream_tuple(self) -> tuple[int, ...]:
        """The leading numeric components of the upstream version: `1.6.28~3` -> (1, 6, 28)."""
        return parse_numeric(self.upstream)


def dpkg_compare(a: str, b: str) -> int | None:
    """dpkg --compare-versions as a number (<0, 0, >0); None if either is unreadable."""
    va, vb = DebianVersion.parse(a), DebianVersion.parse(b)
    if va is None or vb is None:
        return None
    return va._cmp(vb)


def parse_numeric(text: str) -> tuple[int, ...]:
    m = re.match(r"^(\d+(?:\.\d+)*)", text or "")
    return tuple(int(p) for p in m.group(1).split(".")) if m else ()


def parse_major_minor(text: str | None) -> tuple[int, int] | None:
    """`v1.30.2` or `1.30` -> (1, 30)."""
    m = re.match(r"^v?(\d+)\.(\d+)", (text or "").strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


_KREL = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(.*)$")


@functools.total_ordering
@dataclass(frozen=True)
class KernelVersion:
    """A kernel release (`uname -r`). Ordered by (major, minor, patch), then the suffix.

    The suffix is compared with dpkg's algorithm, which orders Ubuntu ABI numbers
    (`-91-generic` < `-101-generic`) and RHEL builds (`-427.13.1.el9_4`) sensibly; it is a
    tie-breaker only, because thresholds in the matrix are upstream versions.
    """

    major: int
    minor: int
    patch: int
    suffix: str
    release: str

    @classmethod
    def parse(cls, text: str | None) -> KernelVersion | None:
        if not text:
            return None
        text = text.strip()
        m = _KREL.match(text)
        if not m or len(text) > 256:
            return None
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), m.group(4), text)

    @property
    def base(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def flavour(self) -> str | None:
        """The trailing flavour word: generic, aws, azure, amd64, flatcar, ...; None if none."""
        m = re.search(r"[-+]([a-z][a-z0-9_]*(?:-[a-z0-9_]+)*)$", self.suffix)
        return m.group(1) if m else None

    def at_least(self, threshold: str | tuple[int, ...]) -> bool:
        """True when the upstream base version is >= threshold (`"5.12"` or (5, 12))."""
        t = parse_numeric(threshold) if isinstance(threshold, str) else tuple(threshold)
        t = (t + (0, 0, 0))[:3]
        return self.base >= t

    def __lt__(self, other: KernelVersion) -> bool:
        if self.base != other.base:
            return self.base < other.base
        return _verrevcmp(self.suffix, other.suffix) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KernelVersion) and self.base == other.base and _verrevcmp(
            self.suffix, other.suffix) == 0

    def __hash__(self) -> int:
        return hash(self.base)

    def __str__(self) -> str:
        return self.release
