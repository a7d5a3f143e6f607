"""The preflight pod's manifests: schema-valid for every supported Kubernetes minor, locked down,
and `deploy/` (kustomize) identical to `nodecheck k8s render` (one source, no drift)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from click.testing import CliRunner  # noqa: E402

from nodecheck.commands.k8s import k8s as k8s_group  # noqa: E402
from nodecheck.k8s import render as R  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"

# Kubernetes minors we support. recursiveReadOnly (used on every host mount) is in the
# API from 1.30, so 1.30 is the floor; the ceiling is the newest schema the installed
# kubernetes-validate ships. Every one of them must exist in the package: a missing
# schema directory fails the test rather than silently validating against an older one.
MIN_MINOR = 30


def _minors() -> list[str]:
    from kubernetes_validate.utils import all_versions
    out = []
    for v in all_versions():
        major, minor = (int(x) for x in v.split(".")[:2])
        if major == 1 and minor >= MIN_MINOR:
            out.append(f"{major}.{minor}")
    return sorted(set(out), key=lambda s: int(s.split(".")[1]))


MINORS = _minors()


def _kustomize(path: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl (with built-in kustomize) not installed")
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _run(args: list[str]):
    # The k8s group itself (not nodecheck.cli), so this file does not depend on other commands importing.
    return CliRunner().invoke(k8s_group, ["render", *args])


def _rendered(args: list[str], capsys=None) -> list[dict]:
    res = _run(args)
    assert res.exit_code == 0, res.output
    return [d for d in yaml.safe_load_all(res.output) if d]


RENDER_CASES = {
    "daemonset": ["--daemonset"],
    "default": [],
    "job": ["--job", "--nodes", "7"],
    "job-all-components": ["--job", "--nodes", "3", *sum((["--with", c] for c in R.OPTIONAL), [])],
    "daemonset-ns-image": ["--namespace", "preflight", "--image", "registry.example/nc:1.2.3", "--with", "dpkg"],
}


def _all_manifest_sets(capsys) -> dict[str, list[dict]]:
    sets = {f"render:{k}": _rendered(v, capsys) for k, v in RENDER_CASES.items()}
    sets["kustomize:base"] = _kustomize(DEPLOY / "base")
    sets["kustomize:overlays/job"] = _kustomize(DEPLOY / "overlays" / "job")
    return sets


def _validate(doc: dict, minor: str) -> None:
    from kubernetes_validate.utils import validate
    # strict: unknown fields are errors; SchemaNotFoundError propagates (no silent pass).
    got = validate(doc, minor, strict=True)
    assert got == minor, f"validated against {got}, wanted {minor}"


def test_supported_minors_are_shipped():
    assert MINORS, "kubernetes-validate ships no schema >= 1.30"
    assert "1.30" in MINORS and "1.34" in MINORS, MINORS


@pytest.mark.parametrize("minor", MINORS)
def test_every_manifest_validates_strict(minor, capsys):
    for label, docs in _all_manifest_sets(capsys).items():
        assert docs, label
        for doc in docs:
            try:
                _validate(doc, minor)
            except Exception as exc:  # name the manifest in the failure
                raise AssertionError(f"{label}: {doc['kind']}/{doc['metadata']['name']} on {minor}: {exc}") from exc


def test_validator_rejects_a_bad_manifest():
    """Guard against a validator that accepts anything."""
    bad = R.documents("job", nodes=2)[2]
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True  # typo
    with pytest.raises(Exception):
        _validate(bad, MINORS[-1])


def _pod_specs(docs: list[dict]):
    for d in docs:
        if d["kind"] in ("DaemonSet", "Job"):
            yield d, d["spec"]["template"]["spec"]


def test_security_context_and_mounts(capsys):
    for label, docs in _all_manifest_sets(capsys).items():
        kinds = [d["kind"] for d in docs]
        assert kinds[:2] == ["Namespace", "ServiceAccount"], label
        assert not {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} & set(kinds), label
        sa = docs[1]
        assert sa["automountServiceAccountToken"] is False
        specs = list(_pod_specs(docs))
        assert len(specs) == 1, label
        work, spec = specs[0]
        assert spec["automountServiceAccountToken"] is False
        assert spec["serviceAccountName"] == sa["metadata"]["name"]
        for k in ("hostPID", "hostIPC", "hostNetwork"):
            assert spec.get(k, False) is False, (label, k)
        assert {"operator": "Exists"} in spec["tolerations"]
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert isinstance(psc["runAsUser"], int) and psc["runAsUser"] > 0
        assert isinstance(psc["runAsGroup"], int) and psc["runAsGroup"] > 0
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, (label, c["name"])
            assert sc["runAsUser"] == psc["runAsUser"] and sc["runAsGroup"] == psc["runAsGroup"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc.get("privileged", False) is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) >= {"cpu", "memory"}, (label, c["name"], kind)
            for vm in c.get("volumeMounts", []):
                if vm["name"] == "tmp":
                    assert vm == {"name": "tmp", "mountPath": "/tmp"}
                    continue
                assert vm["readOnly"] is True, (label, vm)
                assert vm["recursiveReadOnly"] == "IfPossible"
                v = volumes[vm["name"]]
                # mirror the host layout under /host
                assert vm["mountPath"] == "/host" + v["hostPath"]["path"], vm
        assert volumes.pop("tmp") == {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}
        for v in volumes.values():
            assert set(v) == {"name", "hostPath"}, v  # hostPaths, and the /tmp emptyDir above
            # Never a type that creates on the host, never untyped (runtimes mkdir a missing source).
            assert v["hostPath"]["type"] in ("Directory", "File"), v
        mounted = {vm["name"] for c in spec.get("initContainers", []) + spec["containers"]
                   for vm in c.get("volumeMounts", [])}
        assert mounted == set(volumes) | {"tmp"}, label  # every volume is mounted
        scan = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "scan"]
        assert len(scan) == 1
        assert scan[0]["args"] == ["nodecheck", "scan", "--root", "/host", "-o", "json"]
        if work["kind"] == "Job":
            js = work["spec"]
            assert js["parallelism"] == js["completions"] >= 1
            assert js["ttlSecondsAfterFinished"] > 0
            assert spec["restartPolicy"] == "Never"
            (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            assert term["topologyKey"] == "kubernetes.io/hostname"
            assert term["labelSelector"]["matchLabels"] == work["spec"]["template"]["metadata"]["labels"]
        else:
            assert scan[0] in spec["initContainers"]
            assert [c["name"] for c in spec["containers"]] == ["idle"]
            assert "volumeMounts" not in spec["containers"][0]  # the idler holds no host mount


def test_job_nodes_and_flags(capsys):
    docs = _rendered(["--job", "--nodes", "7"], capsys)
    assert docs[2]["spec"]["parallelism"] == docs[2]["spec"]["completions"] == 7
    for bad in (["--job"], ["--nodes", "3"], ["--with", "nope"], ["--job", "--nodes", "0"]):
        res = _run(bad)  # a Job needs the node count; --nodes is Job-only; unknown component; >= 1
        assert res.exit_code == 2 and "Error" in res.output and "apiVersion" not in res.output, (bad, res.output)
    docs = _rendered(["--namespace", "x", "--image", "reg/img:9"], capsys)
    assert docs[0]["metadata"]["name"] == "x" and docs[1]["metadata"]["namespace"] == "x"
    assert {c["image"] for _, s in _pod_specs(docs) for c in s["initContainers"] + s["containers"]} == {"reg/img:9"}


def test_scan_container_identical_in_job_and_daemonset():
    ds = R.documents("daemonset")[2]["spec"]["template"]["spec"]
    job = R.documents("job", nodes=4)[2]["spec"]["template"]["spec"]
    assert ds["initContainers"][0] == job["containers"][0]
    assert ds["volumes"] == job["volumes"]


def test_deploy_tree_is_generated_from_render(tmp_path):
    """deploy/ is exactly what render.py generates (edit render.py, then regenerate)."""
    fresh = R.deploy_files()
    committed = {str(p.relative_to(DEPLOY)): p.read_text() for p in DEPLOY.rglob("*.yaml")}
    assert committed == fresh, "deploy/ is stale: run python -m nodecheck.k8s.render --write-deploy deploy"


def test_kustomize_equals_render(capsys):
    assert _kustomize(DEPLOY / "base") == _rendered(["--daemonset"], capsys)
    assert _kustomize(DEPLOY / "overlays" / "job") == _rendered(["--job", "--nodes", "1"], capsys)


@pytest.mark.parametrize("comps", [["dpkg"], list(R.OPTIONAL)])
@pytest.mark.parametrize("overlay", ["base", "overlays/job"])
def test_kustomize_components_equal_render_with(tmp_path, capsys, comps, overlay):
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [f"../deploy/{overlay}"], "components": [f"../deploy/components/{c}" for c in comps]}))
    args = ["--job", "--nodes", "1"] if overlay != "base" else []
    assert _kustomize(tmp_path / "user") == _rendered(args + sum((["--with", c] for c in comps), []), capsys)


def test_readme_lists_every_mount():
    readme = (DEPLOY / "README.md").read_text()
    assert R.mount_table_markdown() in readme, "deploy/README.md mount table is stale (--mount-table)"


# --- The image: Dockerfile policy lint and a build dry run (there is no Docker engine here) ---

import fnmatch  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def _stages(ins):
    stages = []
    for word, rest in ins:
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, rest))
    return stages


def _args(ins) -> dict:
    return {k: v for w, r in ins if w == "ARG" and "=" in r for k, v in [r.split("=", 1)]}


def _resolve(s: str, args: dict) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), s)


def _ignored(rel: str, patterns: list[str]) -> bool:
    """.dockerignore semantics (last match wins, ! re-includes, a dir's exclusion covers its files)."""
    parts = rel.split("/")
    ignored = False
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        p = p.rstrip("/")
        hit = any(fnmatch.fnmatch("/".join(parts[:i]), p) or
                  (p.startswith("**/") and fnmatch.fnmatch("/".join(parts[:i]).split("/")[-1], p[3:]))
                  for i in range(1, len(parts) + 1))
        if hit:
            ignored = not neg
    return ignored


def _context_files() -> list[str]:
    pats = [l.strip() for l in (REPO / ".dockerignore").read_text().splitlines()
            if l.strip() and not l.startswith("#")]
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    return [f for f in files if (REPO / f).is_file() and not _ignored(f, pats)]


def test_dockerfile_policies():
    ins = _instructions(REPO / "Dockerfile")
    args = _args(ins)
    stages = _stages(ins)
    assert len(stages) >= 1
    for st in stages:
        base = _resolve(st[0][1].split()[0], args)
        if base in {s[0][1].split()[-1] for s in stages[:-1]}:
            continue  # FROM an earlier stage
        assert "@sha256:" in base or re.search(r":[\w.\-]*\d[\w.\-]*$", base), f"unpinned base {base}"
        assert not base.endswith(":latest")
    final = stages[-1]
    users = [r for w, r in final if w == "USER"]
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, "USER must be a numeric non-root UID (runAsNonRoot checks it)"
    assert not gid or gid.isdigit()
    assert int(uid) == R.UID and (not gid or int(gid) == R.GID), "USER must match the manifests' runAsUser/Group"
    (ep,) = [r for w, r in final if w == "ENTRYPOINT"]
    assert json.loads(ep) == R.ENTRYPOINT == ["nodecheck", "scan", "--root", "/host", "-o", "json"]
    assert not [r for w, r in final if w == "CMD"], "no CMD: the entrypoint is complete"
    for w, r in ins:
        assert w != "ADD", "use COPY (ADD fetches URLs and unpacks archives)"
        assert w in {"FROM", "ARG", "WORKDIR", "COPY", "RUN", "ENV", "USER", "ENTRYPOINT", "LABEL"}, w
        if w == "RUN":
            assert not re.search(r"\b(curl|wget)\b", r), "no downloads in RUN"
            assert "apt-get upgrade" not in r and "sudo" not in r
    # The matrix and the playbooks go into the build as in the repository; setup.py's build hook
    # makes them package data (nodecheck/data/), where nodecheck.matrix looks.
    build = stages[0]
    for tree in ("matrix", "playbooks"):
        assert any(w == "COPY" and r.split()[0].rstrip("/") == tree
                   and r.split()[-1].rstrip("/") == tree for w, r in build), tree
    assert any(w == "COPY" and "setup.py" in r.split()[:-1] for w, r in build), "the build hook"


def test_dockerfile_copies_exist_in_context():
    """Every COPY source exists and is not excluded by .dockerignore (the context docker would send)."""
    ins = _instructions(REPO / "Dockerfile")
    ctx = _context_files()
    assert "nodecheck/probe/probe.sh" in ctx and "pyproject.toml" in ctx
    assert not [f for f in ctx if f.startswith(("tests/", ".venv/", "deploy/", ".git/")) or "__pycache__" in f]
    for w, r in ins:
        if w != "COPY" or r.startswith("--from"):
            continue
        for src in r.split()[:-1]:
            src = src.rstrip("/")
            assert (REPO / src).exists(), f"COPY {src}: missing"
            assert any(f == src or f.startswith(src + "/") for f in ctx), f"COPY {src}: excluded by .dockerignore"


@pytest.mark.slow
def test_dockerfile_dry_run_build(tmp_path):
    """Do the build stage by hand: the COPYed files only, `pip install .` into a fresh venv, the
    matrix where the image puts it; then the installed entrypoint must run from outside the repo."""
    ins = _instructions(REPO / "Dockerfile")
    build = _stages(ins)[0]
    src = tmp_path / "src"
    src.mkdir()
    ctx = _context_files()
    for w, r in build:
        if w == "COPY":
            *sources, dest = r.split()
            for s in sources:
                s = s.rstrip("/")
                for f in ctx:
                    if f == s or f.startswith(s + "/"):
                        target = src / dest.rstrip("/") / f[len(s):].lstrip("/") if dest != "./" else src / f
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(REPO / f, target)
    (run,) = [r for w, r in build if w == "RUN"]
    assert "pip install" in run and re.search(r"pip install [^&]*\s\.(\s|$)", run), run
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "."],
                         cwd=src, capture_output=True, text=True)
    if pip.returncode and ("Could not find a version" in pip.stderr or "connection" in pip.stderr.lower()):
        pytest.skip("no package index reachable: " + pip.stderr[-300:])
    assert pip.returncode == 0, pip.stderr
    env = {"PATH": f"{venv}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import nodecheck,sys;print(nodecheck.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), f"imported from {where}, not the fresh install"
    assert subprocess.run(["nodecheck", "--version"], cwd=tmp_path, env=env, capture_output=True,
                          text=True).returncode == 0
    help_ = subprocess.run(["nodecheck", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True).stdout
    assert "k8s" in help_
    # The installed package finds its matrix and schema by itself (no env var, no repo checkout).
    found = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "from nodecheck import matrix as m; print(m.default_path()); print(m.schema_path())"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr[-1000:]
    assert all(line.startswith(str(venv)) for line in found.stdout.split()), found.stdout
    probe = subprocess.run(["nodecheck", "k8s", "render"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert probe.returncode == 0 and "kind: DaemonSet" in probe.stdout
    if " scan " not in help_ and "\n  scan" not in help_:
        pytest.skip("`nodecheck scan` not in this build yet: install and render verified, scan not run")
    # The entrypoint itself (root / instead of /host: this is the build check, not the pod).
    res = subprocess.run(["nodecheck", *R.ENTRYPOINT[1:3], "/", *R.ENTRYPOINT[4:]], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode in (0, 1, 2, 3), res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1, "the report must be one JSON line (kubectl logs of many pods concatenate)"
    report = json.loads(lines[0])
    assert report["schema"] == "nodecheck.report/v1"
    assert report.get("matrix_version"), "the installed scan did not find the matrix"


# --- NODE_NAME and the NFD variant (issue 11) --------------------------------------------

def test_every_scan_container_gets_node_name_from_the_downward_api(capsys):
    for label, docs in _all_manifest_sets(capsys).items():
        for _, spec in _pod_specs(docs):
            scans = [c for c in spec.get("initContainers", []) + spec["containers"] if "volumeMounts" in c]
            assert scans, label
            for c in scans:
                assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in c["env"], label


def test_node_name_env_names_the_report(tmp_path):
    import json
    import os
    import sys
    root = REPO / "tests/fixtures/hosts/debian-12/root"
    env = dict(os.environ, NODE_NAME="worker-7.k8s.example")
    p = subprocess.run([sys.executable, "-m", "nodecheck.cli", "scan", "--root", str(root), "-o", "json"],
                       capture_output=True, text=True, env=env, cwd=REPO)
    assert json.loads(p.stdout)["nodes"][0]["node"] == "worker-7.k8s.example"


@pytest.mark.parametrize("kind", [["--daemonset"], ["--job", "--nodes", "2"]])
def test_nfd_variant_mounts_features_d_writable_and_passes_the_file(kind, capsys):
    docs = _rendered([*kind, "--nfd"], capsys)
    for minor in (MINORS[0], MINORS[-1]):
        for d in docs:
            _validate(d, minor)
    ((work, spec),) = _pod_specs(docs)
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["nfd-features"]["hostPath"] == {"path": "/etc/kubernetes/node-feature-discovery/features.d",
                                                "type": "Directory"}
    writers = [c for c in spec.get("initContainers", []) + spec["containers"]
               if any(vm["name"] == "nfd-features" for vm in c.get("volumeMounts", []))]
    assert writers
    for c in writers:
        (vm,) = [vm for vm in c["volumeMounts"] if vm["name"] == "nfd-features"]
        assert vm["readOnly"] is False
        i = c["args"].index("--nfd-features-file")
        assert c["args"][i + 1].startswith(vm["mountPath"] + "/")
        assert c["args"][c["args"].index("--nfd-expiry") + 1] == R.NFD_EXPIRY
        sc = c["securityContext"]
        # root only to own the file in root's directory: no capabilities, no escalation, read-only rootfs
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True and sc["privileged"] is False
        for other in c["volumeMounts"]:
            if other["name"] not in ("nfd-features", "tmp"):
                assert other["readOnly"] is True, other
    if work["kind"] == "DaemonSet":
        assert [c["name"] for c in spec["containers"]] == ["refresh"]  # renews the expiring file
    # Without --nfd nothing is writable on the host and the pod is non-root.
    ((_, plain),) = _pod_specs(_rendered(kind, capsys))
    assert "nfd-features" not in {v["name"] for v in plain["volumes"]}


def test_nfd_variant_args_write_a_features_file_with_expiry(tmp_path, capsys):
    """Run the rendered container's own args (root and file paths moved to a fixture and tmp)."""
    import datetime as dt
    import os
    import sys
    docs = _rendered(["--daemonset", "--nfd"], capsys)
    ((_, spec),) = _pod_specs(docs)
    args = list(spec["initContainers"][0]["args"])
    feat = tmp_path / "nodecheck-sysbox"
    args[args.index("--root") + 1] = str(REPO / "tests/fixtures/hosts/debian-12/root")
    args[args.index("--nfd-features-file") + 1] = str(feat)
    assert args[0] == "nodecheck"
    p = subprocess.run([sys.executable, "-m", "nodecheck.cli", *args[1:]], capture_output=True, text=True,
                       env=dict(os.environ, NODE_NAME="node-a"), cwd=REPO)
    assert p.returncode == 1, p.stderr  # debian-12 warns
    lines = feat.read_text().splitlines()
    (exp,) = [ln for ln in lines if ln.startswith("# +expiry-time=")]
    when = dt.datetime.strptime(exp.split("=", 1)[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    left = when - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(hours=23) < left <= dt.timedelta(hours=24)
    assert "nodecheck.sysbox.io/verdict=warn" in lines
