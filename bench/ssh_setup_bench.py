#!/usr/bin/env python3
"""Controller CPU per host for SSH setup at fleet size: host key lookup and private key load.

Every host of a fleet looks itself up in a known_hosts file that lists the whole fleet, and
authenticates with the same key file. This times, with time.process_time(), what one host
costs the controller for each, at --lines known_hosts lines (plain names, and `ssh-keygen -H`
hashed names), and a key load cached (nodecheck.transport.ssh.load_private_key) against the
uncached paramiko.PKey.from_path every host paid before commit ac6d2f8.

    .venv/bin/python bench/ssh_setup_bench.py [--lines 1000] [--hosts 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import paramiko  # noqa: E402

from nodecheck.transport import ssh  # noqa: E402


def _ip(i: int) -> str:
    return f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"


def known_hosts_text(n: int, hashed: bool, blob: str) -> str:
    lines = []
    for i in range(n):
        name = _ip(i)
        if hashed:
            salt = os.urandom(20)
            mac = hmac.new(salt, name.encode(), hashlib.sha1).digest()
            name = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(mac).decode()}"
        lines.append(f"{name} ssh-ed25519 {blob}\n")
    return "".join(lines)


def per_host_ms(fn, hosts: int) -> float:
    t0 = time.process_time()
    for i in range(hosts):
        fn(i)
    return (time.process_time() - t0) * 1000 / hosts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1000, help="known_hosts lines (the fleet's size)")
    ap.add_argument("--hosts", type=int, default=200, help="hosts looked up / keys loaded per sample")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    raw = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + os.urandom(32)
    blob = base64.b64encode(raw).decode()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for hashed in (False, True):
            path = os.path.join(tmp, f"known_hosts-{'hashed' if hashed else 'plain'}")
            Path(path).write_text(known_hosts_text(a.lines, hashed, blob))

            def lookup(i: int) -> None:
                known = [ssh.read_known_hosts(path)]
                names = [_ip(i % a.lines)]
                ssh.known_key_types(known, names)
                assert ssh.host_key_status(known, names, "ssh-ed25519", raw) == "known"

            ms = per_host_ms(lookup, a.hosts)
            rows.append({"what": f"known_hosts lookup, {a.lines} {'hashed' if hashed else 'plain'} lines",
                         "ms_per_host": round(ms, 3)})
        for ktype, bits in (("rsa", "3072"), ("ed25519", None)):
            key = os.path.join(tmp, f"id_{ktype}")
            subprocess.run(["ssh-keygen", "-q", "-t", ktype, *(["-b", bits] if bits else []), "-N", "", "-f", key],
                           check=True)
            n = max(1, min(a.hosts, 10 if ktype == "rsa" else a.hosts))  # an uncached RSA load is ~0.2 s
            uncached = per_host_ms(lambda i: paramiko.PKey.from_path(key), n)
            ssh.load_private_key(key)  # the first host's load
            cached = per_host_ms(lambda i: ssh.load_private_key(key), a.hosts)
            label = f"{ktype}{' ' + bits if bits else ''} key"
            rows.append({"what": f"{label}: load per host, uncached (PKey.from_path)", "ms_per_host": round(uncached, 3)})
            rows.append({"what": f"{label}: load per host, cached (load_private_key)", "ms_per_host": round(cached, 3)})
    print("| per host, controller CPU | ms |\n|---|---:|")
    for r in rows:
        print(f"| {r['what']} | {r['ms_per_host']} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"lines": a.lines, "hosts": a.hosts, "nproc": os.cpu_count(),
                                            "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
