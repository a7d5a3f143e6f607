#!/bin/sh
# System packages the tests use for real (shellcheck, dash, busybox, sshd, debootstrap,
# dpkg-dev). Installed only when missing and only as root; without root the tests that
# need them skip with a reason.
set -eu
need=""
for pair in shellcheck:shellcheck busybox:busybox dash:dash sshd:openssh-server \
  ssh:openssh-client debootstrap:debootstrap dpkg-scanpackages:dpkg-dev ip:iproute2 \
  fakeroot:fakeroot socat:socat; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need="$need $pkg"
done
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
