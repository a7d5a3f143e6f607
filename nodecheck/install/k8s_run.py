"""`nodecheck install`'s Kubernetes path: playbooks/k8s.yml (and k8s-uninstall.yml) through
ansible-runner, for the inventory hosts whose target kind is kubernetes-node.

Two runs, like the plain-host path:
  1. the plan: k8s.yml with only the preflight and k8s_plan tags (reads the Nodes, changes
     nothing); the plan comes back in the event of the `nodecheck_k8s_plan` task;
  2. the apply: k8s.yml for real (or in check mode), given the plan the operator approved as
     `nodecheck_k8s_approved`, so a cluster that changed in between (a Node deleted, a kubelet
     upgraded) stops the apply before anything is applied.
What was and was not changed is read from the runner events (`summarize`, pure).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from . import InstallError, RunOptions, RunOutcome, _host_results, _run, runner_kwargs
from .k8s_plan import K8sPlan

PLAN_ACTION = "nodecheck_k8s_plan"
PLAYBOOK = "k8s.yml"
UNINSTALL_PLAYBOOK = "k8s-uninstall.yml"


@dataclass
class K8sChange:
    what: str  # "Node n1 labels", "DaemonSet kube-system/fuse-device-plugin-daemonset", ...
    result: str  # changed | unchanged | would change | failed | not applied
    message: str = ""


@dataclass
class K8sRun:
    outcome: RunOutcome
    plan: K8sPlan | None  # what the nodecheck_k8s_plan task decided; None when no plan was made
    error: str | None  # the run-wide failure (API unreachable, a host without Node), one line
    changes: list[K8sChange] = field(default_factory=list)


def collect_plan(events: list[dict]) -> K8sPlan | None:
    for ev in events:
        data = ev.get("event_data") or {}
        if ev.get("event") == "runner_on_ok" and data.get("task_action") == PLAN_ACTION:
            plan = (data.get("res") or {}).get("plan")
            return K8sPlan.from_dict(plan) if isinstance(plan, dict) else None
    return None


def run_error(events: list[dict]) -> str | None:
    """The first failure of a run_once task (it stops every host): the API could not be read, a
    host has no Node, the approved plan changed. Per-host failures are not run-wide."""
    for ev in events:
        data = ev.get("event_data") or {}
        if ev.get("event") != "runner_on_failed" or data.get("ignore_errors"):
            continue
        task = data.get("task", "")
        if task in ("Say why the Nodes could not be read",) or task.startswith("Stop when an inventory host has no Node") \
                or task == "Refuse to apply without an installer image":
            return str((data.get("res") or {}).get("msg") or "").strip()
    return None


# Task names (the roles') -> what they change, for the summary.
_OBJECT_TASKS = {
    "Apply the FUSE device plugin DaemonSet": "DaemonSet kube-system/fuse-device-plugin-daemonset",
    "Delete the FUSE device plugin DaemonSet": "DaemonSet kube-system/fuse-device-plugin-daemonset (delete)",
    "Delete the sysbox-deploy-k8s DaemonSet": "DaemonSet kube-system/sysbox-deploy-k8s (delete)",
    "Apply the sysbox-cleanup-k8s DaemonSet": "DaemonSet kube-system/sysbox-cleanup-k8s",
    "Delete the sysbox-cleanup-k8s DaemonSet": "DaemonSet kube-system/sysbox-cleanup-k8s (delete)",
    "Delete the RuntimeClass, ConfigMap and RBAC": "RuntimeClass sysbox-runc, ConfigMap, RBAC (delete)",
}


def summarize(events: list[dict], *, check: bool) -> list[K8sChange]:
    """Every object and Node label the run touched or tried to, in order (pure)."""
    out: dict[str, K8sChange] = {}
    for ev in events:
        kind = ev.get("event")
        if kind not in ("runner_on_ok", "runner_on_failed"):
            continue
        data = ev.get("event_data") or {}
        task = data.get("task", "")
        res = data.get("res") or {}
        if task.startswith("Apply sysbox-deploy-k8s and the sysbox-runc RuntimeClass"):
            what = "sysbox-deploy-k8s (ServiceAccount, ClusterRole(Binding), ConfigMap, DaemonSet) + RuntimeClass sysbox-runc"
        elif task.startswith("Label the Node") or task.startswith("Remove the sysbox-install"):
            what = f"Node labels of host {data.get('host')}"
        elif task in _OBJECT_TASKS:
            what = _OBJECT_TASKS[task]
        else:
            continue
        if kind == "runner_on_failed":
            out[what] = K8sChange(what, "failed", str(res.get("msg") or "").strip())
        elif what not in out or out[what].result not in ("failed",):
            changed = bool(res.get("changed"))
            out[what] = K8sChange(what, ("would change" if check else "changed") if changed else "unchanged")
    return list(out.values())


def _opts(opts: RunOptions, tags: tuple[str, ...]) -> RunOptions:
    return dataclasses.replace(opts, tags=tags)


def run_plan(inventory: str, pdd: Path, *, hosts: list[str], extravars: dict, opts: RunOptions,
             on_event=None) -> K8sRun:
    kw = runner_kwargs(pdd, PLAYBOOK, inventory, ",".join(hosts), extravars, "k8s-plan", False,
                       _opts(opts, ("k8s_plan",)))
    r, events = _run(kw, on_event)
    results = _host_results(r, events)
    if r.status in ("error", "timeout") and not results:
        raise InstallError(f"the Kubernetes plan run did not start (ansible-runner status {r.status}, rc {r.rc}); "
                           f"see {r.config.artifact_dir}/stdout")
    return K8sRun(RunOutcome(r.status, r.rc, r.config.artifact_dir, results, r.stats), collect_plan(events),
                  run_error(events))


def run_apply(inventory: str, pdd: Path, *, hosts: list[str], extravars: dict, approved: dict, check: bool,
              opts: RunOptions, on_event=None) -> K8sRun:
    ev = {**extravars, "nodecheck_k8s_approved": approved}
    kw = runner_kwargs(pdd, PLAYBOOK, inventory, ",".join(hosts), ev, "k8s-check" if check else "k8s-apply", check,
                       _opts(opts, ()))
    r, events = _run(kw, on_event)
    results = _host_results(r, events)
    if r.status in ("error", "timeout") and not results:
        raise InstallError(f"the Kubernetes apply run did not start (ansible-runner status {r.status}, rc {r.rc}); "
                           f"see {r.config.artifact_dir}/stdout")
    return K8sRun(RunOutcome(r.status, r.rc, r.config.artifact_dir, results, r.stats), collect_plan(events),
                  run_error(events), summarize(events, check=check))


def run_uninstall(inventory: str, pdd: Path, *, hosts: list[str] | None, extravars: dict, check: bool,
                  opts: RunOptions, on_event=None) -> K8sRun:
    kw = runner_kwargs(pdd, UNINSTALL_PLAYBOOK, inventory, ",".join(hosts) if hosts else None, extravars,
                       "k8s-uninstall", check, _opts(opts, ()))
    kw.pop("tags", None)  # k8s-uninstall.yml has no preflight
    r, events = _run(kw, on_event)
    results = _host_results(r, events)
    if r.status in ("error", "timeout") and not results:
        raise InstallError(f"the Kubernetes uninstall run did not start (ansible-runner status {r.status}, rc {r.rc}); "
                           f"see {r.config.artifact_dir}/stdout")
    return K8sRun(RunOutcome(r.status, r.rc, r.config.artifact_dir, results, r.stats), None, run_error(events),
                  summarize(events, check=check))
