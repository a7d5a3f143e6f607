"""Stand-in packages and a local apt repository for the install lab.

Everything is built with dpkg-deb and dpkg-scanpackages at test time: no network. The
versions and relations mirror the real ones the roles deal with:

- containerd.io 1.5.11-1 and 1.6.28-1
- docker-ce 5:24.0.7-1~debian.12~bookworm, Depends: containerd.io (>= 1.6.4)
- sysbox-ce 0.7.0-0 in the repository (a host can start with it) and 0.7.1-0 (Depends: jq, fuse, rsync, iptables), whose postinst writes the real
  package's /lib/sysctl.d/99-sysbox-sysctl.conf, creates /var/lib/sysboxfs and the sysbox
  user, and ships the three systemd units. It is not in the apt repository: like a mirror
  user, the test hands its URL or path and SHA256 to the role.
"""

from __future__ import annotations

import hashlib
import subprocess
import textwrap
from pathlib import Path

CONTAINERD_OLD = "1.5.11-1"
CONTAINERD_NEW = "1.6.28-1"
DOCKER_CE = "5:24.0.7-1~debian.12~bookworm"
SYSBOX = "0.7.1"
SYSBOX_PKG = f"{SYSBOX}-0"
SYSBOX_OLD = "0.7.0"

# A stand-in Docker for the .deb's traps: `dockerd` is a renamed sleep (so `pgrep -x dockerd`
# finds it), `docker` answers ps/inspect/info from files under /etc/nodecheck-lab/docker/.
DOCKER_CLI = textwrap.dedent("""\
    #!/bin/sh
    # nodecheck lab stand-in docker CLI
    d=/etc/nodecheck-lab/docker
    case "$1" in
      ps) cat "$d/containers" 2>/dev/null | cut -d' ' -f1 ;;
      inspect) cat "$d/containers" 2>/dev/null | awk '{ print "/" $2 " " $3 }' ;;
      info) if [ -x /usr/bin/sysbox-runc ]; then
              echo '{"io.containerd.runc.v2":{"path":"runc"},"runc":{"path":"runc"},"sysbox-runc":{"path":"/usr/bin/sysbox-runc"}}'
            else
              echo '{"io.containerd.runc.v2":{"path":"runc"},"runc":{"path":"runc"}}'
            fi ;;
      *) echo "stand-in docker: $*" >&2; exit 1 ;;
    esac
    """)

# The lines the real sysbox-ce postinst persists (nestybox/sysbox-pkgr deb/sysbox-ce.postinst).
SYSBOX_SYSCTL = textwrap.dedent("""\
    # Sysbox's sysctl config (nodecheck lab stand-in of sysbox-ce's postinst)
    kernel.unprivileged_userns_clone = 1
    fs.inotify.max_queued_events = 1048576
    fs.inotify.max_user_watches = 1048576
    fs.inotify.max_user_instances = 1048576
    kernel.keys.maxkeys = 20000
    kernel.keys.maxbytes = 1400000
    kernel.pid_max = 4194304
    """)


def host_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


def _build(work: Path, out: Path, name: str, version: str, arch: str, *, depends: str = "",
           files: dict[str, tuple[str, int]] | None = None, scripts: dict[str, str] | None = None,
           description: str = "") -> Path:
    root = work / f"{name}-{version.replace(':', '_')}"
    (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
    control = [f"Package: {name}", f"Version: {version}", f"Architecture: {arch}",
               "Maintainer: nodecheck lab <lab@nodecheck.invalid>", "Section: admin", "Priority: optional"]
    if depends:
        control.append(f"Depends: {depends}")
    control.append(f"Description: nodecheck lab stand-in for {name} {version}")
    control.append(f" {description or 'A tiny package with the real one' + chr(39) + 's name, version and relations.'}")
    (root / "DEBIAN/control").write_text("\n".join(control) + "\n")
    for script, body in (scripts or {}).items():
        p = root / "DEBIAN" / script
        p.write_text(body)
        p.chmod(0o755)
    files = dict(files or {})
    files.setdefault(f"usr/share/doc/{name}/STANDIN", (f"nodecheck lab stand-in {name} {version}\n", 0o644))
    for rel, (content, mode) in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
        p.chmod(mode)
    deb = out / f"{name}_{version.split(':')[-1]}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
                   check=True, stdout=subprocess.DEVNULL)
    return deb


def _unit(desc: str, exec_: str, extra: str = "", wanted: str = "multi-user.target") -> str:
    return textwrap.dedent(f"""\
        [Unit]
        Description={desc}
        {extra}
        [Service]
        Type=simple
        ExecStart={exec_}

        [Install]
        WantedBy={wanted}
        """)


def build_sysbox(out: Path, work: Path, arch: str, release: str = SYSBOX) -> Path:
    stub = "#!/bin/sh\necho \"$(basename \"$0\") (nodecheck lab stand-in) version " + release + "\"\n"
    postinst = textwrap.dedent("""\
        #!/bin/sh
        # Stand-in of sysbox-ce's postinst: the same files; it never writes the running kernel's sysctls.
        set -e
        if [ "$1" = configure ]; then
          mkdir -p /var/lib/sysboxfs /lib/sysctl.d
          cat > /lib/sysctl.d/99-sysbox-sysctl.conf <<'EOF'
        """) + SYSBOX_SYSCTL + "EOF\n" + textwrap.dedent("""\
          getent passwd sysbox >/dev/null || useradd -r -s /bin/false sysbox
        fi
        exit 0
        """)
    postrm = "#!/bin/sh\nset -e\nif [ \"$1\" = purge ]; then rm -f /lib/sysctl.d/99-sysbox-sysctl.conf; fi\nexit 0\n"
    files = {
        "usr/bin/sysbox-runc": (stub, 0o755),
        "usr/bin/sysbox-mgr": (stub, 0o755),
        "usr/bin/sysbox-fs": (stub, 0o755),
        "lib/systemd/system/sysbox.service": (_unit(
            "Sysbox container runtime", "/bin/sh -c '/usr/bin/sysbox-runc --version; sleep infinity'",
            "BindsTo=sysbox-mgr.service sysbox-fs.service\nBefore=docker.service containerd.service"), 0o644),
        "lib/systemd/system/sysbox-mgr.service": (_unit(
            "sysbox-mgr (part of the Sysbox container runtime)", "/usr/bin/sysbox-mgr",
            "PartOf=sysbox.service", "sysbox.service"), 0o644),
        "lib/systemd/system/sysbox-fs.service": (_unit(
            "sysbox-fs (part of the Sysbox container runtime)", "/usr/bin/sysbox-fs",
            "PartOf=sysbox.service\nAfter=sysbox-mgr.service", "sysbox.service"), 0o644),
    }
    deb = _build(work, out, "sysbox-ce", f"{release}-0", arch, depends="jq, fuse, rsync, iptables",
                 files=files, scripts={"postinst": postinst, "postrm": postrm})
    final = out / f"sysbox-ce_{release}-0.linux_{arch}.deb"
    deb.rename(final)
    return final


def build_repo(dest: Path, arch: str | None = None) -> dict:
    """Build the apt repository under dest/repo and the sysbox .deb under dest/artifacts."""
    arch = arch or host_arch()
    work, repo, artifacts = dest / "pkgwork", dest / "repo", dest / "artifacts"
    for d in (work, repo, artifacts):
        d.mkdir(parents=True, exist_ok=True)
    _build(work, repo, "containerd.io", CONTAINERD_OLD, arch)
    _build(work, repo, "containerd.io", CONTAINERD_NEW, arch)
    _build(work, repo, "docker-ce", DOCKER_CE, arch, depends="containerd.io (>= 1.6.4)")
    # An older sysbox-ce in the apt repo, so a host can start with it (the upgrade tests).
    build_sysbox(repo, work, arch, SYSBOX_OLD)
    packages = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo,
                              capture_output=True, text=True, check=True).stdout
    (repo / "Packages").write_text(packages)
    sysbox = build_sysbox(artifacts, work, arch)
    sha = hashlib.sha256(sysbox.read_bytes()).hexdigest()
    return {"repo": repo, "artifacts": artifacts, "sysbox_deb": sysbox, "sysbox_sha256": sha, "arch": arch}
