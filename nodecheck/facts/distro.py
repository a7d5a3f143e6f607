"""Distribution, parsed from the probe's copies of os-release and the *-release files.

The rules are the `distro` library's (1.9, root-dir mode: `include_lsb`, `include_uname` and
`include_oslevel` off, so nothing of the machine running the parser is consulted), applied to
the section texts in memory. The library reads only files, so this module used to write the
texts to a temporary root for it (pyinfra does the same); that cost ~10 ms of controller time
and a dozen file system calls per node. Each "file" is opened here exactly as the library
opens it (io.TextIOWrapper over the bytes it would have written, same encoding, universal
newlines), so tokenising, first-line reads and decoding errors are the library's own;
tests/test_distro_parse.py checks the results against the library reading a temporary root.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from ..sections import Sections


@dataclass
class DistroFacts:
    id: str | None = None
    version_id: str | None = None
    name: str | None = None
    codename: str | None = None
    like: list[str] = field(default_factory=list)
    pretty_name: str | None = None
    variant_id: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @property
    def version_tuple(self) -> tuple[int, ...]:
        out = []
        for p in (self.version_id or "").split("."):
            if not p.isdigit():
                break
            out.append(int(p))
        return tuple(out)


def _safe_name(path: str) -> str | None:
    # Only plain names under /etc (or /usr/lib/os-release) are distribution files; a name with
    # a NUL byte is no file's name (the temporary root could not hold it either).
    if "\0" in path:
        return None
    if path == "/usr/lib/os-release":
        return "usr/lib/os-release"
    if path.startswith("/etc/") and "/" not in path[5:] and path[5:] not in ("", ".", ".."):
        return "etc/" + path[5:]
    return None


MAX_LINES, MAX_LINE = 200, 4096


def _bounded(text: str) -> str:
    """A real os-release / *-release file is a few dozen short lines. `distro` tokenises with
    shlex, which is superlinear on megabytes of junk (1 MiB: 20 s), so only the first
    MAX_LINES lines of at most MAX_LINE characters are handed to it: no real key is dropped,
    and parsing stays bounded whatever the node holds."""
    lines = []
    for line in text.split("\n", MAX_LINES)[:MAX_LINES]:
        if len(line) <= MAX_LINE:
            lines.append(line)
    return "\n".join(lines)


# --- the `distro` library's tables and patterns (distro 1.9.0, distro/distro.py) -------------
NORMALIZED_OS_ID = {"ol": "oracle", "opensuse-leap": "opensuse"}
NORMALIZED_DISTRO_ID = {"redhat": "rhel"}
_RELEASE_CONTENT_REVERSED = re.compile(r"(?:[^)]*\)(.*)\()? *(?:STL )?([\d.+\-a-z]*\d) *(?:esaeler *)?(.+)")
_RELEASE_BASENAME = re.compile(r"(\w+)[-_](release|version)$")
_RELEASE_IGNORE = ("debian_version", "lsb-release", "oem-release", "os-release", "system-release",
                   "plesk-release", "iredmail-release", "board-release", "ec2_version")
_VERSION_CODENAME = re.compile(r"\((\D+)\)|,\s*(\D+)")


def _parse_os_release(stream) -> dict[str, str]:
    import shlex

    props = {}
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    for token in list(lexer):
        if "=" in token:  # an assignment; anything else (a command) is ignored
            k, v = token.split("=", 1)
            props[k.lower()] = v
    if "version" in props:
        m = _VERSION_CODENAME.search(props["version"])
        if m:
            props["codename"] = props["release_codename"] = m.group(1) or m.group(2)
    if "version_codename" in props:
        props["codename"] = props["version_codename"]
    elif "ubuntu_codename" in props:
        props["codename"] = props["ubuntu_codename"]
    return props


def _parse_release_line(line: str) -> dict[str, str]:
    m = _RELEASE_CONTENT_REVERSED.match(line.strip()[::-1])
    info = {}
    if m:
        info["name"] = m.group(3)[::-1]
        if m.group(2):
            info["version_id"] = m.group(2)[::-1]
        if m.group(1):
            info["codename"] = m.group(1)[::-1]
    elif line:
        info["name"] = line.strip()
    return info


class _Distribution:
    """distro.LinuxDistribution(root_dir=..., include_* off) over in-memory files."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        rel = "etc/os-release" if "etc/os-release" in files or "usr/lib/os-release" not in files \
            else "usr/lib/os-release"
        self.osr = _parse_os_release(self._open(rel)) if rel in files else {}
        self.release = self._release_file_info()
        self.id = self._id()
        self.like = self.osr.get("id_like", "")

    def _open(self, rel: str, encoding: str = "utf-8"):
        # What open(path, encoding=...) gives: the same decoder and newline translation.
        return io.TextIOWrapper(io.BytesIO(self.files[rel]), encoding=encoding)

    def _release_file_info(self) -> dict[str, str]:
        names = sorted(rel[4:] for rel in self.files
                       if rel.startswith("etc/") and rel[4:] not in _RELEASE_IGNORE)
        for name in names:
            m = _RELEASE_BASENAME.match(name)
            if m is None:
                continue
            info = _parse_release_line(self._open("etc/" + name).readline())
            if "name" not in info:
                continue
            info["id"] = m.group(1)
            if "cloudlinux" in info.get("name", "").lower():
                info["id"] = "cloudlinux"
            return info
        return {}

    def _id(self) -> str:
        for value, table in ((self.osr.get("id", ""), NORMALIZED_OS_ID),
                             (self.release.get("id", ""), NORMALIZED_DISTRO_ID)):
            if value:
                value = value.lower().replace(" ", "_")
                return table.get(value, value)
        return ""

    def _debian_version(self) -> str:
        if "etc/debian_version" not in self.files:
            return ""
        return self._open("etc/debian_version", "ascii").readline().rstrip()

    def codename(self) -> str:
        if "codename" in self.osr:  # os-release may set it empty on purpose
            return self.osr["codename"]
        return self.release.get("codename", "")

    def version(self, pretty: bool = False) -> str:
        versions = [self.osr.get("version_id", ""), self.release.get("version_id", ""),
                    _parse_release_line(self.osr.get("pretty_name", "")).get("version_id", "")]
        if self.id == "debian" or "debian" in self.like.split():
            versions.append(self._debian_version())
        version = next((v for v in versions if v != ""), "")
        if pretty and version and self.codename():
            version = f"{version} ({self.codename()})"
        return version

    def name(self, pretty: bool = False) -> str:
        name = self.osr.get("name", "") or self.release.get("name", "")
        if pretty:
            name = self.osr.get("pretty_name", "")
            if not name:
                name = self.release.get("name", "")
                version = self.version(pretty=True)
                if version:
                    name = f"{name} {version}"
        return name or ""


def _file_bytes(text: str) -> bytes:
    # What the temporary root held: the text, newline-terminated, UTF-8 with errors replaced.
    return (text if text.endswith("\n") else text + "\n").encode("utf-8", errors="replace")


def parse(sections: Sections) -> DistroFacts:
    files = {}
    for name in sections.names():
        rel = _safe_name(name)
        text = sections.text(name)
        if rel and text is not None:
            files[rel] = _file_bytes(_bounded(text))
    if not files:
        return DistroFacts(reason=(
            "no os-release or *-release file readable: "
            + "; ".join(sections.get(n).why() for n in ("/etc/os-release", "/usr/lib/os-release"))))
    try:
        d = _Distribution(files)
        version = d.version()  # where the library's info() reads debian_version (and may fail)
        facts = DistroFacts(
            id=d.id or None,
            version_id=d.osr.get("version_id") or version or None,
            name=d.name() or None,
            codename=d.codename() or None,
            like=d.like.split(),
            pretty_name=d.name(pretty=True) or None,
            variant_id=d.osr.get("variant_id") or None,
        )
    except Exception as exc:  # noqa: BLE001 - a bad file must give unknown, not a crash
        return DistroFacts(reason=f"distro files unreadable: {exc}")
    if not facts.id:
        facts.reason = "distribution files present but no ID in them"
    return facts
