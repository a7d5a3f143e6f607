"""Why a node's preflight pod produced no report: a pure function of Kubernetes API objects.

`nodecheck k8s scan` never leaves a silent gap: every node whose pod did not hand back a
report gets a row whose reason is read from what the API says about that pod, in the
order `kubectl describe pod` would make a person look: the pod's own status (phase,
reason, conditions, container states), then the newest warning event about it, then the
node it was bound to (a NotReady node never starts a pod), then the Job that owns it
(a Job that could not create its pod says so only in its own events).

Input objects are plain dicts in the API's JSON shape (camelCase, as `kubectl get -o json`
prints them), so the function is tested on objects captured from a real API server.
Nothing here guesses: a pod in a state this does not recognise is reported with its phase
and whatever the API said, not with an invented cause.
"""

from __future__ import annotations

from dataclasses import dataclass

# Error kinds (nodecheck.report/v1 `error.kind`) this module can return.
UNSCHEDULABLE = "unschedulable"  # the scheduler found no fit (taint, selector, resources)
NOT_STARTED = "not-started"  # bound to a node (or never created) but its containers never ran
POD_FAILED = "pod-failed"  # the container ran and failed: OOMKilled, evicted, crashed
POD_DELETED = "pod-deleted"  # the pod was deleted (or is being deleted) before it reported
TIMEOUT = "timeout"  # still running when the scan's --timeout expired
API_ERROR = "api-error"  # the API server could not be read for this node

KINDS = (UNSCHEDULABLE, NOT_STARTED, POD_FAILED, POD_DELETED, TIMEOUT, API_ERROR)


@dataclass(frozen=True)
class Diagnosis:
    kind: str
    message: str


def _meta(obj: dict | None) -> dict:
    return (obj or {}).get("metadata") or {}


def _status(obj: dict | None) -> dict:
    return (obj or {}).get("status") or {}


def _condition(obj: dict | None, ctype: str) -> dict | None:
    for c in _status(obj).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def _event_time(ev: dict) -> str:
    # core/v1 Events fill some of these depending on who wrote them (the scheduler writes
    # eventTime + series, the kubelet lastTimestamp); ISO 8601 strings sort as times.
    series = ev.get("series") or {}
    return (series.get("lastObservedTime") or ev.get("lastTimestamp") or ev.get("eventTime")
            or _meta(ev).get("creationTimestamp") or "")


def events_about(obj: dict | None, events: list[dict], kind: str) -> list[dict]:
    """The events whose involvedObject is `obj` (by uid, else by kind+name), newest first."""
    if not obj:
        return []
    uid, name = _meta(obj).get("uid"), _meta(obj).get("name")
    out = []
    for ev in events or []:
        io = ev.get("involvedObject") or {}
        if io.get("kind") != kind:
            continue
        if (uid and io.get("uid") == uid) or (not io.get("uid") and io.get("name") == name):
            out.append(ev)
    return sorted(out, key=_event_time, reverse=True)


def _newest_warning(evs: list[dict]) -> dict | None:
    for ev in evs:
        if ev.get("type") == "Warning":
            return ev
    return None


def _ev_text(ev: dict) -> str:
    return f"{ev.get('reason')}: {' '.join(str(ev.get('message') or '').split())}"


def node_not_ready(node: dict | None) -> str | None:
    """`Ready=<status> (<reason>: <message>)` when the node is not Ready, else None."""
    if node is None:
        return None
    c = _condition(node, "Ready")
    if c is None:
        return "has no Ready condition (its kubelet never reported)"
    if c.get("status") == "True":
        return None
    why = c.get("reason") or "no reason given"
    msg = " ".join(str(c.get("message") or "").split())
    return f"Ready={c.get('status')} ({why}{': ' + msg if msg else ''})"


def _tolerates(tol: dict, taint: dict) -> bool:
    # The API's rule (core/v1 Toleration.ToleratesTaint): an empty key with Exists matches
    # every taint; an empty effect matches every effect; Exists ignores the value.
    if tol.get("effect") and tol.get("effect") != taint.get("effect"):
        return False
    if not tol.get("key"):
        return tol.get("operator") == "Exists"
    if tol.get("key") != taint.get("key"):
        return False
    if tol.get("operator") == "Exists":
        return True
    return (tol.get("value") or "") == (taint.get("value") or "")


def untolerated_taints(pod: dict | None, node: dict | None) -> list[str]:
    """The node's scheduling taints (NoSchedule, NoExecute) the pod does not tolerate, as
    `key=value:Effect`. The scheduler's own message counts them but (since 1.3x) does not name them."""
    tols = ((pod or {}).get("spec") or {}).get("tolerations") or []
    out = []
    for t in ((node or {}).get("spec") or {}).get("taints") or []:
        if t.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates(tol, t) for tol in tols):
            out.append(f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}")
    return out


def _container_state(pod: dict, name: str = "scan") -> tuple[str, dict] | None:
    st = _status(pod)
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        if cs.get("name") == name:
            state = cs.get("state") or {}
            for k in ("terminated", "waiting", "running"):
                if k in state:
                    return k, state[k] or {}
    return None


def diagnose(*, node_name: str, pod: dict | None, events: list[dict], node: dict | None,
             job: dict | None = None, pod_seen: dict | None = None, container: str = "scan",
             timeout_s: float | None = None) -> Diagnosis:
    """Why `pod` (the preflight pod for `node_name`, or None when there is none now) gave no report.

    `pod_seen` is the last state of a pod this scan saw earlier that is gone now (deleted).
    """
    not_ready = node_not_ready(node)
    node_note = f"; node {node_name} is {not_ready}" if not_ready else ""
    if node is None:
        node_note = f"; node {node_name} no longer exists"

    if pod is None:
        if pod_seen is not None:
            m = _meta(pod_seen)
            phase = _status(pod_seen).get("phase") or "unknown phase"
            return Diagnosis(POD_DELETED, f"pod {m.get('name')} was deleted before it reported "
                                          f"(last seen {phase}){_job_note(job)}{node_note}")
        if job is not None:
            ev = _newest_warning(events_about(job, events, "Job"))
            if ev is not None:
                return Diagnosis(NOT_STARTED, f"job {_meta(job).get('name')} created no pod: {_ev_text(ev)}")
            failed = _condition(job, "Failed")
            if failed and failed.get("status") == "True":
                return Diagnosis(POD_FAILED, f"job {_meta(job).get('name')} failed with no pod left: "
                                             f"{failed.get('reason')}: {failed.get('message')}")
        return Diagnosis(NOT_STARTED, f"no preflight pod was created for this node{_job_note(job)}{node_note}")

    name = _meta(pod).get("name")
    st = _status(pod)
    phase = st.get("phase") or "Unknown"
    evs = events_about(pod, events, "Pod")
    warn = _newest_warning(evs)

    if _meta(pod).get("deletionTimestamp"):
        return Diagnosis(POD_DELETED, f"pod {name} is being deleted (since {_meta(pod)['deletionTimestamp']}) "
                                      f"before it reported{node_note}")

    if phase == "Failed":
        if st.get("reason"):  # Evicted, NodeAffinity, OutOfcpu, DeadlineExceeded, ...
            return Diagnosis(POD_FAILED, f"pod {name} failed: {st['reason']}: {' '.join(str(st.get('message') or '').split())}".rstrip(": "))
        cst = _container_state(pod, container)
        if cst and cst[0] == "terminated":
            t = cst[1]
            why = t.get("reason") or "Error"
            text = f"pod {name}: container {container} {why} (exit {t.get('exitCode')})"
            if why == "OOMKilled":
                text += " : it ran out of its memory limit"
            msg = " ".join(str(t.get("message") or "").split())
            return Diagnosis(POD_FAILED, text + (f": {msg[-300:]}" if msg else ""))
        return Diagnosis(POD_FAILED, f"pod {name} failed" + (f": {_ev_text(warn)}" if warn else ""))

    if phase == "Succeeded":
        # Reached only when its log held no report (the caller says what was wrong with it).
        return Diagnosis(POD_FAILED, f"pod {name} succeeded but left no report")

    if phase == "Running":
        return Diagnosis(TIMEOUT, f"pod {name} was still running when the scan's timeout"
                                  f"{f' ({timeout_s:g}s)' if timeout_s else ''} expired{node_note}")

    # Pending (or Unknown): not scheduled, or scheduled and not started.
    sched = _condition(pod, "PodScheduled")
    bound = (pod.get("spec") or {}).get("nodeName")
    if not bound:
        if sched and sched.get("status") == "False":
            ev = next((e for e in evs if e.get("reason") == "FailedScheduling"), None)
            msg = ev.get("message") if ev else sched.get("message")
            reason = sched.get("reason") or "Unschedulable"
            taints = untolerated_taints(pod, node)
            taint_note = (f"; node {node_name} has taints the pod does not tolerate: {', '.join(taints)}"
                          if taints else "")
            return Diagnosis(UNSCHEDULABLE, f"pod {name} {reason}: {' '.join(str(msg or '').split())}"
                                            f"{taint_note}{node_note}")
        return Diagnosis(NOT_STARTED, f"pod {name} was never scheduled (no scheduler decision yet)"
                                      f"{f': {_ev_text(warn)}' if warn else ''}{node_note}")
    cst = _container_state(pod, container)
    if cst and cst[0] == "waiting":
        w = cst[1]
        msg = " ".join(str(w.get("message") or "").split())
        return Diagnosis(NOT_STARTED, f"pod {name} on {bound}: container {container} waiting: "
                                      f"{w.get('reason') or 'unknown reason'}{': ' + msg[-300:] if msg else ''}")
    if warn is not None:  # FailedMount (hostPath type check), FailedCreatePodSandBox, ...
        return Diagnosis(NOT_STARTED, f"pod {name} on {bound} not started: {_ev_text(warn)}{node_note}")
    if not_ready:
        return Diagnosis(NOT_STARTED, f"pod {name} was bound to {bound} but never started: node {bound} is "
                                      f"{not_ready}")
    if node is None:
        return Diagnosis(NOT_STARTED, f"pod {name} was bound to {bound} but never started{node_note}")
    return Diagnosis(NOT_STARTED, f"pod {name} was bound to {bound} but its kubelet had not started it "
                                  f"(no container status, no event) within the timeout")


def _job_note(job: dict | None) -> str:
    if not job:
        return ""
    for ctype in ("Failed", "Complete"):
        c = _condition(job, ctype)
        if c and c.get("status") == "True":
            return f"; job {_meta(job).get('name')} {ctype}: {c.get('reason')}"
    return ""
