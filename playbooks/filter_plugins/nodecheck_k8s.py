"""Filter `nodecheck_k8s_error`: one readable line from a kubernetes.core failure message
(the API's Status message, or the connection/TLS/auth cause). The parsing lives in
nodecheck.install.k8s_plan.api_error_line, unit-tested there."""

from __future__ import annotations

import os
import sys


def _line(msg):
    try:
        from nodecheck.install.k8s_plan import api_error_line
    except ImportError:
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        sys.path.insert(0, repo)
        from nodecheck.install.k8s_plan import api_error_line
    return api_error_line(msg)


class FilterModule:
    def filters(self):
        return {"nodecheck_k8s_error": _line}
