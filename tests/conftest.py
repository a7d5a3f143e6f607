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


@pytest.fixture(scope="session")
def k8s_real_node(k8s_cluster):
    """A real kubelet + containerd node on this machine joined to `k8s_cluster`, running the images built
    from the project's Dockerfile (tests/k8slab/node.py). Skips only where it cannot run at all (not root,
    packages missing: tests/setup-system.sh installs them); a node that fails to come up fails the test."""
    from tests.k8slab.node import preflight, start_real_node

    why = preflight()
    if why:
        pytest.skip(why)
    node = start_real_node(k8s_cluster, "nodecheck-lab-node")
    try:
        yield node
    finally:
        node.stop()
