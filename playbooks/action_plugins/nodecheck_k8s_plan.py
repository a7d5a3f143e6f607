"""Action plugin: the Kubernetes rollout plan (which Nodes get which labels, and why not).

Runs on the controller only and reads no API itself: the play passes the Node objects it
read with kubernetes.core.k8s_info, this plugin reads the preflight facts of the inventory
hosts from hostvars and calls nodecheck.install.k8s_plan (pure, unit-tested), so
`nodecheck install` shows and the roles apply the same plan. See
../library/nodecheck_k8s_plan.py for the options.
"""

from __future__ import annotations

import os
import sys

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


def _import_plan():
    try:
        import nodecheck  # noqa: F401
    except ImportError:
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if os.path.isfile(os.path.join(repo, "nodecheck", "__init__.py")):
            sys.path.insert(0, repo)
    from nodecheck import matrix
    from nodecheck.install import k8s_plan
    return matrix, k8s_plan


def _bool(v, default):
    if v is None or v == "":
        return default
    if isinstance(v, bool):
        return v
    return str(v).strip().lower() in ("1", "true", "yes", "on")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("hosts", "nodes", "release", "matrix", "sysbox", "fuse", "label_sysbox",
                             "label_fuse", "allow", "installer_image", "mode", "approved"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result["changed"] = False
        args = self._task.args
        try:
            nc_matrix, k8s_plan = _import_plan()
        except ImportError as exc:
            raise AnsibleActionFail(
                f"nodecheck is not importable on the controller ({exc}); run ansible-playbook from "
                "the Python environment where nodecheck is installed (pip install nodecheck[install])") from exc
        hostvars = (task_vars or {}).get("hostvars") or {}
        names = args.get("hosts") or []
        nodes = args.get("nodes") or []
        hosts = k8s_plan.host_inputs(hostvars, names)
        if args.get("mode") == "match":  # uninstall: only which Node is which host
            matches = {}
            errors = []
            infos = [k8s_plan.NodeInfo.from_object(o) for o in nodes]
            for h in hosts:
                node, how = k8s_plan.match_node(h, infos)
                if node is None:
                    errors.append(f"{h.name}: {how}")
                else:
                    matches[h.name] = {"node": node.name, "matched_by": how}
            result.update(matches=matches, errors=errors)
            return result
        try:
            matrix = nc_matrix.load(args.get("matrix") or None)
            rel, why = k8s_plan.choose_release(matrix, args.get("release") or None)
        except Exception as exc:  # a bad matrix or an unknown release stops the play, with the reason
            raise AnsibleActionFail(f"nodecheck k8s plan: {exc}") from exc
        allow = args.get("allow") or ["pass", "warn", "unknown"]
        if isinstance(allow, str):
            allow = [a.strip() for a in allow.split(",") if a.strip()]
        plan = k8s_plan.build_plan(
            hosts, nodes, release=str(rel.version), k8s_release=rel.kubernetes,
            sysbox=_bool(args.get("sysbox"), True), fuse=_bool(args.get("fuse"), True),
            label_sysbox=_bool(args.get("label_sysbox"), True), label_fuse=_bool(args.get("label_fuse"), True),
            allow=allow, installer_image=args.get("installer_image") or None,
            approved=args.get("approved") or None)
        plan.release_why = why
        d = plan.to_dict()
        result["plan"] = d
        result["by_host"] = {a["host"]: a for a in d["nodes"]}
        return result
