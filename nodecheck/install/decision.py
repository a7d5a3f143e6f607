"""What the install does to one host, decided once from the scan's facts and the matrix.

The preflight (playbooks/action_plugins/nodecheck_preflight.py) computes this and hands it
to the roles as the host fact `nodecheck_install`; the roles act on it instead of deriving
the same knowledge again in Jinja, and the checks (nodecheck/checks/runtime.py) read the same
facts and the same matrix fields, so a rescan after the install agrees with what it did.

  containerd_pin  from the release's matrix entry: the containerd.io version Sysbox needs,
                  where it belongs (`host` or `workspace-image`) and the source saying so.
                  Only a host pin changes the host; a workspace-image pin is reported to the
                  user and left alone (pinning the host's containerd.io does not change the
                  runc inside a workspace image, which is what #544 is about).
  docker_snap     Docker installed as a snap: Sysbox cannot register its runtime there.
  docker_network_preset  daemon.json has bip/default-address-pools as the sysbox-ce
                  package's config script greps them; without them the package restarts
                  Docker and aborts if containers exist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PinDecision:
    package: str
    version: str | None  # what the release needs; None: no pin (e.g. #544 fixed in 0.5.2)
    where: str  # host | workspace-image
    source: str
    note: str = ""

    @property
    def on_host(self) -> bool:
        """Whether the install pins the host's package."""
        return bool(self.version) and self.where == "host"

    @property
    def why(self) -> str:
        """One line for the play's log and the plan: what is decided and on what source."""
        if not self.version:
            return f"no {self.package} pin is needed for this release ({self.source})"
        if self.on_host:
            return f"{self.package}={self.version} is pinned on the host ({self.source})"
        return (f"{self.package}={self.version} belongs in the {self.where.replace('-', ' ')}, not on the host: nothing is pinned "
                f"here; pin it in the image's Dockerfile ({self.source})")

    def to_vars(self) -> dict:
        d = asdict(self)
        d.update(on_host=self.on_host, host_version=self.version if self.on_host else "", why=self.why)
        return d


def pin_for(release) -> PinDecision:
    """The release's containerd.io pin from the matrix (its `containerd_pin` entry)."""
    pin = getattr(release, "containerd_pin", None)
    if pin is None:
        return PinDecision("containerd.io", None, "host", getattr(release, "source", ""), "the matrix has no pin entry")
    return PinDecision(pin.package, pin.version, pin.where, pin.source, pin.note or "")


@dataclass(frozen=True)
class InstallDecision:
    release: str
    containerd_pin: PinDecision
    docker_snap: bool | None
    docker_network_preset: bool | None

    def to_vars(self) -> dict:
        """The `nodecheck_install` host fact (plain data for Ansible)."""
        return {"release": self.release, "containerd_pin": self.containerd_pin.to_vars(),
                "docker_snap": self.docker_snap, "docker_network_preset": self.docker_network_preset}


def decide(facts, release) -> InstallDecision:
    """The install decision for one host (`facts`: nodecheck.facts.Facts) and one matrix release."""
    r = facts.runtimes
    return InstallDecision(str(release.version), pin_for(release), r.docker_snap, r.docker_network_preset)
