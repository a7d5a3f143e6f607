"""Container images for the lab's real kubelet node, built here without any registry.

Two images, each a docker-archive tarball cached by content hash under
/var/cache/nodecheck-lab/images/ (a rerun with unchanged inputs builds nothing):

- **pause**: Kubernetes' own `build/pause/linux/pause.c` (from the k8s.io/kubernetes module the lab's
  binaries are built from) compiled statically with the flags of its Makefile, in an image laid out like
  upstream's (`/pause`, `USER 65535:65535`, `ENTRYPOINT ["/pause"]`). containerd's CRI uses it as the
  sandbox image.
- **nodecheck**: the project's own `Dockerfile`, built by `buildah bud` with `--build-arg BASE=` set to a
  Debian bookworm image made here by `debootstrap --variant=minbase` (python3, python3-venv,
  python-is-python3: what the Dockerfile's `python -m venv` and `pip install .` need). The pip step reaches
  PyPI over the host network; the host's CA bundle and pip.conf are mounted into the RUN steps only (they
  are not in the image), because a TLS-intercepting proxy may sit between this machine and PyPI.

buildah runs with its own storage under a temporary directory (vfs driver: no overlay-on-overlay problems
on CI machines), which is deleted after the image is exported.

    python tests/k8slab/images.py       build what is missing, print the archives
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = Path(os.environ.get("NODECHECK_LAB_CACHE", "/var/cache/nodecheck-lab"))
IMAGES = CACHE / "images"
K8S_VERSION = os.environ.get("K8S_VERSION", "v1.35.4")
# The pause version k8s.io/kubernetes v1.35 itself defaults to (cmd/kubeadm constants, PauseVersion).
PAUSE_TAG = "3.10.1"
PAUSE_REF = f"registry.k8s.io/pause:{PAUSE_TAG}"
# Packages of the base image: python for the Dockerfile's `python -m venv` (python-is-python3 gives the
# `python` name the python:*-slim images have), venv's ensurepip wheels for `pip install .`.
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3")


@dataclass(frozen=True)
class Image:
    ref: str          # the name containerd will know it by
    archive: Path     # docker-archive tarball
    key: str          # content hash of the inputs
    built_s: float    # seconds spent building now (0 when it came from the cache)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode:
        raise RuntimeError(f"{argv[0]} {' '.join(argv[1:4])}... failed ({r.returncode}): "
                           f"{(r.stderr or r.stdout).strip()[-2000:]}")
    return r


def _buildah(store: Path) -> list[str]:
    return ["buildah", "--root", str(store / "root"), "--runroot", str(store / "run"), "--storage-driver", "vfs"]


def _cached(name: str, key: str, build) -> tuple[Path, float]:
    """The archive for (name, key), built by build(dest) under a lock when missing."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    final = IMAGES / f"{name}-{key}.tar"
    t0 = time.monotonic()
    with open(IMAGES / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test runs wait for the first build
        if final.exists():
            return final, 0.0
        tmp = IMAGES / f".{name}-{key}.{os.getpid()}.tar"
        tmp.unlink(missing_ok=True)
        try:
            build(tmp)
            os.rename(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        # Keep the newest two per name (the one just built and its predecessor): every edit of the
        # package makes a new nodecheck image of ~200 MB.
        for old in sorted(IMAGES.glob(f"{name}-*.tar"), key=lambda p: p.stat().st_mtime)[:-2]:
            old.unlink(missing_ok=True)
    return final, time.monotonic() - t0


def _sha_files(paths: list[Path], root: Path, excluded=lambda rel: False) -> str:
    h = hashlib.sha256()
    for p in paths:
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            rel = f.relative_to(root).as_posix()
            if excluded(rel):
                continue
            h.update(rel.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def k8s_module_dir() -> Path:
    """The k8s.io/kubernetes module source (downloaded by the Go toolchain when not yet cached)."""
    r = _run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@{K8S_VERSION}"],
             cwd=HERE / "gomod" / "kubernetes")
    return Path(json.loads(r.stdout)["Dir"])


def pause_image() -> Image:
    src = k8s_module_dir() / "build" / "pause" / "linux" / "pause.c"
    key = hashlib.sha256(src.read_bytes() + PAUSE_TAG.encode()).hexdigest()[:16]

    def build(dest: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="nc-pause-") as t:
            tmp = Path(t)
            # The flags of build/pause/Makefile (CFLAGS = -Os -Wall -Werror -static -DVERSION=...).
            _run(["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{PAUSE_TAG}-nodecheck-lab",
                  "-o", str(tmp / "pause"), str(src)])
            b = _buildah(tmp / "store")
            c = _run([*b, "from", "scratch"]).stdout.strip()
            _run([*b, "copy", c, str(tmp / "pause"), "/pause"])
            _run([*b, "config", "--user", "65535:65535", "--entrypoint", '["/pause"]', c])
            _run([*b, "commit", "-q", c, PAUSE_REF])
            _run([*b, "push", PAUSE_REF, f"docker-archive:{dest}:{PAUSE_REF}"])

    archive, spent = _cached("pause", key, build)
    return Image(PAUSE_REF, archive, key, spent)


def _base_rootfs() -> Path:
    # The install lab's cached debootstrap tree (same mirror detection, cache and lock), with our packages.
    sys.path.insert(0, str(REPO / "tests"))
    from ansible_lab.rootfs import base_tree
    root, _ = base_tree(packages=BASE_PACKAGES, log=_log)
    return root


def dockerfile_inputs(dockerfile: Path = REPO / "Dockerfile") -> list[Path]:
    """The build-context paths the Dockerfile COPYs (not `COPY --from`), read from the Dockerfile itself so
    a change of its COPY lines changes the cache key without anyone editing this list."""
    out: list[Path] = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        for src in [w for w in words[1:-1] if not w.startswith("--")]:
            out.extend(sorted(REPO.glob(src.rstrip("/"))) or [REPO / src])
    return out


def _dockerignored() -> callable:
    # Only the exclusion forms our .dockerignore uses for files inside COPYed trees (`**/x`, `*.x`).
    pats = []
    ign = REPO / ".dockerignore"
    if ign.exists():
        for line in ign.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "!")) and line != "*":
                pats.append(line.removeprefix("**/"))
    return lambda rel: any(fnmatch.fnmatch(part, p) for part in rel.split("/") for p in pats)


def nodecheck_ref() -> str:
    """The image name `nodecheck k8s render` uses by default, as containerd normalises it."""
    sys.path.insert(0, str(REPO))
    from nodecheck.k8s.render import DEFAULT_IMAGE
    name = DEFAULT_IMAGE
    return name if "/" in name.split(":")[0] else f"docker.io/library/{name}"


def nodecheck_image() -> Image:
    rootfs = _base_rootfs()
    base_key = hashlib.sha256(rootfs.name.encode()).hexdigest()[:16]
    dockerfile = REPO / "Dockerfile"
    inputs = [dockerfile, REPO / ".dockerignore", *dockerfile_inputs(dockerfile)]
    key = hashlib.sha256((base_key + _sha_files(inputs, REPO, _dockerignored())).encode()).hexdigest()[:16]
    ref = nodecheck_ref()

    def build(dest: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="nc-img-", dir=IMAGES) as t:
            tmp = Path(t)
            b = _buildah(tmp / "store")
            base_ref = f"localhost/nodecheck-lab-base:{base_key}"
            c = _run([*b, "from", "scratch"]).stdout.strip()
            mnt = Path(_run([*b, "mount", c]).stdout.strip())
            _run(["cp", "-a", f"{rootfs}/.", f"{mnt}/"])
            (mnt / ".nodecheck-lab-complete").unlink(missing_ok=True)
            _run([*b, "umount", c])
            _run([*b, "config", "--cmd", "/bin/sh", c])
            _run([*b, "commit", "-q", c, base_ref])
            vols = []
            for f in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf"):
                if Path(f).is_file():
                    vols += ["--volume", f"{f}:{f}:ro"]
            _log(f"images: buildah bud {dockerfile} (BASE={base_ref})")
            _run([*b, "bud", "--network", "host", "--pull=never", "--isolation", "oci", *vols,
                  "--build-arg", f"BASE={base_ref}", "-f", str(dockerfile), "-t", ref,
                  str(REPO)])
            _run([*b, "push", ref, f"docker-archive:{dest}:{ref}"])

    archive, spent = _cached("nodecheck", key, build)
    return Image(ref, archive, key, spent)


def all_images() -> list[Image]:
    return [pause_image(), nodecheck_image()]


if __name__ == "__main__":
    for img in all_images():
        print(f"{img.ref}\t{img.archive}\t{img.built_s:.0f}s")
