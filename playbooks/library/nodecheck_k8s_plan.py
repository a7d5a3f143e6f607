#!/usr/bin/python
# Documentation stub: the work is done by action_plugins/nodecheck_k8s_plan.py on the
# controller; this file only makes `ansible-doc` and ansible-lint know the options.

DOCUMENTATION = r"""
---
module: nodecheck_k8s_plan
short_description: Plan which Kubernetes Nodes get the Sysbox and FUSE labels, and why others do not
description:
  - Maps each inventory host to its Node (C(k8s_node_name), the Node name, the
    C(kubernetes.io/hostname) label, or C(ansible_host) as InternalIP), keeps the hosts whose
    preflight verdict is in O(allow), refuses the nodes the release's sysbox-deploy-k8s rejects
    (kubelet minor, container runtime, no installer image) and warns about managed node pools.
  - Pure: reads no API (pass the Node objects in O(nodes)) and changes nothing.
options:
  hosts:
    description: Inventory hosts to plan for (their preflight facts are read from hostvars).
    type: list
    elements: str
    required: true
  nodes:
    description: The Node objects, as kubernetes.core.k8s_info returns them.
    type: list
    elements: dict
    required: true
  release:
    description: Sysbox release; default the newest one whose installer image the matrix knows.
    type: str
  matrix:
    description: Matrix file on the controller; default the bundled matrix.
    type: path
  sysbox:
    description: Plan the sysbox-deploy-k8s rollout (refusals apply).
    type: bool
    default: true
  fuse:
    description: Plan the FUSE device plugin rollout.
    type: bool
    default: true
  label_sysbox:
    description: Set C(sysbox-install=yes).
    type: bool
    default: true
  label_fuse:
    description: Set C(smarter-device-manager=enabled).
    type: bool
    default: true
  allow:
    description: Preflight verdicts that may be labelled.
    type: list
    elements: str
    default: [pass, warn, unknown]
  installer_image:
    description: sysbox-deploy-k8s image instead of the matrix's.
    type: str
  approved:
    description: The C(labelled) map an operator approved; a plan that differs is an error (nothing is applied).
    type: dict
  mode:
    description: C(plan), or C(match) to only map hosts to Nodes (uninstall).
    type: str
    default: plan
author: nodecheck
"""

EXAMPLES = r"""
- name: Plan the rollout
  nodecheck_k8s_plan:
    hosts: "{{ ansible_play_hosts_all }}"
    nodes: "{{ nodes.resources }}"
    release: "0.7.0"
  register: plan
"""

RETURN = r"""
plan:
  description: release, installer_image, nodes (host, node, matched_by, verdict, action, labels, reasons, warnings), errors, labelled.
  type: dict
  returned: mode plan
by_host:
  description: The plan's node entries keyed by inventory host.
  type: dict
  returned: mode plan
matches:
  description: host -> {node, matched_by}.
  type: dict
  returned: mode match
errors:
  description: Hosts with no (or an ambiguous) Node.
  type: list
  returned: mode match
"""
