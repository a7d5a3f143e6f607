"""`python -m nodecheck.matrix --compile`: validate the bundled matrix in full and rewrite its
compiled forms (a developer's command; the wheel build refuses a stale one)."""

import sys

from .compiled import compile_bundled

if sys.argv[1:] != ["--compile"]:
    sys.exit("usage: python -m nodecheck.matrix --compile")
print("\n".join(map(str, compile_bundled())))
