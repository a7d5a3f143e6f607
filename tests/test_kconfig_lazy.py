"""kconfig.parse keeps a plain config's text and looks options up in it on demand (issue 15):
every answer must be the one the whole dict gives (parse_config, itself checked against the
per-line loop in test_kconfig_parse.py), on real configs and on generated text full of the
characters where a lookup in the raw text could differ from the dict (whitespace around
values, CR and the other splitlines() separators, duplicates, near-miss names)."""

import copy
import json
import pickle
from pathlib import Path

from hypothesis import example, given, settings, strategies as st

from nodecheck.facts import kconfig
from nodecheck.sections import Section, Sections

HOSTS = Path(__file__).parent / "fixtures" / "hosts"
NAMES = ["A", "B", "AB", "A_B", "B9", "USER_NS", "SHIFT_FS", "", "A-B", "A ", "Ä", "CONFIG_A"]


def sections(text: str) -> Sections:
    name = "kconfig:/boot/config-x"
    return Sections(by_name={name: Section(name=name, status="ok", text=text)}, done=True)


def expected(text: str, name: str):
    """What get() answered when parse() always built the dict."""
    opts = kconfig.parse_config(text)
    if not opts:
        return None  # "no CONFIG_ lines": the config is unknown
    v = opts.get(name.removeprefix("CONFIG_"))
    return "n" if v in (None, "n") else "m" if v == "m" else "y"


def check(text: str, names) -> None:
    f = kconfig.parse(sections(text))
    opts = kconfig.parse_config(text)
    assert f.known == bool(opts)
    assert f.source == ("/boot/config-x" if opts else None)
    for n in names:
        assert f.get(n) == expected(text, n), (text, n)
    g = copy.deepcopy(f)
    assert f.options == (opts if opts else {}) and list(f.options) == list(opts if opts else {})
    assert g.get("A") == f.get("A") and pickle.loads(pickle.dumps(g)) == f
    assert json.loads(json.dumps(f.to_dict()))["options"] == (opts if opts else {})


def test_real_configs_lazy_and_equal():
    configs = [p for p in HOSTS.glob("*/root/boot/config-*") if p.is_file()]
    assert configs
    for p in configs:
        text = p.read_text(errors="replace")
        f = kconfig.parse(sections(text))
        assert "options" not in f.__dict__, p  # real configs take the lazy path
        opts = kconfig.parse_config(text)
        for n in list(opts)[:200] + ["USER_NS", "SHIFT_FS", "FUSE_FS", "NOT_AN_OPTION"]:
            assert f.get(n) == expected(text, n), (p, n)
        assert "options" not in f.__dict__  # lookups alone never build the dict
        assert f.options == opts


PIECES = st.sampled_from(["CONFIG_", "CONFIG_A", "CONFIG_B", "=", "y", "m", "n", '"x y"', " ", "\t", "\n",
                          "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "#", " is not set", "Ä", "_",
                          "-", "B9", "\nCONFIG_A=", "\nCONFIG_B=m"])


@settings(max_examples=1500, deadline=None)
@example("CONFIG_A=y\nCONFIG_A=m")
@example("CONFIG_A=y \nCONFIG_B=m")
@example("CONFIG_A=y\nCONFIG_B=m\t")
@example("CONFIG_A=m\n CONFIG_A=y")
@example("CONFIG_A=m\rCONFIG_A=y")
@example("CONFIG_AB=y\nCONFIG_A=")
@example("# CONFIG_A is not set\nCONFIG_B=y")
@example("xCONFIG_A=y")
@example("\t CONFIG_A=m \t\n# CONFIG_A=y\nxCONFIG_A=y\nCONFIG_CONFIG_A=y")
@example(" CONFIG_B=y")
@example("CONFIG_A= \t")
@given(st.lists(PIECES, max_size=30).map("".join))
def test_generated_text(text):
    check(text, NAMES)
