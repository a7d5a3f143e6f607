"""kconfig.parse_config's whole-text fast path gives exactly what the per-line loop gives
(issue 15): same dict, same order, on real configs and on generated text full of the
characters where the two could differ (whitespace, CR, form feeds, splitlines() separators,
non-ASCII, near-miss names)."""

import re
from pathlib import Path

from hypothesis import example, given, settings, strategies as st

from nodecheck.facts import kconfig

_LINE = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
HOSTS = Path(__file__).parent / "fixtures" / "hosts"


def per_line(text: str) -> dict[str, str]:
    """The reference: the loop parse_config always had."""
    out = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_real_configs():
    configs = [p for p in HOSTS.glob("*/root/boot/config-*") if p.is_file()]
    assert configs
    for p in configs:
        text = p.read_text(errors="replace")
        got = kconfig.parse_config(text)
        assert got == per_line(text) and list(got) == list(per_line(text))
        assert len(got) > 100


PIECES = st.sampled_from(["CONFIG_", "CONFIG_A", "=", "y", "m", '"x y"', " ", "\t", "\n", "\r", "\r\n", "\x0b",
                          "\x0c", "\x1c", "\x1f", "\x85", "\u2028", "#", " is not set", "Ä", "١", "_", "-", "B9"])


@settings(max_examples=2000, deadline=None)
@example("x\n\tCONFIG_A=y")
@example("x\n CONFIG_A=y")
@example("\tCONFIG_A=y")
@example("CONFIG_A=y \nCONFIG_B=m")
@example("CONFIG_A=y\tz\t")
@example("CONFIG_A=y\rCONFIG_B=m")
@example("CONFIG_A=y\x0cCONFIG_B=m\x1c")
@example("CONFIG_A=y\x85CONFIG_B=m\u2028CONFIG_C=1")
@example("CONFIG_Ä=y\nCONFIG_B=m")
@given(st.lists(PIECES, max_size=30).map("".join))
def test_generated_text(text):
    got = kconfig.parse_config(text)
    assert got == per_line(text) and list(got) == list(per_line(text))


@given(st.lists(st.sampled_from(["CONFIG_A=y", "CONFIG_B=m", "# CONFIG_C is not set", "", "CONFIG_A=2",
                                 'CONFIG_S="a b"', "#"]), max_size=20).map("\n".join))
def test_generated_clean_configs(text):  # the fast path's own inputs
    assert kconfig.parse_config(text) == per_line(text)
