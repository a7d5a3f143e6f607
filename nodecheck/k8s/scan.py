"""`nodecheck k8s scan`: run the preflight pod on each node through the API and bring back its output.

One Job per node, pinned with required node affinity on `metadata.name` (how the DaemonSet
controller pins its own pods), not one Job of N pods:
- the node -> pod mapping is ours, so a node whose pod never ran gets a row naming *that*
  node and the scheduler's reason; with one N-pod Job spread by anti-affinity, an
  unschedulable pod is "some pod" and the node it was for is unknowable;
- affinity, not `spec.nodeName`: nodeName skips the scheduler, so a taint or a cordon
  would be silently bypassed and no FailedScheduling event would say why a pod waits;
- a Job, not a bare Pod: `activeDeadlineSeconds` stops the pod and `ttlSecondsAfterFinished`
  removes it even when this process is killed before its own cleanup;
- `backoffLimit: 0`: one pod per node per scan; a retry would replace the pod whose status
  says why it failed (OOMKilled, evicted) by a new one that says nothing yet.

The pod runs `nodecheck collect --root /host` (read-only, no API rights); its snapshot is
parsed and scored here, with this process's matrix, like an SSH probe run.
`--use-daemonset NAME` instead reads a running preflight DaemonSet's pods, whose init
container already printed a scored report.

The loop polls (one pod list per second, not a watch) because a poll survives an API
server restart with no resume logic: a failed list is retried until the deadline, and
the pods and Jobs themselves live on in etcd. Events are listed once, at the end, for the
nodes that still have no report.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from . import render as R
from .diagnose import API_ERROR, NOT_STARTED, POD_FAILED, Diagnosis, diagnose

RUN_LABEL = "nodecheck.sysbox.io/scan-run"
NODE_ANNOTATION = "nodecheck.sysbox.io/node"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
COMPONENT = "scan"
MAX_LOG_BYTES = 16 * 1024 * 1024
# Connect/read timeout of one API call: a stopped API server must cost seconds, not minutes.
REQUEST_TIMEOUT = (5, 20)


class ScanError(Exception):
    """The scan could not run at all (no API, forbidden, no namespace): one line for the user."""


class Transient(Exception):
    """An API call failed in a way a retry can fix (connection refused, 5xx, timeout)."""


# --- the API, as plain dicts ---------------------------------------------------------------

class Api:
    """The few calls the scan makes, returning the API's JSON as dicts (no model objects:
    the pure functions in diagnose.py read the same shape `kubectl get -o json` prints)."""

    def __init__(self, api_client):
        from kubernetes import client
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self._down_at: float | None = None  # when a call last failed below HTTP (server down)

    # An API server that has just come back answers 401/403 for a few seconds: its authorizer's
    # RBAC cache (and the authenticator's) is still loading. Measured in the lab: a Forbidden on
    # `list pods` for the scanner's own, bound Role right after a restart. Within this window
    # after a connection failure, 401/403 are retried like a refused connection.
    RESTART_GRACE_S = 30.0

    def _call(self, fn, *args, **kw):
        from kubernetes.client.exceptions import ApiException
        import urllib3
        try:
            resp = fn(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kw)
            return resp.data
        except ApiException as exc:
            if exc.status in (429, 500, 502, 503, 504) or exc.status == 0:
                raise Transient(f"HTTP {exc.status} {exc.reason}") from exc
            if exc.status in (401, 403) and self._down_at is not None and \
                    time.monotonic() - self._down_at < self.RESTART_GRACE_S:
                raise Transient(f"HTTP {exc.status} {exc.reason} from an API server that just came back "
                                f"(its RBAC cache is loading)") from exc
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self._down_at = time.monotonic()
            raise Transient(_short(exc)) from exc

    def _json(self, fn, *args, **kw) -> dict:
        return json.loads(self._call(fn, *args, **kw))

    def list_nodes(self, selector: str | None = None) -> list[dict]:
        kw = {"label_selector": selector} if selector else {}
        return self._json(self.core.list_node, **kw).get("items") or []

    def list_pods(self, ns: str, selector: str | None = None) -> list[dict]:
        kw = {"label_selector": selector} if selector else {}
        return self._json(self.core.list_namespaced_pod, ns, **kw).get("items") or []

    def list_events(self, ns: str) -> list[dict]:
        return self._json(self.core.list_namespaced_event, ns).get("items") or []

    def create_job(self, ns: str, body: dict) -> dict:
        return self._json(self.batch.create_namespaced_job, ns, body)

    def get_job(self, ns: str, name: str) -> dict | None:
        from kubernetes.client.exceptions import ApiException
        try:
            return self._json(self.batch.read_namespaced_job, name, ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def delete_job(self, ns: str, name: str) -> None:
        from kubernetes.client.exceptions import ApiException
        try:
            # Background: the garbage collector deletes the Job's pod too (no pod rights needed).
            self._call(self.batch.delete_namespaced_job, name, ns, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise

    def pod_log(self, ns: str, name: str, container: str) -> str:
        data = self._call(self.core.read_namespaced_pod_log, name, ns, container=container,
                          limit_bytes=MAX_LOG_BYTES)
        return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)


def _short(exc: BaseException) -> str:
    # urllib3's MaxRetryError wraps the useful part ("Connection refused") in a long repr.
    reason = getattr(exc, "reason", None)
    text = str(reason or exc)
    for marker in ("Connection refused", "timed out", "Connection reset", "Name or service not known",
                   "certificate verify failed", "No route to host"):
        if marker in text:
            return marker
    return " ".join(text.split())[:200]


def api_error_text(exc: Exception) -> str:
    """One line for an ApiException: status, reason and the Status message the server sent."""
    status = getattr(exc, "status", None)
    msg = ""
    body = getattr(exc, "body", None)
    if body:
        try:
            msg = json.loads(body).get("message") or ""
        except (ValueError, AttributeError):
            msg = str(body)[:200]
    return f"HTTP {status} {getattr(exc, 'reason', '')}: {msg}".strip().rstrip(":")


# --- what the scan creates -------------------------------------------------------------------

@dataclass(frozen=True)
class ScanOptions:
    namespace: str = R.DEFAULT_NAMESPACE
    image: str = R.DEFAULT_IMAGE
    timeout: float = 180.0
    keep: bool = False
    tolerate_all: bool = True  # like the rendered DaemonSet: tainted nodes are scanned too
    with_: tuple[str, ...] = ()
    daemonset: str | None = None
    poll_s: float = 1.0
    probe_timeout: float = 60.0


def job_for(node: str, index: int, run: str, opts: ScanOptions) -> dict:
    """The Job that scans one node (its name fits the 63-character label limit for any node name)."""
    lab = {**R.labels(COMPONENT), RUN_LABEL: run}
    spec = R.pod_spec([R.scan_container(opts.image, opts.with_)], opts.with_, restart="Never")
    c = spec["containers"][0]
    # collect, not scan: the snapshot is scored here with this process's matrix/--sysbox/--ignore.
    # collect exits 0, or 3 when the probe was cut short (the wrapper maps both to success:
    # the snapshot says what was read).
    c["args"] = ["nodecheck", "collect", "--root", R.HOST, "--node", node,
                 "--timeout", f"{opts.probe_timeout:g}"]
    if not opts.tolerate_all:
        spec["tolerations"] = []
    spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}}
    job_spec = {
        "parallelism": 1, "completions": 1, "backoffLimit": 0,
        # The pod stops by itself if this process dies: the scan's own deadline plus a margin.
        "activeDeadlineSeconds": int(opts.timeout) + 60,
        "template": {"metadata": {"labels": dict(lab), "annotations": {NODE_ANNOTATION: node}},
                     "spec": spec},
    }
    if not opts.keep:
        job_spec["ttlSecondsAfterFinished"] = 600
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"{R.APP}-{run}-{index}", "namespace": opts.namespace,
                         "labels": dict(lab), "annotations": {NODE_ANNOTATION: node}},
            "spec": job_spec}


# --- state --------------------------------------------------------------------------------------

@dataclass
class NodeRun:
    """One node's preflight pod, as this scan has seen it."""

    node: str
    job: str | None = None
    pod: dict | None = None  # the pod as last listed
    pod_seen: dict | None = None  # a pod we saw that is gone now
    log: str | None = None  # the log of a pod that finished
    log_problem: str = ""
    diagnosis: Diagnosis | None = None
    done: bool = False
    state: str = "waiting"

    @property
    def pod_name(self) -> str | None:
        p = self.pod or self.pod_seen
        return ((p or {}).get("metadata") or {}).get("name")


@dataclass
class ScanResult:
    runs: list[NodeRun]
    nodes: dict[str, dict]  # Node objects by name, as listed (latest)
    created_jobs: list[str] = field(default_factory=list)
    cleanup_problem: str = ""  # jobs we could not delete, with the command that will
    api_problems: list[str] = field(default_factory=list)
    run_id: str = ""
    wall_s: float = 0.0


def pod_state(pod: dict | None, container: str = "scan") -> str:
    """A short human state for progress lines."""
    if pod is None:
        return "no pod"
    meta, st = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    phase = st.get("phase") or "Unknown"
    if phase == "Pending":
        if not (pod.get("spec") or {}).get("nodeName"):
            for c in st.get("conditions") or []:
                if c.get("type") == "PodScheduled" and c.get("status") == "False":
                    return f"Pending ({c.get('reason') or 'unscheduled'})"
            return "Pending"
        for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
            w = (cs.get("state") or {}).get("waiting")
            if w:
                return f"Pending ({w.get('reason')})"
        return "Pending (bound)"
    return phase


def _scan_terminated(pod: dict, container: str) -> dict | None:
    st = pod.get("status") or {}
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        if cs.get("name") == container:
            return (cs.get("state") or {}).get("terminated")
    return None


def _created(pod: dict) -> str:
    return (pod.get("metadata") or {}).get("creationTimestamp") or ""


# --- the scan -------------------------------------------------------------------------------------

class Scanner:
    def __init__(self, api: Api, opts: ScanOptions, *, on_state: Callable[[NodeRun], None] | None = None,
                 on_api_problem: Callable[[str], None] | None = None, clock=time.monotonic, sleep=time.sleep):
        self.api, self.opts = api, opts
        self.on_state = on_state or (lambda run: None)
        self.on_api_problem = on_api_problem or (lambda text: None)
        self.clock, self.sleep = clock, sleep
        self.run_id = secrets.token_hex(3)
        self.container = "scan"

    # A call that may fail transiently is retried until the scan's deadline.
    def _retry(self, what: str, fn, *args, deadline: float, problems: list[str]):
        delay = 0.5
        while True:
            try:
                return fn(*args)
            except Transient as exc:
                text = f"{what}: {exc}"
                if not problems or problems[-1] != text:
                    problems.append(text)
                    self.on_api_problem(text + " (retrying)")
                if self.clock() + delay > deadline:
                    raise
                self.sleep(delay)
                delay = min(delay * 2, 4.0)

    def list_nodes(self, selector: str | None, deadline: float) -> list[dict]:
        from kubernetes.client.exceptions import ApiException
        problems: list[str] = []
        try:
            return self._retry("list nodes", self.api.list_nodes, selector, deadline=deadline, problems=problems)
        except Transient as exc:
            raise ScanError(f"cannot reach the API server: {exc}") from exc
        except ApiException as exc:
            raise ScanError(f"cannot list nodes: {api_error_text(exc)}") from exc

    def run(self, node_objs: list[dict], names: list[str]) -> ScanResult:
        """Scan the nodes named `names` (`node_objs` are the Node objects listed for them)."""
        start = self.clock()
        deadline = start + self.opts.timeout
        nodes = {n["metadata"]["name"]: n for n in node_objs}
        runs = {name: NodeRun(name) for name in names}
        result = ScanResult(list(runs.values()), nodes, run_id=self.run_id)
        for name, r in runs.items():
            if name not in nodes:
                r.done, r.state = True, "no such node"
                r.diagnosis = Diagnosis(NOT_STARTED, f"no Node named {name} in the cluster")
        try:
            if self.opts.daemonset:
                self._loop(runs, result, deadline, self._daemonset_pods)
            else:
                self._create_jobs(runs, result, deadline)
                self._loop(runs, result, deadline, self._job_pods)
            self._diagnose_rest(runs, result)
        finally:
            if not self.opts.daemonset and not self.opts.keep:
                self._cleanup(result)
            result.wall_s = self.clock() - start
        return result

    def _create_jobs(self, runs: dict[str, NodeRun], result: ScanResult, deadline: float) -> None:
        from kubernetes.client.exceptions import ApiException
        first = True
        for i, r in enumerate(runs.values()):
            if r.done:
                continue
            was_first, first = first, False
            body = job_for(r.node, i, self.run_id, self.opts)
            name = body["metadata"]["name"]
            try:
                self._retry(f"create job {name}", self.api.create_job, self.opts.namespace, body,
                            deadline=deadline, problems=result.api_problems)
            except Transient:
                r.done, r.state = True, "not created"
                r.diagnosis = Diagnosis(API_ERROR, f"job {name} could not be created: the API server "
                                                   f"did not answer before the timeout ({result.api_problems[-1]})")
                continue
            except ApiException as exc:
                if exc.status == 409:  # a retried create whose first try reached the server
                    pass
                elif exc.status in (401, 403) or (exc.status == 404 and was_first):
                    hint = (f" (namespace {self.opts.namespace} must exist with the nodecheck ServiceAccount: "
                            f"`nodecheck k8s render --rbac | kubectl apply -f -`)" if exc.status == 404 else "")
                    raise ScanError(f"cannot create job {name} in namespace {self.opts.namespace}: "
                                    f"{api_error_text(exc)}{hint}") from exc
                else:
                    r.done, r.state = True, "not created"
                    r.diagnosis = Diagnosis(API_ERROR, f"job {name} could not be created: {api_error_text(exc)}")
                    continue
            r.job = name
            result.created_jobs.append(name)
            r.state = "job created"
            self.on_state(r)

    def _job_pods(self, runs: dict[str, NodeRun]) -> dict[str, list[dict]]:
        by_job = {r.job: r.node for r in runs.values() if r.job}
        out: dict[str, list[dict]] = {}
        for pod in self.api.list_pods(self.opts.namespace, f"{RUN_LABEL}={self.run_id}"):
            job = ((pod.get("metadata") or {}).get("labels") or {}).get(JOB_NAME_LABEL)
            if job in by_job:
                out.setdefault(by_job[job], []).append(pod)
        return out

    def _daemonset_pods(self, runs: dict[str, NodeRun]) -> dict[str, list[dict]]:
        # By owner reference, not by label: needs no right on DaemonSets, and a pod of
        # another workload that happens to carry the same labels is never taken for ours.
        out: dict[str, list[dict]] = {}
        for pod in self.api.list_pods(self.opts.namespace):
            owners = (pod.get("metadata") or {}).get("ownerReferences") or []
            if not any(o.get("kind") == "DaemonSet" and o.get("name") == self.opts.daemonset for o in owners):
                continue
            node = (pod.get("spec") or {}).get("nodeName") or _affinity_node(pod)
            if node in runs:
                out.setdefault(node, []).append(pod)
        return out

    def _loop(self, runs: dict[str, NodeRun], result: ScanResult, deadline: float, pods_of) -> None:
        from kubernetes.client.exceptions import ApiException
        while True:
            pending = [r for r in runs.values() if not r.done]
            if not pending:
                return
            try:
                current = self._retry("list pods", pods_of, runs, deadline=deadline, problems=result.api_problems)
            except Transient:
                return  # the API server stayed away until the deadline: _diagnose_rest says so
            except ApiException as exc:
                raise ScanError(f"cannot list pods in namespace {self.opts.namespace}: {api_error_text(exc)}") from exc
            for r in pending:
                self._observe(r, current.get(r.node) or [], result, deadline)
            if all(r.done for r in runs.values()) or self.clock() >= deadline:
                return
            self.sleep(min(self.opts.poll_s, max(0.0, deadline - self.clock())))

    def _observe(self, r: NodeRun, pods: list[dict], result: ScanResult, deadline: float) -> None:
        before = (r.state, r.done)
        self._update(r, pods, result, deadline)
        if (r.state, r.done) != before:
            self.on_state(r)

    def _update(self, r: NodeRun, pods: list[dict], result: ScanResult, deadline: float) -> None:
        from kubernetes.client.exceptions import ApiException
        live = sorted(pods, key=_created)
        pod = live[-1] if live else None
        if r.pod is not None and (pod is None or pod["metadata"].get("uid") != r.pod["metadata"].get("uid")):
            r.pod_seen = r.pod  # deleted (a DaemonSet recreates it; a Job with backoffLimit 0 does not)
        r.pod = pod
        if pod is None:
            r.state = "pod deleted" if r.pod_seen else "no pod yet"
            if r.pod_seen is not None and not self.opts.daemonset:
                r.done = True
            return
        r.state = pod_state(pod)
        if self.opts.daemonset:
            # The DaemonSet's scan is its init container; the pod then idles, Running.
            term = _scan_terminated(pod, self.container)
            if term is None or r.state == "Terminating":
                return
            if term.get("exitCode") != 0:
                r.state, r.done = f"scan exited {term.get('exitCode')}", True
                return
        else:
            phase = (pod.get("status") or {}).get("phase")
            if phase == "Failed":
                r.done = True  # diagnose() reads why from the pod's status
                return
            if phase != "Succeeded":
                return
        name = pod["metadata"]["name"]
        try:
            r.log = self._retry(f"log of pod {name}", self.api.pod_log, self.opts.namespace, name,
                                self.container, deadline=deadline, problems=result.api_problems)
        except Transient as exc:
            r.log_problem = f"its log could not be read: {exc}"
        except ApiException as exc:
            r.log_problem = f"its log could not be read: {api_error_text(exc)}"
        r.done = True
        r.state = "reported" if r.log is not None else "log unreadable"

    def _diagnose_rest(self, runs: dict[str, NodeRun], result: ScanResult) -> None:
        """Reasons for every node without a report, from the pods', the nodes' and the Jobs' status."""
        from kubernetes.client.exceptions import ApiException
        rest = [r for r in runs.values() if r.diagnosis is None and r.log is None]
        if not rest:
            return
        # A short grace for these reads: the scan's deadline has passed, but the reasons are the point.
        grace = self.clock() + 15
        events, nodes_now = [], None
        try:
            events = self._retry("list events", self.api.list_events, self.opts.namespace,
                                 deadline=grace, problems=result.api_problems)
            nodes_now = {n["metadata"]["name"]: n for n in
                         self._retry("list nodes", self.api.list_nodes, None, deadline=grace,
                                     problems=result.api_problems)}
        except Transient:
            down = result.api_problems[-1] if result.api_problems else "no answer"
            for r in rest:
                r.diagnosis = Diagnosis(API_ERROR, f"the API server was unreachable at the end of the scan "
                                                   f"({down}); last state of its pod: {r.state}")
            return
        except ApiException as exc:
            result.api_problems.append(f"reading events/nodes: {api_error_text(exc)}")
        if nodes_now is not None:
            result.nodes.update(nodes_now)
        for r in rest:
            if r.log_problem:
                r.diagnosis = Diagnosis(POD_FAILED, f"pod {r.pod_name} finished but {r.log_problem}")
                continue
            job = None
            if r.pod is None and r.job:
                try:
                    job = self._retry(f"get job {r.job}", self.api.get_job, self.opts.namespace, r.job,
                                      deadline=grace, problems=result.api_problems)
                except (Transient, ApiException):
                    job = None
            node = (nodes_now if nodes_now is not None else result.nodes).get(r.node)
            if self.opts.daemonset and r.pod is None and r.pod_seen is None:
                # A DaemonSet makes no pod for a node it does not select: nothing else to read.
                r.diagnosis = Diagnosis(NOT_STARTED, f"DaemonSet {self.opts.daemonset} in {self.opts.namespace} has "
                                                     f"no pod on this node (its nodeSelector, affinity or "
                                                     f"tolerations exclude it, or there is no such DaemonSet)")
                continue
            r.diagnosis = diagnose(node_name=r.node, pod=r.pod, events=events, node=node, job=job,
                                   pod_seen=r.pod_seen, container=self.container, timeout_s=self.opts.timeout)

    def _cleanup(self, result: ScanResult) -> None:
        from kubernetes.client.exceptions import ApiException
        left = []
        deadline = self.clock() + 30
        for name in result.created_jobs:
            try:
                self._retry(f"delete job {name}", self.api.delete_job, self.opts.namespace, name,
                            deadline=deadline, problems=result.api_problems)
            except (Transient, ApiException):
                left.append(name)
        if left:
            result.cleanup_problem = (
                f"{len(left)} job(s) could not be deleted; they stop by themselves after "
                f"activeDeadlineSeconds and are removed by their TTL, or now with: kubectl delete jobs "
                f"-n {self.opts.namespace} -l {RUN_LABEL}={self.run_id}")


def _affinity_node(pod: dict) -> str | None:
    """The node a DaemonSet pod is pinned to before it is bound (matchFields metadata.name)."""
    aff = (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
    req = aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in req.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return f["values"][0]
    return None
