"""Fixtures shared by every test module. Kept small: each lab lives in its own package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def k8s_cluster():
    """One real control plane for the session (tests/k8slab/cluster.py). Never skips: missing
    binaries are built by tests/k8slab/build.sh, and a failed build or start fails the test."""
    from tests.k8slab.cluster import start_cluster

    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
