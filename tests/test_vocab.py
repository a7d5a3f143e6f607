"""The shared vocabulary (nodecheck/vocab.py): one definition that every layer uses."""

from __future__ import annotations

import io

import pytest

from nodecheck import checks, pipeline, vocab
from nodecheck.report import junit, table


def test_worst_orders_fail_unknown_warn_pass():
    assert vocab.worst([]) == "pass"
    assert vocab.worst(["pass", "warn"]) == "warn"
    assert vocab.worst(["warn", "unknown", "pass"]) == "unknown"  # "could not tell" outranks a caveat
    assert vocab.worst(["unknown", "fail", "warn"]) == "fail"
    with pytest.raises(KeyError):
        vocab.worst(["green"])  # a word nobody defined is an error, not a silent pass


def test_layers_share_one_definition():
    # the same objects, not equal copies: a new verdict or kind cannot be added to one layer only
    assert checks.worst is vocab.worst is pipeline.worst
    assert (checks.PASS, checks.WARN, checks.FAIL, checks.UNKNOWN) == vocab.VERDICTS
    assert table.VERDICTS is vocab.VERDICTS and pipeline.VERDICTS is vocab.VERDICTS
    assert junit.HOST_ERROR_KINDS is vocab.ERROR_KINDS is pipeline.ERROR_KINDS


def test_error_kinds_cover_transport_and_pod():
    assert set(vocab.TRANSPORT_ERROR_KINDS) | set(vocab.POD_ERROR_KINDS) == set(vocab.ERROR_KINDS)
    from nodecheck import fleet
    assert set(fleet.STATUSES) - {"ok"} <= set(vocab.TRANSPORT_ERROR_KINDS)


def test_debian_arch():
    assert vocab.debian_arch("x86_64") == "amd64" and vocab.debian_arch("aarch64\n") == "arm64"
    assert vocab.debian_arch("armv7l") == "armhf"
    assert vocab.debian_arch("mips-of-the-future") is None and vocab.debian_arch(None) is None


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_color_only_on_a_tty_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert vocab.color_allowed(_Tty()) and not vocab.color_allowed(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not vocab.color_allowed(_Tty())
    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: set *and non-empty*
    assert vocab.color_allowed(_Tty())
