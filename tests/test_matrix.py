"""The Sysbox compatibility matrix: data validates, every fact is sourced, loader and rules behave."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from packaging.version import Version

from nodecheck import matrix as mx

ROOT = Path(__file__).resolve().parents[1]
MATRIX_DIR = ROOT / "matrix"
DATA = MATRIX_DIR / "sysbox.yaml"
SCHEMA = MATRIX_DIR / "schema.json"
# kubernetes.yaml (cluster-level requirements) has its own schema, tested below.
OWN_SCHEMA = {"kubernetes.yaml": MATRIX_DIR / "kubernetes.schema.json"}
MATRIX_FILES = [p for p in sorted(MATRIX_DIR.rglob("*.yaml")) + sorted(MATRIX_DIR.rglob("*.yml"))
                if p.name not in OWN_SCHEMA]

# Objects that are containers or sub-parts of a sourced fact, not facts of their own.
EXEMPT = [
    r"^\$$",                                        # the root
    r"^\$\.filesystems$",                           # container of no_idmap + data_root
    r"^\$\.releases\[\d+\]\.runtimes$",             # container of docker + kubernetes
    r"^\$\.releases\[\d+\]\.runtimes\.kubernetes\.containerd$",
    r"^\$\.releases\[\d+\]\.artifacts\[\d+\]\.distro$",
    r"^\$\.releases\[\d+\]\.deb_preinst\.distro_minimums\[\d+\]$",
    r"^\$\.rules\[\d+\]\.when(\.(all|any)\[\d+\])*$",  # condition trees of a sourced rule
]


def raw() -> dict:
    return mx.read_raw(DATA)


def walk(node, path="$"):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


@pytest.fixture(scope="module")
def m() -> mx.Matrix:
    return mx.load(DATA)


def test_there_is_a_matrix_file():
    assert DATA in MATRIX_FILES


@pytest.mark.parametrize("path", MATRIX_FILES, ids=lambda p: p.name)
def test_every_matrix_file_validates_against_the_schema(path):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    data = mx.read_raw(path)  # schema + semantic checks
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    assert errors == []


@pytest.mark.parametrize("name", sorted(OWN_SCHEMA))
def test_files_with_their_own_schema_validate(name):
    schema = json.loads(OWN_SCHEMA[name].read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data = yaml.safe_load((MATRIX_DIR / name).read_text())
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data)) == []


def test_every_fact_object_has_an_https_source():
    checked = 0
    for path, obj in walk(raw()):
        if any(re.match(p, path) for p in EXEMPT):
            assert "source" not in obj or isinstance(obj["source"], str)
            continue
        assert "source" in obj, f"{path} has no source"
        assert re.fullmatch(r"https://\S+", obj["source"]), f"{path}: {obj['source']!r}"
        for u in obj.get("see_also", []):
            assert re.fullmatch(r"https://\S+", u), f"{path}: see_also {u!r}"
        checked += 1
    assert checked > 300  # releases x distros/artifacts + globals: the walk really ran


def test_schema_requires_source_on_fact_definitions():
    schema = json.loads(SCHEMA.read_text())
    for name in ("rule", "kernel_threshold", "fs_entry", "distro", "artifact", "release"):
        assert "source" in schema["$defs"][name]["required"], name
        assert schema["$defs"][name]["additionalProperties"] is False, name


def test_fact_names_in_schema_match_loader():
    schema = json.loads(SCHEMA.read_text())
    assert set(schema["$defs"]["fact"]["enum"]) == set(mx.FACTS)
    for f in mx.FACTS:
        assert f"`{f}`" in schema["$defs"]["fact"]["description"]


def test_releases_unique_sorted_and_the_expected_set(m):
    versions = [r.version for r in m.releases]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    assert m.versions == ("0.4.0", "0.4.1", "0.5.0", "0.5.1", "0.5.2", "0.6.1", "0.6.2", "0.6.3",
                          "0.6.4", "0.6.5", "0.6.6", "0.6.7", "0.7.0", "0.7.1")
    assert "0.6.0" not in m.versions and m.never_released == ("0.6.0",)
    assert str(m.newest.version) == "0.7.1"
    assert m.version == "2026.12.0"


def test_sha256_strings_are_64_hex_and_unique(m):
    shas = [a.sha256 for r in m.releases for a in r.artifacts if a.sha256 is not None]
    assert len(shas) >= 17
    for s in shas:
        assert re.fullmatch(r"[0-9a-f]{64}", s), s
    assert len(set(shas)) == len(shas)


def test_unknown_sha256_is_null_not_invented(m):
    # research: arm64 SHA256 for 0.5.x-0.6.2 and 0.6.4 not found; 0.4.1 not found
    for v in ("0.5.0", "0.5.1", "0.5.2", "0.6.1", "0.6.2", "0.6.4"):
        assert m.release(v).artifact("arm64").sha256 is None, v
    assert all(a.sha256 is None for a in m.release("0.4.1").artifacts)
    assert m.release("0.5.1").artifact("amd64").sha256 is None


def test_spot_checks_against_the_research(m):
    r070 = m.release("0.7.0")
    assert r070.artifact("amd64").sha256 == "eeff273671467b8fa351ab3d40709759462dc03d9f7b50a1b207b37982ce40a9"
    assert r070.artifact("arm64").sha256 == "eae9c0e91ddd39bd1826d6a7a313a73d42a8449ef5113e9d6d118b559cb809ba"
    assert m.release("0.6.3").artifact("arm64").sha256.startswith("4b475e7e")
    assert m.release("0.4.0").artifact("amd64", "ubuntu", "20.04").sha256.startswith("b189602c")
    assert m.release("0.4.0").artifact("amd64", "debian", "11").filename == "sysbox-ce_0.4.0-0.debian-bullseye_amd64.deb"
    assert m.release("0.5.0").artifact("amd64").filename == "sysbox-ce_0.5.0-0.linux_amd64.deb"
    # arm64 first in 0.5.0
    first_arm = next(r for r in m.releases if "arm64" in r.archs)
    assert str(first_arm.version) == "0.5.0"
    assert all(r.archs == ("amd64",) for r in m.releases if r.version < Version("0.5.0"))
    # K8s minors from the installer whitelist, not the lagging docs
    assert m.release("0.6.5").k8s_minors == ("1.27", "1.28", "1.29", "1.30")
    assert m.release("0.6.5").kubernetes.docs_minors == ("1.26", "1.27", "1.28", "1.29")
    assert m.release("0.5.2").k8s_minors == ("1.21", "1.22", "1.23")
    assert m.release("0.6.7").k8s_minors == ("1.29", "1.30", "1.31", "1.32")
    assert r070.k8s_minors == ("1.32", "1.33", "1.34", "1.35")
    assert r070.kubernetes.eol_minors == ("1.28", "1.29", "1.30", "1.31")
    assert r070.kubernetes.supports("v1.33.2") is True and r070.kubernetes.supports("v1.31.0") is False
    # containerd native path from 0.7.0: the installer's is_containerd_with_userns accepts 2.0.0
    # (except the 2.0.1-2.0.4 userns bug range); the docs say 2.0.5 (audit of sysbox-pkgr 0088f039)
    assert r070.containerd_min == "2.0.0" and m.release("0.6.7").containerd_min is None
    # 0.7.0's tag is dated 2026-03-03 (git tag v0.7.0), not the CHANGELOG's 2025-03-02
    assert str(r070.date) == "2026-03-03"
    # 0.4.0: Fedora 33/34 (CHANGELOG; 31/32 deprecated), Flatcar a source build (EE-only from 0.4.1)
    r040 = m.release("0.4.0")
    assert r040.distro("fedora", "33") and r040.distro("fedora", "31") is None
    assert r040.distro("flatcar", "3139.2.0").support == "wip" and m.release("0.4.1").distro("flatcar", "1").support == "ee-only"
    # the 0.4.x preinst already has the unset-variable bug (sysbox-pkgr adc3b8b): only 5.2.0 fails
    assert r040.deb_preinst["enforces_distro_minimums"] is False
    # docs at v0.6.1 list 1.21-1.23; the installer 1.22-1.26
    assert m.release("0.6.1").kubernetes.docs_minors == ("1.21", "1.22", "1.23")
    # cgroup v2 from 0.4.0
    assert all(r.cgroup_v1 and r.cgroup_v2 for r in m.releases)


def test_containerd_pin_only_for_releases_whose_inner_runc_breaks(m):
    for r in m.releases:
        expected = "1.5.11-1" if r.version <= Version("0.5.1") else None
        assert r.containerd_pin.version == expected, r.version
        assert r.containerd_pin.where == "workspace-image"
        assert r.containerd_pin.source == "https://github.com/nestybox/sysbox/issues/544"
    # nothing upstream says the pin breaks a later release: the note must not say "harmful"
    assert "harmful" not in m.release("0.5.2").containerd_pin.note
    assert "No upstream report" in m.release("0.7.1").containerd_pin.note


def test_min_kernel_per_distro(m):
    r = m.release("0.6.7")
    assert r.min_kernel("ubuntu", "22.04") == Version("5.15")
    assert r.min_kernel("ubuntu", "18.04") == Version("5.3")
    assert r.min_kernel("debian", "11") == Version("5.5")
    assert r.min_kernel("rocky", "8") == Version("5.12")
    assert r.min_kernel("flatcar", "3815.2.0") == Version("5.10")
    assert r.min_kernel("ubuntu", "16.04") is None  # not a listed distro
    assert r.distro("fedora", "37").support == "wip"
    assert m.release("0.6.1").distro("fedora", "37") is None  # 36/37 only from 0.6.2
    assert m.release("0.7.0").min_kernel("amzn", "2023") == Version("6.1")
    # 0.4.x Bionic: docs 5.0 vs preinst 5.2 -> stricter 5.2 enforced
    d = m.release("0.4.0").distro("ubuntu", "18.04")
    assert (d.min_kernel_docs, d.min_kernel_preinst, d.min_kernel) == ("5.0", "5.2", "5.2")
    assert all(not r.deb_preinst["enforces_distro_minimums"] for r in m.releases if r.version >= Version("0.5.0"))


def test_shiftfs_policy(m):
    old = m.release("0.4.1").shiftfs
    assert old.policy == "shiftfs-or-userns-remap" and old.required("6.1.0") is True
    s = m.release("0.6.1").shiftfs
    assert s.required("5.11.0-49-generic") is True
    assert s.required("5.12.0") is False
    assert s.idmapped_rootfs_from_kernel == "5.19"
    assert m.release("0.5.2").shiftfs.idmapped_rootfs_from_kernel is None
    assert m.shiftfs_available("ubuntu") is True and m.shiftfs_available("rocky") is False


def test_globals(m):
    assert m.threshold("idmap").kernel == "5.12"
    assert m.threshold("ovfs-on-idmap").kernel == "5.19"
    assert m.threshold("tmpfs-idmap").kernel == "6.3"
    assert m.threshold("kernel-6.5-fix").applies_to("0.6.4") and not m.threshold("kernel-6.5-fix").applies_to("0.6.3")
    assert m.threshold("idmap").met_by("5.12.0-1-generic") is True
    assert m.threshold("idmap").met_by("5.11.22") is False
    assert set(m.host_tools) == {"rsync", "iptables", "modprobe", "fusermount", "fusermount3"}
    # sysbox-fs needs fuse 2's fusermount before 0.7.0 and fusermount3 from 0.7.0 (sysbox PR #955)
    assert {h["name"] for h in m.host_tools_for("0.6.7")} == {"rsync", "iptables", "modprobe", "fusermount"}
    assert {h["name"] for h in m.host_tools_for("0.7.0")} == {"rsync", "iptables", "modprobe", "fusermount3"}
    assert m.no_idmap_fs("overlay") is not None
    assert m.no_idmap_fs("nfs4") is not None
    assert m.no_idmap_fs("tmpfs", "6.2.0") is not None and m.no_idmap_fs("tmpfs", "6.3.1") is None
    assert m.no_idmap_fs("ext4") is None
    assert "assumed_ok" not in m.data_root  # the unsourced "xfs is fine" assumption is gone
    assert any("xfs" in e["fs_types"] for e in m.data_root["caution"])
    assert any("zfs" in e["fs_types"] for e in m.data_root["forbidden"])
    assert m.selinux_supported is False


@pytest.mark.parametrize("facts,expected", [
    ({"kernel.release": "6.5.0-14-generic", "sysbox.release": "0.6.3"}, True),
    ({"kernel.version": "6.5.0", "sysbox.release": "0.6.4"}, False),
    ({"kernel.version": "6.4.16", "sysbox.release": "0.5.2"}, False),
    ({"sysbox.release": "0.6.3"}, None),  # kernel unknown
])
def test_kernel_6_5_rule(m, facts, expected):
    assert m.rule("kernel-6.5-needs-0.6.4").evaluate(facts) is expected


def test_rules_scope_by_release(m):
    ids = lambda v: {r.id for r in m.release(v).rules}  # noqa: E731
    assert "kernel-6.5-needs-0.6.4" in ids("0.6.3") and "kernel-6.5-needs-0.6.4" not in ids("0.6.4")
    assert "containerd2-k8s-sysfs-procfd-0.7.0" in ids("0.7.0")
    assert "containerd2-k8s-sysfs-procfd-0.7.0" not in ids("0.7.1")
    # time namespace: every release before 0.7.1 lacks sysbox-runc time-ns support (#1011, runc#112)
    assert "docker29.5-time-namespace" in ids("0.6.6") and "docker29.5-time-namespace" in ids("0.7.0")
    assert "docker29.5-time-namespace" not in ids("0.7.1")
    assert "kernel-6.17-containerd-2.2.1-sysctl" in ids("0.7.1")
    assert "inner-runc-1.1-needs-0.5.2" in ids("0.5.1") and "inner-runc-1.1-needs-0.5.2" not in ids("0.5.2")
    assert "ubuntu-25.04-apparmor-fusermount3" in ids("0.4.0")  # no release condition: all releases


def test_rule_conditions_any_and_versions(m):
    r = m.rule("docker29.5-time-namespace")
    tn = {"runtime.docker.time_namespaces": "default", "kernel.version": "6.8.0-45-generic"}
    assert r.evaluate({**tn, "runtime.docker.version": "29.5.0", "sysbox.release": "0.7.0"}) is True
    assert r.evaluate({**tn, "runtime.docker.version": "29.0.1", "sysbox.release": "0.7.0"}) is False  # before moby#52326
    assert r.evaluate({**tn, "runtime.docker.version": "29.5.0", "runtime.docker.time_namespaces": "disabled",
                       "sysbox.release": "0.6.7"}) is False
    assert r.evaluate({"runtime.docker.version": "29.5.0", "kernel.version": "6.8.0", "sysbox.release": "0.7.0"}) is None
    n = m.rule("kernel-6.17-containerd-2.2.1-sysctl")
    assert n.evaluate({"kernel.version": "6.17.0-1003-aws", "runtime.containerd.version": "2.2.1",
                       "sysbox.release": "0.7.1"}) is True
    assert n.evaluate({"kernel.version": "6.16.9", "runtime.containerd.version": "2.2.1",
                       "sysbox.release": "0.7.1"}) is False
    u = m.rule("ubuntu-25.04-apparmor-fusermount3")
    assert u.evaluate({"distro.id": "ubuntu", "distro.version_id": "25.10"}) is True
    assert u.evaluate({"distro.id": "Ubuntu", "distro.version_id": "24.04"}) is False
    assert u.evaluate({"distro.id": "debian", "distro.version_id": "26"}) is False
    el = m.rule("el9-idmap-failure-0.5")
    assert el.evaluate({"distro.id": "rocky", "distro.version_id": "9.4", "sysbox.release": "0.5.2"}) is True
    bug = m.rule("containerd-2.0.1-2.0.4-userns-bug")
    assert bug.evaluate({"runtime.containerd.version": "2.0.4", "sysbox.release": "0.7.0"}) is True
    assert bug.evaluate({"runtime.containerd.version": "2.0.5", "sysbox.release": "0.7.0"}) is False
    rc = m.rule("inner-runc-1.1-needs-0.5.2")
    assert rc.evaluate({"workspace.runc.version": "1.1.0-rc.1", "sysbox.release": "0.5.0"}) is True
    assert rc.evaluate({"workspace.runc.version": "1.0.3", "sysbox.release": "0.5.0"}) is False


def test_parse_version():
    assert mx.parse_version("6.8.0-45-generic") == Version("6.8.0")
    assert mx.parse_version("v1.30.4") == Version("1.30.4")
    assert mx.parse_version("5.14.0-427.13.1.el9_4.x86_64") == Version("5.14.0")
    assert mx.parse_version("garbage") is None


def test_release_lookup_error_lists_valid_versions(m):
    with pytest.raises(mx.MatrixError) as e:
        m.release("0.6.0")
    assert "never released" in str(e.value) and "0.6.1" in str(e.value) and "0.7.1" in str(e.value)
    with pytest.raises(mx.MatrixError):
        m.release("9.9.9")


def test_release_sources_collects_urls(m):
    srcs = m.release("0.6.5").sources
    assert "https://github.com/nestybox/sysbox-pkgr/blob/eba10066/k8s/scripts/sysbox-deploy-k8s.sh" in srcs
    assert all(s.startswith("https://") for s in srcs)


# ---- broken copies -----------------------------------------------------------------------------
def _write(tmp_path, data) -> Path:
    p = tmp_path / "broken.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_missing_source_fails_with_path(tmp_path):
    data = raw()
    del data["releases"][3]["distros"][0]["source"]
    p = _write(tmp_path, data)
    with pytest.raises(mx.MatrixError) as e:
        mx.load(p)
    msg = str(e.value)
    assert str(p) in msg
    assert "$.releases[3].distros[0]" in msg and "'source' is a required property" in msg


def test_bad_sha_fails_with_path(tmp_path):
    data = raw()
    data["releases"][12]["artifacts"][0]["sha256"] = "eeff2736"
    p = _write(tmp_path, data)
    with pytest.raises(mx.MatrixError) as e:
        mx.load(p)
    assert "$.releases[12].artifacts[0].sha256" in str(e.value)


def test_http_source_fails(tmp_path):
    data = raw()
    data["rules"][0]["source"] = "http://example.com/x"
    with pytest.raises(mx.MatrixError, match=r"\$\.rules\[0\]\.source"):
        mx.load(_write(tmp_path, data))


def test_unsorted_or_duplicate_releases_fail(tmp_path):
    data = raw()
    data["releases"][0], data["releases"][1] = data["releases"][1], data["releases"][0]
    with pytest.raises(mx.MatrixError, match="sorted"):
        mx.load(_write(tmp_path, data))
    data = raw()
    data["releases"].append(data["releases"][-1])
    with pytest.raises(mx.MatrixError, match="duplicate release 0.7.1"):
        mx.load(_write(tmp_path, data))


def test_unknown_field_and_fact_fail(tmp_path):
    data = raw()
    data["releases"][0]["colour"] = "blue"
    with pytest.raises(mx.MatrixError, match="Additional properties"):
        mx.load(_write(tmp_path, data))
    data = raw()
    data["rules"][0]["when"]["all"][0]["fact"] = "kernel.flavour"
    with pytest.raises(mx.MatrixError, match=r"\$\.rules\[0\]\.when"):
        mx.load(_write(tmp_path, data))


def test_unquoted_number_is_caught(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(DATA.read_text().replace('minors: ["1.27", "1.28", "1.29", "1.30"]',
                                          "minors: [1.27, 1.28, 1.29, 1.30]"))
    with pytest.raises(mx.MatrixError, match=r"kubernetes\.minors"):
        mx.load(p)


def test_unreadable_and_non_yaml(tmp_path):
    with pytest.raises(mx.MatrixError, match="cannot read"):
        mx.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("releases: [\n")
    with pytest.raises(mx.MatrixError, match="not valid YAML"):
        mx.load(bad)


def test_default_path_env(monkeypatch, tmp_path):
    monkeypatch.delenv(mx.ENV, raising=False)
    assert mx.default_path() == DATA
    alt = tmp_path / "alt.yaml"
    alt.write_text(DATA.read_text().replace('matrix_version: "2026.12.0"', 'matrix_version: "2026.12.1"'))
    monkeypatch.setenv(mx.ENV, str(alt))
    assert mx.load().version == "2026.12.1"


def test_diff(tmp_path, m):
    assert mx.diff(m, m) == []
    data = raw()
    data["matrix_version"] = "2026.12.1"
    data["releases"][9]["kubernetes"]["minors"].append("1.31")
    data["releases"].pop()  # drop 0.7.1
    b = mx.load(_write(tmp_path, data))
    lines = mx.diff(m, b)
    assert "matrix_version: 2026.12.0 -> 2026.12.1" in lines
    assert "release 0.7.1 removed" in lines
    assert any(line.startswith("release 0.6.5: kubernetes.minors:") and "'1.31'" in line for line in lines)
    assert "release 0.7.1 added" in mx.diff(b, m)


def test_dataclasses_are_frozen(m):
    with pytest.raises(Exception):
        m.newest.version = Version("9.9")  # type: ignore[misc]


def test_the_sources_checks_cite_are_typed_fields_equal_to_the_data():
    """Checks cite a fact's source through the typed model (issue 13); each field is the YAML's."""
    m = mx.load()
    data = raw()
    assert m.gpu.source == data["gpu"]["source"] and m.gpu.supported is data["gpu"]["supported"]
    assert m.selinux_source == data["selinux"]["source"]
    for r, rd in zip(m.releases, data["releases"], strict=True):
        assert r.archs_source == rd["architectures"]["source"]
        assert r.cgroups_source == rd["cgroups"]["source"]


def test_no_check_reads_the_raw_matrix():
    """`.raw` is the YAML as written (for `matrix show` and `diff`); a check reading it would
    guess keys the model does not promise."""
    import ast

    offenders = []
    for f in sorted((ROOT / "nodecheck" / "checks").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Attribute) and node.attr == "raw":
                offenders.append(f"{f.name}:{node.lineno}")
    assert offenders == []
