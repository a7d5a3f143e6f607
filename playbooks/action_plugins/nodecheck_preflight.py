"""Action plugin: run the nodecheck probe on a host and score it with nodecheck's own code.

Everything happens on the controller except one exec: the POSIX probe text is sent over
the play's connection on stdin (`sh -s -- /`), exactly as `nodecheck scan` sends it over
SSH, and its stdout is parsed and scored by `nodecheck.pipeline` (no second
implementation of the checks). See ../library/nodecheck_preflight.py for the options.
"""

from __future__ import annotations

import os
import shlex
import sys

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def _import_nodecheck():
    """nodecheck from the controller's Python, or from the checkout this project sits in."""
    try:
        import nodecheck  # noqa: F401
    except ImportError:
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if os.path.isfile(os.path.join(repo, "nodecheck", "__init__.py")):
            sys.path.insert(0, repo)
    import nodecheck.probe  # noqa: F401  (raises a clear ImportError when absent)
    return nodecheck


def failing_checks(node, ignore) -> list:
    """The fail findings of a NodeReport that are not ignored (the pipeline may already have
    demoted them)."""
    ignored = set(ignore or ())
    return [c for c in node.checks if c.status == "fail" and c.id not in ignored]


def effective_verdict(node, ignore) -> str:
    verdict = node.verdict
    if verdict == "fail" and not failing_checks(node, ignore):
        return "warn"  # every failing check was ignored by the operator
    return verdict


def arch_of(facts) -> str | None:
    """The Debian architecture name of the host, from the probe's facts (uname -m)."""
    machine = facts.kernel.arch if facts is not None else None
    return _ARCH.get(machine, machine) if machine else None


def artifact_from_matrix(matrix, release, arch, distro_id=None, version_id=None) -> dict:
    """{file, sha256, url} of the sysbox-ce .deb for this release, arch and distro, when the
    matrix knows it (0.4.x ships one .deb per distro; from 0.5.0 one generic .deb)."""
    if matrix is None or not release or not arch:
        return {}
    try:
        rel = matrix.release(release)
    except Exception:  # an unknown release: the role then needs explicit sysbox_deb_* variables
        return {}
    art = rel.artifact(arch, distro_id, version_id)
    if art is None:
        return {}
    out = {"file": art.filename, "sha256": art.sha256, "url": art.urls[0] if art.urls else None}
    return {k: v for k, v in out.items() if v}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("target", "ignore", "matrix", "timeout", "root"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result["changed"] = False
        args = self._task.args
        target = args.get("target") or None
        ignore = args.get("ignore") or []
        if isinstance(ignore, str):
            ignore = [i.strip() for i in ignore.split(",") if i.strip()]
        matrix_path = args.get("matrix") or None
        name = (task_vars or {}).get("inventory_hostname", "host")

        try:
            nodecheck = _import_nodecheck()
            from nodecheck import probe
        except ImportError as exc:
            raise AnsibleActionFail(
                f"nodecheck is not importable on the controller ({exc}); run ansible-playbook from "
                "the Python environment where nodecheck is installed (pip install nodecheck[install])"
            ) from exc

        # root: the node's filesystem mounted elsewhere (a pod's /host, a fixture tree), as
        # `nodecheck scan --root`; quoted, never interpolated raw into the command.
        root = args.get("root") or "/"
        from nodecheck.transport import ProbeRun, boundary_of, settle

        nonce = probe.new_nonce()
        res = self._low_level_execute_command("sh -s -- " + shlex.quote(str(root)),
                                              in_data=to_bytes(probe.script(nonce)), sudoable=True)
        # Ansible's connection is this run's transport: its output is settled by the same rules as
        # `nodecheck scan`'s (this run's boundary only, one header, DONE, exit 0).
        run = settle(ProbeRun(stdout=to_text(res.get("stdout", ""), errors="surrogate_or_replace"),
                              stderr=to_text(res.get("stderr", ""), errors="surrogate_or_replace")[-4096:],
                              exit_status=res.get("rc"), boundary=boundary_of(nonce)))
        if run.parsed is not None and run.parsed.version == 0 and run.exit_status not in (0, None):
            # The shell failed before any probe output (no sh, sudo refused): the task fails.
            result["failed"] = True
            result["msg"] = f"the nodecheck probe did not run on {name} ({run.message}): {run.stderr[-500:]}"
            return result

        try:
            from nodecheck import matrix as nc_matrix
            from nodecheck import pipeline
        except ImportError as exc:
            raise AnsibleActionFail(f"this nodecheck has no scoring pipeline yet ({exc})") from exc
        try:
            matrix = nc_matrix.load(matrix_path)
        except Exception as exc:  # a broken matrix file must stop the play, with the reason
            raise AnsibleActionFail(f"cannot load the Sysbox matrix {matrix_path or '(bundled)'}: {exc}") from exc
        # One parse of the probe output: the report node, the install path, the .deb and the
        # install decision all come from the same typed facts (never from the report's dict).
        from nodecheck.facts import gather

        facts = gather(run.parsed) if run.ok else None
        if facts is None:  # not our probe's output, cut short or failed: an error node (unknown)
            node = pipeline.score_run(name, run, matrix=matrix, target=target, ignore=ignore)
        else:
            node = pipeline.score_facts(name, facts, matrix=matrix, target=target, ignore=ignore)
        try:
            from nodecheck.install.decision import decide
            from nodecheck.install.target import UNKNOWN, target_kind
        except ImportError as exc:
            raise AnsibleActionFail(f"this nodecheck cannot tell the install path ({exc})") from exc
        if node.error is not None or facts is None:
            kind, kind_why = UNKNOWN, "the probe output could not be read"
        else:
            tk = target_kind(facts)
            kind, kind_why = tk.kind, tk.why

        verdict = effective_verdict(node, ignore)
        release = target or node.sysbox.target or node.sysbox.recommended
        arch = arch_of(facts)
        distro = facts.distro if facts is not None else None
        try:
            rel = matrix.release(release) if release else None
        except Exception:  # an unknown release: no decision; the roles then need explicit variables
            rel = None
        result.update(
            verdict=verdict,
            report=node.to_dict(),  # Ansible results are JSON: the model becomes its report form here
            failing=[{"id": c.id, "message": c.message, "remediation": c.remediation}
                     for c in failing_checks(node, ignore)],
            sysbox_release=release,
            arch=arch,
            artifact=artifact_from_matrix(matrix, release, arch, distro and distro.id, distro and distro.version_id),
            # What the install does here (the containerd.io pin, the Docker refusals), decided
            # once from these facts and the matrix; the roles act on it (nodecheck_install).
            install=decide(facts, rel).to_vars() if (facts is not None and rel is not None) else {},
            # docker-host | kubernetes-node | unknown: the plain-host roles run only on docker-host.
            target_kind=kind,
            target_kind_why=kind_why,
        )
        return result
