"""The node probe: one POSIX sh script, sent as text to wherever the node is."""

from __future__ import annotations

import secrets
from importlib import resources

_PLACEHOLDER = "__NONCE__"


def script(nonce: str | None = None) -> str:
    """The probe's text with a fresh boundary nonce.

    The nonce makes the section boundary unguessable for file contents on the node, so a
    file that happens to contain a boundary-like line cannot forge or end a section.
    """
    text = resources.files(__package__).joinpath("probe.sh").read_text()
    nonce = nonce or secrets.token_hex(8)
    if not nonce.isalnum():
        raise ValueError("nonce must be alphanumeric")
    return text.replace(_PLACEHOLDER, nonce, 1)


def path() -> str:
    """Filesystem path of the unmodified probe (for shellcheck, docs and tests)."""
    return str(resources.files(__package__).joinpath("probe.sh"))
