#!/usr/bin/python
# Documentation stub: the work is done by action_plugins/nodecheck_preflight.py on the
# controller; this file only makes `ansible-doc` and ansible-lint know the options.

DOCUMENTATION = r"""
---
module: nodecheck_preflight
short_description: Run the nodecheck probe on a host and score it against the Sysbox matrix
description:
  - Sends nodecheck's POSIX probe over the play's connection in one exec (C(sh -s -- /), the
    script on stdin), then parses and scores the output on the controller with nodecheck's own
    pipeline, the same code as C(nodecheck scan).
  - Never changes the host. Needs nodecheck importable by the controller's Python.
options:
  target:
    description: Sysbox release to score against (e.g. C(0.7.1)); default is the matrix's recommendation.
    type: str
  ignore:
    description: Check ids whose C(fail) is demoted, as with C(nodecheck scan --ignore).
    type: list
    elements: str
    default: []
  matrix:
    description: Path of a matrix file on the controller; default is the bundled matrix.
    type: path
  root:
    description: Directory on the host where the node's root filesystem is (C(nodecheck scan --root)), e.g. C(/host).
    type: str
    default: /
author: nodecheck
"""

EXAMPLES = r"""
- name: Score this host for Sysbox 0.7.1
  nodecheck_preflight:
    target: "0.7.1"
    ignore: [kernel.shiftfs]
  register: preflight
"""

RETURN = r"""
verdict:
  description: pass, warn, fail or unknown (fail demoted to warn when every failing check is ignored).
  type: str
  returned: always
report:
  description: The node as in a nodecheck.report/v1 document (verdict, checks, sysbox).
  type: dict
  returned: always
failing:
  description: The failing checks that were not ignored (id, message, remediation).
  type: list
  returned: always
sysbox_release:
  description: The release scored against.
  type: str
  returned: always
arch:
  description: Debian architecture of the host (amd64, arm64).
  type: str
  returned: always
artifact:
  description: file, sha256 and url of the sysbox-ce .deb for that release and arch, from the matrix.
  type: dict
  returned: always
install:
  description: >-
    What the install does on this host, decided from the scan's facts and the matrix
    (nodecheck/install/decision.py), recorded as the host fact C(nodecheck_install) for the roles.
    C(containerd_pin) (package, version, where C(host) or C(workspace-image), source, note, on_host,
    host_version, why): the containerd_pin role pins C(host_version) only; C(docker_snap) and
    C(docker_network_preset) (bip/default-address-pools as the sysbox-ce package greps them) drive the
    sysbox role's refusals. Empty when the probe could not be read or the release is unknown.
  type: dict
  returned: always
target_kind:
  description: >-
    The install path for the host: C(docker-host), C(kubernetes-node) (a kubelet is installed or
    configured) or C(unknown) (the probe could not tell). The plain-host roles run only on C(docker-host)
    unless C(nodecheck_force_plain_host) is true.
  type: str
  returned: always
target_kind_why:
  description: What the target kind was decided on (the kubelet found, or what could not be read).
  type: str
  returned: always
"""

if __name__ == "__main__":
    raise SystemExit("nodecheck_preflight runs as an action plugin on the controller")
