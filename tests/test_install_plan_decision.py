"""The plan keeps the preflight's install decision per host (collect_plan, a pure function of
the runner events), so `nodecheck install` can say where a workspace-image pin goes."""

from __future__ import annotations

from nodecheck.install import PREFLIGHT_ACTION, HostResult, collect_plan
from nodecheck.install.decision import PinDecision


def _event(pin: PinDecision) -> dict:
    res = {"verdict": "pass", "sysbox_release": "0.5.1", "target_kind": "docker-host", "target_kind_why": "no kubelet",
           "report": {"checks": []}, "install": {"containerd_pin": pin.to_vars(), "docker_snap": False,
                                                 "docker_network_preset": True}}
    return {"event": "runner_on_ok", "event_data": {"host": "h1", "task_action": PREFLIGHT_ACTION, "res": res}}


def test_workspace_image_pin_is_a_note_for_the_user():
    pin = PinDecision("containerd.io", "1.5.11-1", "workspace-image", "https://github.com/nestybox/sysbox/issues/544")
    plan = collect_plan([_event(pin)], {"h1": HostResult("h1", ok=3)})["h1"]
    assert plan.decision["containerd_pin"]["on_host"] is False
    assert "belongs in the workspace image, not on the host" in plan.pin_note and "issues/544" in plan.pin_note


def test_host_pin_and_no_pin_leave_no_note():
    for pin in (PinDecision("containerd.io", "1.5.11-1", "host", "s"), PinDecision("containerd.io", None, "workspace-image", "s")):
        plan = collect_plan([_event(pin)], {"h1": HostResult("h1", ok=3)})["h1"]
        assert plan.pin_note == ""


def test_plan_table_tells_the_user_where_the_workspace_image_pin_goes():
    import io

    from rich.console import Console

    from nodecheck.commands.install import _plan_table

    def table(pin):
        plan = collect_plan([_event(pin)], {"h1": HostResult("h1", ok=3)})["h1"]
        plan.install = True
        buf = io.StringIO()
        _plan_table(Console(file=buf, width=200, no_color=True), {"h1": plan}, check=True)
        return " ".join(buf.getvalue().split())

    image = table(PinDecision("containerd.io", "1.5.11-1", "workspace-image", "https://github.com/nestybox/sysbox/issues/544"))
    assert "you: containerd.io=1.5.11-1 belongs in the workspace image" in image and "issues/544" in image
    assert "you:" not in table(PinDecision("containerd.io", "1.5.11-1", "host", "s"))
