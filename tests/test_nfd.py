"""NFD features.d file from a report node: label-valid names and values, expiry, size cap."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from nodecheck.report.nfd import MAX_BYTES, PREFIX, features_file, label_value, valid_key, valid_value

NODE = {
    "node": "worker-1.example",
    "verdict": "warn",
    "sysbox": {"target": "0.7.1", "compatible_releases": ["0.6.7", "0.7.1"], "recommended": "0.7.1"},
    "facts": {"kernel.release": "5.14.0-427.13.1.el9_4.x86_64", "arch": "amd64", "distro.id": "rocky",
              "distro.version_id": "9.4", "selinux.mode": "permissive"},
    "checks": [{"id": "selinux", "status": "warn", "message": "m", "remediation": "r"},
               {"id": "kernel.version", "status": "pass", "message": "m", "remediation": ""}],
}


def _pairs(text: str) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in text.splitlines() if ln and not ln.startswith("#"))


# The Kubernetes rules (apimachinery IsQualifiedName / IsValidLabelValue), written out again here
# so the test does not just reuse the module's own regexes.
def _k8s_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if not (0 < len(name) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name)):
        return False
    return not prefix or (len(prefix) <= 253 and all(
        re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", part) for part in prefix.split(".")))


def _k8s_value_ok(v: str) -> bool:
    return v == "" or (len(v) <= 63 and bool(re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", v)))


def test_verdict_and_key_facts():
    text = features_file(NODE)
    kv = _pairs(text)
    assert kv[PREFIX + "verdict"] == "warn"
    assert kv[PREFIX + "sysbox.recommended"] == "0.7.1"
    assert kv[PREFIX + "kernel.release"] == "5.14.0-427.13.1.el9_4.x86_64"
    assert kv[PREFIX + "arch"] == "amd64"
    assert kv[PREFIX + "distro.id"] == "rocky" and kv[PREFIX + "distro.version_id"] == "9.4"
    assert kv[PREFIX + "selinux.mode"] == "permissive"
    assert kv[PREFIX + "check.selinux"] == "warn"
    assert PREFIX + "check.kernel.version" not in kv  # passing checks make no label
    for k, v in kv.items():
        assert _k8s_key_ok(k) and _k8s_value_ok(v), (k, v)
    assert "+expiry-time" not in text


def test_expiry_directive_is_rfc3339_utc():
    t = datetime(2026, 12, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    text = features_file(NODE, expires=t)
    assert "# +expiry-time=2026-12-01T10:00:00Z\n" in text


def test_missing_and_unlabelable_values():
    node = {"node": "n", "verdict": None, "facts": {"kernel.release": "6.1.0+rpt-rpi-v8", "selinux.mode": None,
                                                     "distro.id": "!!!"}}
    kv = _pairs(features_file(node))
    assert kv[PREFIX + "verdict"] == "unknown"
    assert kv[PREFIX + "kernel.release"] == "6.1.0_rpt-rpi-v8"
    assert PREFIX + "selinux.mode" not in kv and PREFIX + "distro.id" not in kv
    assert "not representable as labels: distro.id" in features_file(node)


def test_size_cap_drops_check_lines_not_the_verdict():
    node = dict(NODE, checks=[{"id": f"c{i:05d}.{'x' * 40}", "status": "fail"} for i in range(3000)])
    text = features_file(node)
    assert len(text.encode()) <= MAX_BYTES
    kv = _pairs(text)
    assert kv[PREFIX + "verdict"] == "warn" and kv[PREFIX + "kernel.release"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=200)))
def test_label_value_is_always_valid(raw):
    v = label_value(raw)
    assert v is None or (_k8s_value_ok(v) and valid_value(v) and v != "")


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["kernel.release", "arch", "distro.id", "distro.version_id",
                                        "selinux.mode"]), st.one_of(st.none(), st.text(max_size=100))),
       st.lists(st.fixed_dictionaries({"id": st.text(min_size=1, max_size=80),
                                       "status": st.sampled_from(["pass", "warn", "fail", "unknown"])}),
                max_size=20))
def test_every_line_is_a_valid_label_or_comment(facts, checks):
    text = features_file({"node": "x", "verdict": "fail", "facts": facts, "checks": checks})
    for ln in text.splitlines():
        if ln.startswith("#"):
            continue
        k, _, v = ln.partition("=")
        assert k.startswith(PREFIX) and _k8s_key_ok(k) and valid_key(k) and _k8s_value_ok(v), ln
