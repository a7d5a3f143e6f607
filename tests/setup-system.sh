#!/bin/sh
# System packages the tests use for real (shellcheck, dash, busybox, sshd, debootstrap,
# dpkg-dev; containerd, runc, CNI plugins, buildah, gcc for the k8s lab's real node; rsync,
# kmod, fuse3 so fleet-lab hosts, which run on this machine's tools, have what Sysbox needs,
# sudo for the --become lab test, strace to count the probe's execs).
# Installed only when missing and only as root; without root the tests that need them
# skip with a reason.
set -eu
need=""
for pair in shellcheck:shellcheck busybox:busybox dash:dash sshd:openssh-server \
  ssh:openssh-client debootstrap:debootstrap dpkg-scanpackages:dpkg-dev ip:iproute2 \
  fakeroot:fakeroot socat:socat containerd:containerd runc:runc buildah:buildah gcc:gcc \
  rsync:rsync modprobe:kmod fusermount3:fuse3 sudo:sudo strace:strace; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need="$need $pkg"
done
# The real kubelet node of the k8s lab (tests/k8slab/node.py): CNI plugins and a static libc for pause.c.
[ -x /usr/lib/cni/bridge ] || need="$need containernetworking-plugins"
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/aarch64-linux-gnu/libc.a ] || need="$need libc6-dev"
[ -n "$need" ] || exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup-system: missing$need (not root: the tests that need them will skip)" >&2
  exit 0
fi
echo "setup-system: installing$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
