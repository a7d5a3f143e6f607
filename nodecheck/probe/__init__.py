"""The node probe: one POSIX sh script, sent as text to wherever the node is."""

from __future__ import annotations

import os

_PLACEHOLDER = "__NONCE__"
# Beside this module in a checkout and in a wheel alike (package data); a plain path, not
# importlib.resources, which costs a local scan ~8 ms of imports (issue 15).
_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.sh")


def new_nonce() -> str:
    """16 hex digits from the OS's CSPRNG (what secrets.token_hex(8) returns, without
    importing secrets' hashlib and random)."""
    return os.urandom(8).hex()


def script(nonce: str | None = None) -> str:
    """The probe's text with a fresh boundary nonce.

    The nonce makes the section boundary unguessable for file contents on the node, so a
    file that happens to contain a boundary-like line cannot forge or end a section.
    """
    with open(_PATH, encoding="utf-8") as f:
        text = f.read()
    nonce = nonce or new_nonce()
    if not nonce.isalnum():
        raise ValueError("nonce must be alphanumeric")
    return text.replace(_PLACEHOLDER, nonce, 1)


def path() -> str:
    """Filesystem path of the unmodified probe (for shellcheck, docs and tests)."""
    return _PATH
