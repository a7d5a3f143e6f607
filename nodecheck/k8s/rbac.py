"""Least-privilege RBAC for the identity that runs `nodecheck k8s scan` (`nodecheck k8s render --rbac`).

Two identities, two sets of rights:
- the preflight pod's ServiceAccount (`nodecheck`): none. No binding names it and its token
  is not mounted (render.service_account / pod_spec): the pod reads its node's files and prints.
- the person or CI identity running `nodecheck k8s scan`: exactly the calls nodecheck/k8s/scan.py
  makes, in its namespace only, plus reading Nodes (cluster-scoped, so a ClusterRole):

  | call the scan makes                           | rule                                    |
  |-----------------------------------------------|-----------------------------------------|
  | list Nodes (which to scan, their conditions)  | ClusterRole: nodes get, list            |
  | create one Job per node, delete it afterwards | Role: batch jobs create, delete, get    |
  | poll its pods                                 | Role: pods get, list                    |
  | read each pod's report                        | Role: pods/log get                      |
  | read why a pod did not run                    | Role: events list                       |

  Nothing else: no watch, no deletecollection, no pods create/delete (the Job controller
  creates the pods and the garbage collector deletes them), no secrets, no namespaces.
  `--use-daemonset` needs a subset (pods, pods/log, events, nodes).

The identity running `nodecheck k8s cluster` (`nodecheck k8s render --cluster-rbac -n WORKSPACE_NS`):
exactly the calls nodecheck/k8s/cluster_checks.py makes:

  | call the cluster check makes                                | rule                                    |
  |-------------------------------------------------------------|-----------------------------------------|
  | GET /version (Kubernetes version vs the docs' minimum)      | ClusterRole: nonResourceURLs /version get |
  | dry-run create of the CVM-shaped pod in the workspace NS    | Role in that NS: pods create            |
  | list mutatingwebhookconfigurations (sidecar injectors)      | ClusterRole: list                       |
  | list Nodes (RuntimeClass selector, GPU nodes)               | ClusterRole: nodes list                 |
  | get the sysbox-runc RuntimeClass                            | ClusterRole: runtimeclasses get, resourceNames [sysbox-runc] |

  RBAC has no dry-run-only verb: `pods create` lets this identity create real pods in the
  workspace namespace (PodSecurity still applies). Bind it to a CI identity, or delete the
  binding after the check. The workspace namespace itself is Coder's: it is not rendered.
  /version is also readable by every authenticated identity through the default
  system:public-info-viewer binding; it is listed so the Role still works where that was removed.
"""

from __future__ import annotations

from . import render as R

ROLE = "nodecheck-scanner"
CLUSTER_ROLE = "nodecheck-node-reader"

ROLE_RULES = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "delete", "get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
]
CLUSTER_RULES = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]},
]


CLUSTER_CHECK = "nodecheck-cluster-check"
CLUSTER_CHECK_ROLE_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
]


def cluster_check_rules(runtime_class: str) -> list[dict]:
    return [
        {"nonResourceURLs": ["/version"], "verbs": ["get"]},
        {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["mutatingwebhookconfigurations"],
         "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
        {"apiGroups": ["node.k8s.io"], "resources": ["runtimeclasses"], "verbs": ["get"],
         "resourceNames": [runtime_class]},
    ]


def _meta(name: str, ns: str | None = None) -> dict:
    m = {"name": name, "labels": {"app.kubernetes.io/name": R.APP, "app.kubernetes.io/component": "rbac"}}
    if ns:
        m["namespace"] = ns
    return m


def subjects(users=(), groups=(), service_accounts=()) -> list[dict]:
    """kubectl create rolebinding's --user / --group / --serviceaccount NAMESPACE:NAME."""
    out = [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": u} for u in users]
    out += [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": g} for g in groups]
    for sa in service_accounts:
        ns, sep, name = sa.partition(":")
        if not sep or not ns or not name:
            raise ValueError(f"--serviceaccount takes NAMESPACE:NAME, not {sa!r}")
        out.append({"kind": "ServiceAccount", "name": name, "namespace": ns})
    return out


def documents(ns: str = R.DEFAULT_NAMESPACE, subj: list[dict] | None = None) -> list[dict]:
    """The namespace, the pod's rights-less ServiceAccount, the scanner's Role and ClusterRole,
    and, when there are subjects, the bindings that give them to those subjects."""
    docs = [
        R.namespace(ns),
        R.service_account(ns),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(ROLE, ns),
         "rules": [dict(r) for r in ROLE_RULES]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta(CLUSTER_ROLE),
         "rules": [dict(r) for r in CLUSTER_RULES]},
    ]
    if subj:
        docs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                     "metadata": _meta(ROLE, ns), "subjects": subj,
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE}})
        # Named after the namespace: scanners of two namespaces get two bindings, not one overwritten.
        docs.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                     "metadata": _meta(f"{CLUSTER_ROLE}-{ns}"), "subjects": subj,
                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                 "name": CLUSTER_ROLE}})
    return docs


def cluster_check_documents(ns: str, runtime_class: str, subj: list[dict] | None = None) -> list[dict]:
    """`nodecheck k8s cluster`'s Role (in the workspace namespace) and ClusterRole, and with
    subjects their bindings. No namespace document: the workspace namespace is Coder's."""
    rb = "rbac.authorization.k8s.io"
    docs = [
        {"apiVersion": f"{rb}/v1", "kind": "Role", "metadata": _meta(CLUSTER_CHECK, ns),
         "rules": [dict(r) for r in CLUSTER_CHECK_ROLE_RULES]},
        {"apiVersion": f"{rb}/v1", "kind": "ClusterRole", "metadata": _meta(CLUSTER_CHECK),
         "rules": cluster_check_rules(runtime_class)},
    ]
    if subj:
        docs.append({"apiVersion": f"{rb}/v1", "kind": "RoleBinding", "metadata": _meta(CLUSTER_CHECK, ns),
                     "subjects": subj, "roleRef": {"apiGroup": rb, "kind": "Role", "name": CLUSTER_CHECK}})
        docs.append({"apiVersion": f"{rb}/v1", "kind": "ClusterRoleBinding",
                     "metadata": _meta(f"{CLUSTER_CHECK}-{ns}"), "subjects": subj,
                     "roleRef": {"apiGroup": rb, "kind": "ClusterRole", "name": CLUSTER_CHECK}})
    return docs
