"""The lab's reaper process: when the Cluster's owner dies (SIGKILL included) or max_lifetime has
passed, kill every component (tests/lab/reaper.cleanup) and remove the lab's temp dir (etcd's
data alone is tens of MB). It exits quietly when the owner removed the state file (a normal stop).

    python tests/k8slab/reaper.py STATE OWNER_PID OWNER_START DEADLINE [WORKDIR]
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from tests.lab import reaper  # noqa: E402


def main(state_path: str, owner: int, owner_start: str, deadline: float, workdir: str | None) -> None:
    try:
        os.setsid()
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        time.sleep(0.5)
        if not os.path.exists(state_path):
            return
        if reaper._alive(owner, owner_start or None) and time.time() < deadline:
            continue
        try:
            with open(state_path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            return
        reaper.cleanup(state)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            try:
                os.unlink(state_path)
            except OSError:
                pass
        return


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None)
