"""Host keys during `nodecheck install`: the same policy as `nodecheck scan`.

ansible-runner sets ANSIBLE_HOST_KEY_CHECKING=False unless told otherwise, which makes
Ansible's ssh connection pass `-o StrictHostKeyChecking=no`: a changed key would only warn
and the play would run. So the install run sets host key checking on and puts its own
StrictHostKeyChecking first in the ssh arguments (OpenSSH takes the first value it sees,
so an inventory's `ansible_ssh_common_args: -o StrictHostKeyChecking=no` cannot weaken it):

- `yes` by default: a host whose key is not in known_hosts fails (host-key-unknown);
- `accept-new` with --accept-new-host-keys: a new host's key is recorded, like scan's flag;
- a changed key fails either way (host-key-mismatch), and so does a key marked `@revoked`
  in known_hosts (OpenSSH refuses it; its "REVOKED HOST KEY" words are read as a mismatch).
  `@cert-authority` lines are OpenSSH's to honour, per host.
"""

from __future__ import annotations

import os
import shlex

# Ansible's own default ssh_args, kept so connection reuse still works.
DEFAULT_SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=60s"


def ssh_env(*, accept_new: bool, known_hosts: str | None = None, environ=None) -> dict[str, str]:
    """The environment that makes the install run verify host keys (see the module doc)."""
    environ = os.environ if environ is None else environ
    first = ["-o", f"StrictHostKeyChecking={'accept-new' if accept_new else 'yes'}"]
    if known_hosts:
        first += ["-o", f"UserKnownHostsFile={known_hosts}"]
    # Ansible splits ssh_args with shlex: quote what we add, keep the rest as the user wrote it.
    rest = environ.get("ANSIBLE_SSH_ARGS") or DEFAULT_SSH_ARGS
    return {
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": " ".join(shlex.quote(a) for a in first) + " " + rest,
    }


def policy(accept_new: bool, known_hosts: str | None = None) -> str:
    """One line for the plan: how host keys are checked in this run."""
    where = known_hosts or "~/.ssh/known_hosts (or the inventory's UserKnownHostsFile)"
    if accept_new:
        return (f"Host keys: verified against {where}; keys of new hosts are accepted and recorded "
                "(--accept-new-host-keys); a changed key fails the host.")
    return (f"Host keys: verified against {where}; an unknown key fails the host "
            "(--accept-new-host-keys trusts new hosts); a changed key always fails it.")


# OpenSSH's own messages (sshconnect.c), as Ansible passes them on in the unreachable result.
_MISMATCH = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "has changed and you have requested strict checking",
             "HOST KEY HAS CHANGED",
             # A key under @revoked in known_hosts: refused like a changed key (scan says the same),
             # though OpenSSH ends this one with "Host key verification failed." too.
             "REVOKED HOST KEY DETECTED", "is marked as revoked")
_UNKNOWN = ("host key is known for", "Host key verification failed")
_AUTH = ("Permission denied (", "Too many authentication failures")


def classify_unreachable(message: str) -> str:
    """The scan's vocabulary for why a host could not be reached: host-key-mismatch,
    host-key-unknown, auth-failed or unreachable. A pure function of the message text."""
    text = message or ""
    if any(m in text for m in _MISMATCH):
        return "host-key-mismatch"
    if any(m in text for m in _UNKNOWN):
        return "host-key-unknown"
    if any(m in text for m in _AUTH):
        return "auth-failed"
    return "unreachable"
