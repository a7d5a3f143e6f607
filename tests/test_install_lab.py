"""`nodecheck install` and the roles against real Debian hosts (the install lab).

Hosts are debootstrap'd bookworm trees (cached under /var/cache/nodecheck-lab), each with
its own sshd in its own network, PID and mount namespace; the play runs real apt and dpkg
on them over SSH. Packages come from a local apt repository of stand-ins (see
tests/ansible_lab/repo.py); the sysbox-ce stand-in .deb is served by an HTTP mirror in
the lab's controller namespace and handed to the role by URL/path + SHA256.

Two groups of hosts:
- role hosts, driven by ansible-playbook directly with the preflight switched off, so the
  roles are tested even while the scoring pipeline changes;
- CLI hosts, driven by `nodecheck install` (preflight included); skipped with the reason
  when nodecheck's pipeline cannot score a probe on this checkout.

What a chroot cannot show: systemd is not PID 1 in the hosts, so services are enabled
(systemctl works offline) but not started, and `docker info` is not exercised (no dockerd).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLAYBOOKS = REPO / "playbooks"
BIN = Path(sys.executable).parent
RELEASE = "0.7.1"
# Pretty-printed, as the .deb's config script greps it: with bip and pools present it does not
# need to restart Docker, so existing containers are no obstacle.
DAEMON_JSON = """{
    "bip": "172.20.0.1/16",
    "default-address-pools": [
        {"base": "172.25.0.0/16", "size": 24}
    ]
}
"""
WRONG_SHA = "0" * 64

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, chroot, mounts)"
    for tool in ("debootstrap", "ip", "unshare", "dpkg-deb", "dpkg-scanpackages", "ssh", "ssh-keygen"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (tests/setup-system.sh installs it)"
    if not (BIN / "ansible-playbook").exists():
        return "ansible-playbook is not in this venv"
    r = subprocess.run(["ip", "netns", "add", "ncil-probe"], capture_output=True, text=True)
    if r.returncode:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", "ncil-probe"], capture_output=True)
    return None


_REASON = _skip_reason()
if _REASON:
    pytestmark.append(pytest.mark.skip(reason=_REASON))

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)


def recap(text: str) -> dict[str, dict[str, int]]:
    return {m[0]: dict(ok=int(m[1]), changed=int(m[2]), unreachable=int(m[3]), failed=int(m[4]), skipped=int(m[5]))
            for m in RECAP.findall(text)}


def tree_state(lab, name: str) -> dict[str, tuple]:
    """Every file the host has changed relative to the cached base (its overlay upper dir),
    with mtime and size. Logs of the SSH logins themselves are left out."""
    top = lab.workdir / "hosts" / name / "upper"
    if not top.exists():
        top = lab.hosts[name].root
    state = {}
    for dirpath, dirs, files in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        if rel.startswith(("var/log", "root/.ansible", "proc", "sys", "dev", "run", "tmp")):
            dirs[:] = []
            continue
        for f in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            state[os.path.join(rel, f)] = (st.st_mtime_ns, st.st_size, st.st_mode)
    return state


def diff(before: dict, after: dict) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def in_host(lab, name: str, cmd: str) -> subprocess.CompletedProcess:
    """A command on the host, through its own sshd (the host's mounts and namespaces)."""
    return lab.sh(name, cmd)


@pytest.fixture(scope="module")
def lab():
    sys.path.insert(0, str(REPO / "tests"))
    from ansible_lab import HostSpec, Lab

    from ansible_lab.repo import DOCKER_CLI

    work = Path(tempfile.mkdtemp(prefix="nodecheck-install-lab-"))
    dd = "/etc/nodecheck-lab/docker"
    docker = {"/usr/local/bin/docker": (DOCKER_CLI, 0o755)}
    # `pgrep -x dockerd` must find it: a copy of sleep named dockerd, in the host's PID namespace.
    dockerd = "/bin/sh -c 'cp /bin/sleep /usr/local/sbin/dockerd && exec /usr/local/sbin/dockerd infinity'"
    specs = [
        HostSpec("rgood"),
        HostSpec("rdocker", preinstall=["containerd.io=1.6.28-1", "docker-ce"]),
        HostSpec("rbadpath"),
        HostSpec("rbadurl"),
        HostSpec("rsnap", files={"/snap/bin/docker": "#!/bin/sh\n", "/snap/docker/current/README": "snap\n"}),
        # A running (stand-in) dockerd with a container and no bip/pools in daemon.json:
        # the real .deb's config script would abort half-way.
        HostSpec("rtrap", files={**docker, f"{dd}/containers": "abc123 web runc\n"}, daemons=[dockerd]),
        # sysbox-ce 0.7.0 installed and a container running with sysbox-runc.
        HostSpec("rupgrade", preinstall=["sysbox-ce=0.7.0-0"], daemons=[dockerd],
                 files={**docker, f"{dd}/containers": "c0ffee web sysbox-runc\n", "/etc/docker/daemon.json": DAEMON_JSON}),
        HostSpec("cgood"),
        # Host key policy (its own known_hosts files per test; see the hostkeys fixture).
        HostSpec("ckeys"),
        # A running (stand-in) dockerd and no containers: installing restarts Docker, which the plan says.
        HostSpec("cdocker", files=dict(docker), daemons=[dockerd]),
        # A kubelet (binary + config): a Kubernetes node, never given the plain-host path unless forced.
        HostSpec("ckube", files={"/usr/bin/kubelet": ("#!/bin/sh\necho 'Kubernetes v1.30.2'\n", 0o755),
                                 "/var/lib/kubelet/config.yaml": "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"}),
        # Fails the preflight: a 4.19 kernel (below every Sysbox minimum), seen through the
        # host's own /proc/sys/kernel/osrelease.
        HostSpec("cbad", overlay_files={"/proc/sys/kernel/osrelease": "4.19.0-lab-amd64\n"}),
    ]
    lab = Lab(work, specs, log=lambda m: print(m, file=sys.stderr))
    t0 = time.monotonic()
    try:
        lab.start()
        lab.timings["fixture_start"] = time.monotonic() - t0
        yield lab
    finally:
        lab.stop()
        print(f"\ninstall lab timings: { {k: round(v, 1) for k, v in lab.timings.items()} }", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


def _env(**extra):
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=str(PLAYBOOKS / "ansible.cfg"), PATH=f"{BIN}:{env.get('PATH', '')}",
               ANSIBLE_NOCOLOR="1", NO_COLOR="1", COLUMNS="200", ANSIBLE_HOME=str(REPO / "tests/.cache/ansible-home"))
    env.update(extra)
    return env


def playbook(lab, inventory: Path, *args: str) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    r = subprocess.run(lab.ctl_cmd([str(BIN / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOKS / "site.yml"), *args]),
                       env=_env(), capture_output=True, text=True, timeout=600)
    lab.timings[f"playbook {' '.join(args)[:40]}"] = time.monotonic() - t0
    return r


# -- the roles, driven by ansible-playbook --------------------------------------------

ROLE_HOSTS = ["rgood", "rdocker", "rbadpath", "rbadurl", "rsnap", "rtrap", "rupgrade"]


@pytest.fixture(scope="module")
def roles(lab):
    """check run on rgood, then the real run on every role host, then a second run on rgood."""
    tampered = lab.workdir / "tampered" / lab.pkgs["sysbox_deb"].name
    tampered.parent.mkdir()
    tampered.write_bytes(lab.pkgs["sysbox_deb"].read_bytes() + b"tampered")
    lab.hosts["rbadpath"].spec.hostvars.update(sysbox_deb_path=str(tampered), sysbox_deb_url="")
    lab.hosts["rbadurl"].spec.hostvars.update(sysbox_deb_sha256=WRONG_SHA)
    inv = lab.write_inventory(lab.workdir / "roles.yml", ROLE_HOSTS, group_vars={
        "nodecheck_preflight_enabled": False,  # the roles alone; the CLI tests run the preflight
        "nodecheck_sysbox_release": RELEASE,
        "sysbox_deb_url": lab.mirror_url,
        "sysbox_deb_sha256": lab.pkgs["sysbox_sha256"],
        # The user's explicit host pin: the matrix decides none for 0.7.1 (the Coder docs' pin is
        # for the workspace image of <= 0.5.1), so the role's pin path runs only when asked.
        "containerd_pin_version": "1.5.11-1",
    })
    out = {"before_check": tree_state(lab, "rgood")}
    out["check"] = playbook(lab, inv, "--check", "--diff", "--limit", "rgood")
    out["after_check"] = tree_state(lab, "rgood")
    out["machine_pid_max"] = Path("/proc/sys/kernel/pid_max").read_text()
    out["before"] = {h: tree_state(lab, h) for h in ROLE_HOSTS}
    out["run"] = playbook(lab, inv)
    out["after"] = {h: tree_state(lab, h) for h in ROLE_HOSTS}
    out["forced"] = playbook(lab, inv, "--limit", "rupgrade", "-e", "sysbox_force_upgrade=true")
    out["again"] = playbook(lab, inv, "--limit", "rgood")
    out["check_after_install"] = playbook(lab, inv, "--check", "--limit", "rgood")
    return out


def test_check_mode_changes_nothing(lab, roles):
    r = roles["check"]
    assert r.returncode == 0, r.stdout[-3000:]
    assert recap(r.stdout)["rgood"]["changed"] > 0, "check mode should predict the install's changes"
    assert diff(roles["before_check"], roles["after_check"]) == []


def test_sysbox_installed_services_enabled_sysctls_applied(lab, roles):
    assert recap(roles["run"].stdout)["rgood"]["failed"] == 0, roles["run"].stdout[-4000:]
    q = in_host(lab, "rgood", "dpkg-query -W -f='${db:Status-Abbrev}${Version}' sysbox-ce")
    assert q.stdout.strip() == "ii 0.7.1-0"
    en = in_host(lab, "rgood", "systemctl is-enabled sysbox sysbox-mgr sysbox-fs")
    assert en.stdout.split() == ["enabled", "enabled", "enabled"], en.stdout + en.stderr
    assert in_host(lab, "rgood", "test -x /usr/bin/sysbox-runc && test -d /var/lib/sysboxfs").returncode == 0
    # the package's own sysctl file (postinst) and the role's
    pkg = in_host(lab, "rgood", "cat /lib/sysctl.d/99-sysbox-sysctl.conf").stdout
    role = in_host(lab, "rgood", "cat /etc/sysctl.d/99-sysbox-nodecheck.conf").stdout
    for line in ("kernel.unprivileged_userns_clone = 1", "fs.inotify.max_user_watches = 1048576",
                 "kernel.pid_max = 4194304", "kernel.keys.maxkeys = 20000"):
        assert line in pkg and line in role
    # applied live, to the host's private sysctl files (never this machine's kernel)
    live = in_host(lab, "rgood", "cat /proc/sys/kernel/pid_max /proc/sys/fs/inotify/max_user_watches").stdout.split()
    assert live == ["4194304", "1048576"]
    fixture = next((lab.hosts["rgood"].fixtures).glob("*-pid_max"), None)
    if fixture is not None:  # the write landed in the host's private file, not this machine's kernel
        assert fixture.read_text().strip() == "4194304"
        assert roles["machine_pid_max"] != "4194304\n"
    # the verified .deb stays cached on the host for reruns
    assert in_host(lab, "rgood", f"sha256sum /var/cache/nodecheck/sysbox/{lab.pkgs['sysbox_deb'].name}").stdout.split()[0] \
        == lab.pkgs["sysbox_sha256"]


def test_containerd_held_at_pin_and_apt_keeps_it(lab, roles):
    assert in_host(lab, "rgood", "dpkg-query -W -f='${Version}' containerd.io").stdout == "1.5.11-1"
    assert in_host(lab, "rgood", "apt-mark showhold").stdout.split() == ["containerd.io"]
    pref = in_host(lab, "rgood", "cat /etc/apt/preferences.d/nodecheck-containerd-io").stdout
    assert "Pin: version 1.5.11-1" in pref and "Pin-Priority: 1001" in pref
    policy = in_host(lab, "rgood", "LC_ALL=C apt-cache policy containerd.io").stdout
    assert re.search(r"Candidate: 1\.5\.11-1", policy), policy  # 1.6.28-1 is in the repo, the pin wins
    r = in_host(lab, "rgood", "DEBIAN_FRONTEND=noninteractive apt-get install -y containerd.io; apt-get upgrade -y")
    assert r.returncode == 0, r.stdout + r.stderr
    assert in_host(lab, "rgood", "dpkg-query -W -f='${Version}' containerd.io").stdout == "1.5.11-1"


def test_docker_ce_conflict_is_refused_and_nothing_changes(lab, roles):
    out = roles["run"].stdout
    assert recap(out)["rdocker"]["failed"] == 1
    assert recap(out)["rdocker"]["changed"] == 0
    m = re.search(r"fatal: \[rdocker\].*", out)
    assert m and "Refusing to pin containerd.io to 1.5.11-1" in m[0], out[-3000:]
    assert "docker-ce 5:24.0.7-1~debian.12~bookworm (Depends: containerd.io (>= 1.6.4))" in m[0]
    assert "would remove docker-ce" in m[0]
    v = in_host(lab, "rdocker", "dpkg-query -W -f='${Package} ${Version}\\n' containerd.io docker-ce sysbox-ce 2>/dev/null")
    assert v.stdout.split("\n")[:2] == ["containerd.io 1.6.28-1", "docker-ce 5:24.0.7-1~debian.12~bookworm"]
    assert "sysbox-ce" not in v.stdout
    assert diff(roles["before"]["rdocker"], roles["after"]["rdocker"]) == []


@pytest.mark.parametrize("host, how", [("rbadpath", "tampered file by path"), ("rbadurl", "wrong SHA256 for the URL")])
def test_wrong_checksum_aborts_before_install(lab, roles, host, how):
    out = roles["run"].stdout
    assert recap(out)[host]["failed"] == 1, out[-3000:]
    fatal = re.search(rf"fatal: \[{host}\].*", out)[0]
    assert "checksum" in fatal.lower() or "SHA256 mismatch" in fatal, fatal
    assert in_host(lab, host, "dpkg-query -W sysbox-ce 2>/dev/null").stdout == ""
    assert in_host(lab, host, "ls /var/cache/nodecheck/sysbox/").stdout.strip() == "", f"{how}: unverified .deb left behind"


def test_docker_snap_is_refused(lab, roles):
    out = roles["run"].stdout
    fatal = re.search(r"fatal: \[rsnap\].*", out)[0]
    assert "runs Docker from the snap" in fatal and "Unknown runtime specified sysbox-runc" in fatal
    assert in_host(lab, "rsnap", "dpkg-query -W sysbox-ce 2>/dev/null").stdout == ""


def test_existing_docker_containers_trap_is_reported_not_half_installed(lab, roles):
    out = roles["run"].stdout
    fatal = re.search(r"fatal: \[rtrap\].*", out)[0]
    assert "Docker runs with 1 container(s) and /etc/docker/daemon.json has no" in fatal, fatal
    assert "default-address-pools" in fatal
    assert "cannot proceed due to existing Docker containers" in fatal
    assert in_host(lab, "rtrap", "dpkg-query -W sysbox-ce 2>/dev/null").stdout == ""
    # refused in the checks play: not even the containerd.io pin was applied
    assert diff(roles["before"]["rtrap"], roles["after"]["rtrap"]) == []


def test_upgrade_refused_while_sysbox_containers_run_then_forced(lab, roles):
    out = roles["run"].stdout
    fatal = re.search(r"fatal: \[rupgrade\].*", out)[0]
    assert "sysbox-ce 0.7.0-0 is installed and these containers run with sysbox-runc: /web" in fatal, fatal
    assert diff(roles["before"]["rupgrade"], roles["after"]["rupgrade"]) == []
    forced = roles["forced"]
    assert forced.returncode == 0, forced.stdout[-4000:]
    # upstream's rule: the old package is removed, then the new one installed
    steps = re.findall(r"TASK \[sysbox : (Remove the old sysbox-ce first[^\]]*|Install sysbox-ce [^\]]*)\][^\n]*\n(?:[^\n]*\n)*?(changed|ok|skipping): \[rupgrade\]", forced.stdout)
    assert [s[1] for s in steps] == ["changed", "changed"], steps
    assert in_host(lab, "rupgrade", "dpkg-query -W -f='${Version}' sysbox-ce").stdout == "0.7.1-0"
    # dockerd runs there, so the role read `docker info` and found sysbox-runc
    assert re.search(r"TASK \[sysbox : Fail when sysbox-runc is missing from docker info\][^\n]*\nok: \[rupgrade\]", forced.stdout)


def test_second_run_reports_zero_changes(lab, roles):
    r = roles["again"]
    assert r.returncode == 0, r.stdout[-3000:]
    assert recap(r.stdout)["rgood"]["changed"] == 0, [l for l in r.stdout.splitlines() if l.startswith("changed")]
    c = roles["check_after_install"]
    assert c.returncode == 0 and recap(c.stdout)["rgood"]["changed"] == 0, c.stdout[-3000:]


# -- nodecheck install (preflight + roles through ansible-runner) -------------------------

def _pipeline_problem() -> str | None:
    try:
        from nodecheck import matrix, pipeline, probe

        out = subprocess.run(["sh", "-s", "--", "/"], input=probe.script(), capture_output=True, text=True).stdout
        node = pipeline.node_from_output("self", out, matrix=matrix.load(), target=RELEASE)
        assert node["verdict"] in ("pass", "warn", "fail", "unknown")
    except Exception as exc:  # not landed yet, or broken: say which
        return f"nodecheck's scoring pipeline cannot score a probe yet: {type(exc).__name__}: {exc}"
    return None


def nodecheck_install(lab, inventory: Path, pdd: Path, *args: str) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    r = subprocess.run(lab.ctl_cmd([sys.executable, "-m", "nodecheck.cli", "install", "-i", str(inventory),
                                    "--private-data-dir", str(pdd), *args]),
                       env=_env(), capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, cwd=REPO)
    lab.timings[f"nodecheck install {' '.join(args)[:30]}"] = time.monotonic() - t0
    return r


CLI_HOSTS = ("cgood", "cbad", "cdocker")
ALL_CLI_HOSTS = CLI_HOSTS + ("ckube",)


@pytest.fixture(scope="module")
def cli(lab):
    problem = _pipeline_problem()
    if problem:
        pytest.skip(problem)
    inv = lab.write_inventory(lab.workdir / "cli.yml", list(ALL_CLI_HOSTS))
    deb = ["--sysbox", RELEASE, "--sysbox-deb-url", lab.mirror_url, "--sysbox-deb-sha256", lab.pkgs["sysbox_sha256"],
           "-e", "containerd_pin_version=1.5.11-1"]  # asked for explicitly: the matrix pins no host for 0.7.1
    out = {"before": {h: tree_state(lab, h) for h in ALL_CLI_HOSTS}}
    plain = ["--limit", ",".join(CLI_HOSTS)]
    out["check"] = nodecheck_install(lab, inv, lab.workdir / "pdd-check", "--check", *plain, *deb)
    out["after_check"] = {h: tree_state(lab, h) for h in CLI_HOSTS}
    out["declined"] = on_a_tty(lab, [sys.executable, "-m", "nodecheck.cli", "install", "-i", str(inv),
                                     "--private-data-dir", str(lab.workdir / "pdd-declined"), *plain, *deb], answer="n")
    out["after_declined"] = {h: tree_state(lab, h) for h in CLI_HOSTS}
    # The kubelet host: its plain-host plan (nothing, and why), forced, and a real run. After the
    # plain-host plan a kubelet host goes on to the Kubernetes path (another test's subject:
    # there is no API server here), so only what the plain-host path does to it is looked at.
    out["kube_check"] = nodecheck_install(lab, inv, lab.workdir / "pdd-kube", "--check", "--limit", "ckube", *deb)
    out["forced_check"] = nodecheck_install(lab, inv, lab.workdir / "pdd-forced", "--check", "--limit", "ckube",
                                            "--force-plain-host", *deb)
    out["kube_run"] = nodecheck_install(lab, inv, lab.workdir / "pdd-kube-run", "--yes", "--limit", "ckube", *deb)
    out["after_kube"] = tree_state(lab, "ckube")
    out["run"] = nodecheck_install(lab, inv, lab.workdir / "pdd-run", "--yes", *plain, *deb)
    out["after"] = {h: tree_state(lab, h) for h in CLI_HOSTS}
    out["again"] = nodecheck_install(lab, inv, lab.workdir / "pdd-again", "--yes", "--limit", "cgood", *deb)
    # No --sysbox and no .deb source: the release is the preflight's, the host already has it.
    out["again_no_sysbox"] = nodecheck_install(lab, inv, lab.workdir / "pdd-again2", "--yes", "--limit", "cgood")
    out["check_no_sysbox"] = nodecheck_install(lab, inv, lab.workdir / "pdd-check2", "--check", "--limit", "cgood")
    out["after_again"] = tree_state(lab, "cgood")
    out["pdd"] = lab.workdir
    return out


def on_a_tty(lab, cmd: list[str], answer: str, timeout: float = 300) -> tuple[int, str]:
    """Run cmd with a pseudo-terminal as stdin/stdout; type `answer` at the confirmation prompt."""
    import pty
    import select

    master, slave = pty.openpty()
    p = subprocess.Popen(lab.ctl_cmd(cmd), stdin=slave, stdout=slave, stderr=slave, env=_env(), cwd=REPO,
                         start_new_session=True)
    os.close(slave)
    buf, answered, deadline = b"", False, time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 1.0)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            buf += chunk
            if not answered and b"Proceed?" in buf:
                os.write(master, answer.encode() + b"\n")
                answered = True
        elif p.poll() is not None:
            break
    else:
        p.kill()
    os.close(master)
    return p.wait(timeout=30), buf.decode(errors="replace")


def _runner_recap(pdd: Path, ident: str) -> dict:
    return recap((pdd / "artifacts" / ident / "stdout").read_text())


def _plan_rows(out: str) -> dict[str, str]:
    """The plan table's rows by host (a row's wrapped lines joined)."""
    table = out[out.index("Plan"):]
    rows: dict[str, str] = {}
    last = None
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) < 6:
            if line.startswith(("└", "Host keys")):
                break
            continue
        if cells[1]:
            last = cells[1]
        if last:
            rows[last] = rows.get(last, "") + " " + " ".join(cells[2:])
    return rows


def test_cli_check_changes_nothing(lab, cli):
    r = cli["check"]
    assert r.returncode == 2, r.stdout[-3000:]  # cbad is skipped by the preflight, ckube by its kubelet
    assert "Check mode: nothing was changed" in r.stdout
    for h in CLI_HOSTS:
        assert diff(cli["before"][h], cli["after_check"][h]) == [], h
    assert _runner_recap(cli["pdd"] / "pdd-check", "plan")["cgood"]["changed"] > 0
    assert not (cli["pdd"] / "pdd-check" / "artifacts" / "install").exists()


def test_cli_plan_lists_what_each_host_gets(lab, cli):
    """Before `Proceed?` (and with --check) the plan names per host the package and version
    to install, the pin, the hold, the files written and what is restarted."""
    rows = _plan_rows(cli["check"].stdout)
    good = rows["cgood"]
    for want in ("install sysbox-ce 0.7.1-0", lab.mirror_url.split("/")[-1],
                 "pin containerd.io 1.5.11-1", "hold containerd.io",
                 "write /etc/apt/preferences.d/nodecheck-containerd-io", "write /etc/sysctl.d/99-sysbox-nodecheck.conf",
                 "enable sysbox sysbox-mgr sysbox-fs", "restart sysbox"):
        assert want in " ".join(good.split()), (want, good)
    assert "restart docker" not in good  # no dockerd there
    docker = " ".join(rows["cdocker"].split())
    assert "restart docker" in docker and "refused" in docker and "bip/default-address-pools" in docker, docker
    assert "Host keys: verified against" in cli["check"].stdout and "a changed key always fails" in cli["check"].stdout
    # the same plan is shown before the prompt
    rc, out = cli["declined"]
    shown = out[:out.index("Proceed?")]
    assert "install sysbox-ce 0.7.1-0" in " ".join(shown.split()), shown[-3000:]


def test_cli_check_mode_reports_the_main_changes_as_would_change(lab, cli):
    """Check mode must not skip the .deb fetch, the install, the hold or the services silently."""
    out = (cli["pdd"] / "pdd-check" / "artifacts" / "plan" / "stdout").read_text()
    for task in ("sysbox : Would download the .deb and verify its SHA256 (check mode)",
                 "sysbox : Would install sysbox-ce from the verified .deb (check mode)",
                 "sysbox : Would enable (and start) the Sysbox services (check mode)",
                 "containerd_pin : Would hold the package (check mode, apt-mark hold) containerd.io",
                 "containerd_pin : Install the pinned version containerd.io=1.5.11-1"):
        m = re.search(re.escape(f"TASK [{task}]") + r"[^\n]*\n(?:(?!TASK \[)[^\n]*\n)*?(changed|ok|skipping): \[cgood\]", out)
        assert m and m[1] == "changed", (task, m and m[1])


def test_cli_kubelet_host_never_takes_the_plain_path_unless_forced(lab, cli):
    rows = _plan_rows(cli["kube_check"].stdout)
    kube = " ".join(rows["ckube"].split())
    assert "kubernetes-node" in kube and "skip" in kube and "--force-plain-host" in kube, kube
    assert "kubelet" in kube  # why: the kubelet the preflight found
    assert _runner_recap(cli["pdd"] / "pdd-kube", "plan")["ckube"]["changed"] == 0
    # a real run: the plain-host roles leave the node alone (no .deb, no containerd.io pin)
    assert not (cli["pdd"] / "pdd-kube-run" / "artifacts" / "install").exists()
    assert diff(cli["before"]["ckube"], cli["after_kube"]) == []
    assert in_host(lab, "ckube", "dpkg-query -W sysbox-ce containerd.io 2>/dev/null").stdout == ""
    # forced: the plain-host path is planned
    f = cli["forced_check"]
    forced = " ".join(_plan_rows(f.stdout)["ckube"].split())
    assert f.returncode == 0, f.stdout[-3000:]
    assert "kubernetes-node" in forced and "install sysbox-ce 0.7.1-0" in forced, forced


def test_cli_asks_on_a_tty_and_a_no_changes_nothing(lab, cli):
    rc, out = cli["declined"]
    assert "Proceed?" in out, out[-2000:]
    assert "Nothing changed." in out
    assert rc == 2, out[-2000:]
    assert not (cli["pdd"] / "pdd-declined" / "artifacts" / "install").exists()
    for h in CLI_HOSTS:
        assert diff(cli["after_check"][h], cli["after_declined"][h]) == [], h


def test_cli_installs_passing_hosts_and_leaves_the_failing_one_untouched(lab, cli):
    r = cli["run"]
    assert r.returncode == 2, r.stdout[-4000:]  # cbad skipped: not every selected host ended installed
    plan = r.stdout[r.stdout.index("Plan"):r.stdout.index("Install Sysbox on")]
    assert re.search(r"cbad\s+│\s+fail\s+│\s+docker-host\s+│\s+skip", plan), plan
    m = re.search(r"cgood\s+│\s+(pass|warn|unknown)\s+│\s+docker-host\s+│\s+install\s+│", plan)
    assert m, plan
    if m[1] == "warn":  # the plan says which checks warned
        assert "warnings: " in _plan_rows(r.stdout)["cgood"], plan
    assert "skipping 1: cbad" in r.stdout
    summary = r.stdout[r.stdout.index("Summary"):]
    assert re.search(r"cgood\s+│\s+installed", summary), summary
    assert re.search(r"cbad\s+│\s+skipped \(fail\)", summary), summary
    assert "Artifacts: " in r.stdout and str(cli["pdd"] / "pdd-run" / "artifacts" / "install") in r.stdout
    rec = _runner_recap(cli["pdd"] / "pdd-run", "install")
    assert set(rec) == {"cgood", "cdocker"} and rec["cgood"]["failed"] == 0 and rec["cgood"]["changed"] > 0
    assert rec["cdocker"]["failed"] == 0, r.stdout[-3000:]
    assert in_host(lab, "cgood", "dpkg-query -W -f='${Version}' sysbox-ce").stdout == "0.7.1-0"
    assert in_host(lab, "cbad", "dpkg-query -W sysbox-ce containerd.io 2>/dev/null").stdout == ""
    assert diff(cli["before"]["cbad"], cli["after"]["cbad"]) == []
    # live progress lines came from runner events
    assert re.search(r"cgood\s+changed\s+Install sysbox-ce", r.stdout), r.stdout[-3000:]


@pytest.mark.parametrize("run, pdd", [("again", "pdd-again"), ("again_no_sysbox", "pdd-again2")])
def test_cli_second_run_zero_changes_exit_0(lab, cli, run, pdd):
    """With and without --sysbox (then the release is the preflight's: the one installed)."""
    r = cli[run]
    assert r.returncode == 0, r.stdout[-4000:]
    for ident in ("plan", "install"):
        rec = _runner_recap(cli["pdd"] / pdd, ident)
        assert rec["cgood"]["changed"] == 0 and rec["cgood"]["failed"] == 0, (ident, rec)
    assert re.search(r"cgood\s+│\s+(pass|warn|unknown)\s+│\s+docker-host\s+│\s+up to date", r.stdout), r.stdout[-3000:]
    assert re.search(r"cgood\s+│\s+installed\s+│\s+\d+\s+│\s+0\s+│\s+0", r.stdout), r.stdout[-2000:]
    stdout = (cli["pdd"] / pdd / "artifacts" / "install" / "stdout").read_text()
    assert not re.search(r"^changed: \[cgood\]", stdout, re.M), stdout[-3000:]
    assert in_host(lab, "cgood", "dpkg-query -W -f='${Version}' sysbox-ce").stdout == "0.7.1-0"


def test_cli_check_without_sysbox_on_an_installed_host_changes_nothing(lab, cli):
    r = cli["check_no_sysbox"]
    assert r.returncode == 0, r.stdout[-3000:]
    assert _runner_recap(cli["pdd"] / "pdd-check2", "plan")["cgood"]["changed"] == 0
    row = " ".join(_plan_rows(r.stdout)["cgood"].split())
    assert "up to date" in row, row
    for action in ("install ", "remove ", "pin ", "hold ", "write ", "enable ", "restart "):
        assert action not in row, row
    # Without -e containerd_pin_version the preflight's matrix decision holds: no host pin for 0.7.1.
    plan_out = (cli["pdd"] / "pdd-check2" / "artifacts" / "plan" / "stdout").read_text()
    assert "no containerd.io pin is needed for this release" in plan_out, plan_out[-3000:]


# -- host keys: verified during install exactly as `nodecheck scan` verifies them -------------

@pytest.fixture(scope="module")
def hostkeys(lab):
    problem = _pipeline_problem()
    if problem:
        pytest.skip(problem)
    h = lab.hosts["ckeys"]
    other = lab.workdir / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = lab.workdir / "kh-wrong"
    wrong.write_text(f"{h.addr} " + " ".join(Path(str(other) + ".pub").read_text().split()[:2]) + "\n")
    empty = lab.workdir / "kh-empty"
    empty.write_text("")

    def inv(name: str, known: Path, extra: str = "") -> Path:
        return lab.write_inventory(lab.workdir / f"{name}.yml", ["ckeys"], group_vars={
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={known}{extra}"})

    deb = ["--sysbox", RELEASE, "--sysbox-deb-url", lab.mirror_url, "--sysbox-deb-sha256", lab.pkgs["sysbox_sha256"],
           "-e", "containerd_pin_version=1.5.11-1"]  # asked for explicitly: the matrix pins no host for 0.7.1
    out = {"before": tree_state(lab, "ckeys")}
    # Plain ssh with that file refuses: the baseline the install must match.
    out["ssh"] = subprocess.run(lab.ctl_cmd(["ssh", "-i", str(lab.key), "-o", f"UserKnownHostsFile={wrong}",
                                             "-o", "BatchMode=yes", f"root@{h.addr}", "true"]),
                                capture_output=True, text=True)
    # The inventory even says StrictHostKeyChecking=no: nodecheck install must not be weakened by it.
    bad = inv("kh-mismatch", wrong, " -o StrictHostKeyChecking=no")
    out["mismatch"] = nodecheck_install(lab, bad, lab.workdir / "pdd-kh1", "--check", *deb)
    out["mismatch_accept"] = nodecheck_install(lab, bad, lab.workdir / "pdd-kh2", "--check", "--accept-new-host-keys", *deb)
    new = inv("kh-new", empty)
    out["unknown"] = nodecheck_install(lab, new, lab.workdir / "pdd-kh3", "--check", *deb)
    out["empty_after_unknown"] = empty.read_text()
    out["accept"] = nodecheck_install(lab, new, lab.workdir / "pdd-kh4", "--check", "--accept-new-host-keys", *deb)
    out["empty_after_accept"] = empty.read_text()
    out["after"] = tree_state(lab, "ckeys")
    return out


def _ran_on(pdd: Path, host: str) -> bool:
    stdout = (pdd / "artifacts" / "plan" / "stdout").read_text()
    return bool(re.search(rf"^(ok|changed): \[{host}\]", stdout, re.M))


def test_install_refuses_a_changed_host_key_even_with_accept_new(lab, hostkeys):
    assert hostkeys["ssh"].returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in hostkeys["ssh"].stderr
    for run, pdd in (("mismatch", "pdd-kh1"), ("mismatch_accept", "pdd-kh2")):
        r = hostkeys[run]
        assert r.returncode == 2, (run, r.stdout[-3000:])
        row = " ".join(_plan_rows(r.stdout)["ckeys"].split())
        assert "host-key-mismatch" in row and "skip" in row, (run, row)
        assert not _ran_on(lab.workdir / pdd, "ckeys"), f"{run}: a task ran on a host with a changed key"
    assert "a changed key always fails" in hostkeys["mismatch"].stdout
    assert "keys of new hosts are accepted and recorded" in hostkeys["mismatch_accept"].stdout
    assert diff(hostkeys["before"], hostkeys["after"]) == []


def test_install_unknown_host_key_fails_unless_accept_new_which_records_it(lab, hostkeys):
    r = hostkeys["unknown"]
    assert r.returncode == 2, r.stdout[-3000:]
    assert "host-key-unknown" in _plan_rows(r.stdout)["ckeys"], r.stdout[-3000:]
    assert not _ran_on(lab.workdir / "pdd-kh3", "ckeys")
    assert hostkeys["empty_after_unknown"] == ""
    a = hostkeys["accept"]
    assert a.returncode == 0, a.stdout[-3000:]
    assert _ran_on(lab.workdir / "pdd-kh4", "ckeys")
    h = lab.hosts["ckeys"]
    real = next(line.split()[1:3] for line in lab.known_hosts.read_text().splitlines() if line.startswith(h.addr + " "))
    recorded = [line.split()[-2:] for line in hostkeys["empty_after_accept"].splitlines() if line.strip()]
    assert real in recorded, hostkeys["empty_after_accept"]
