"""The versioned Sysbox compatibility matrix (matrix/sysbox.yaml), as typed objects.

The package reads in the order data flows:
    rules.py     the condition language (fact names, three-valued evaluation)
    model.py     the typed matrix: Matrix, Release and their parts, each fact with its source
    validate.py  finding a matrix file, its bounds, JSON Schema and semantic validation
    compiled.py  the bundled matrix pre-validated into sysbox.compiled.json (start-up)
    build.py     load(): validated data -> Matrix
    changes.py   diff() of two matrices
Version parsing is nodecheck.versions' (one version module for the whole tool).
"""

from __future__ import annotations

from ..versions import parse_version
from .build import load
from .changes import diff
from .compiled import COMPILED_FORMAT, compile_bundled, compiled_path, compiled_path_for, load_compiled
from .model import (Artifact, ContainerdPin, Distro, FsEntry, Gpu, KernelThreshold, Kubernetes, Matrix,
                    MatrixError, Release, Shiftfs)
from .rules import FACTS, STRING_FACTS, VERSION_FACTS, Condition, Rule
from .validate import ENV, default_path, read_raw, schema_path

__all__ = [
    "COMPILED_FORMAT", "ENV", "FACTS", "STRING_FACTS", "VERSION_FACTS", "Artifact", "Condition", "ContainerdPin",
    "Distro", "FsEntry", "Gpu", "KernelThreshold", "Kubernetes", "Matrix", "MatrixError", "Release", "Rule",
    "Shiftfs", "compile_bundled", "compiled_path", "compiled_path_for", "default_path", "diff", "load",
    "load_compiled", "parse_version", "read_raw", "schema_path",
]
