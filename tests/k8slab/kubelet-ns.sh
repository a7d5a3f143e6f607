#!/bin/sh
# Runs as the kubelet's own mount namespace's first process (node.py: unshare --mount --propagation
# unchanged -- sh kubelet-ns.sh SYSCTL_DIR KUBELET ARGS...), then execs the kubelet.
#
# Why: at start the kubelet sets host sysctls it wants (pkg/kubelet/cm setupKernelTunables:
# vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1, ...), or with
# protectKernelDefaults refuses to start when they differ. The lab runs on shared development and CI
# machines where panic-on-oops would take every other job down with one oops, so in this namespace
# only, each of those /proc/sys files is covered by a file of ours holding the value the kubelet
# wants. The host's values are never read or written by the kubelet; everything else (cgroups,
# containerd, pod mounts under the shared root dir) is the real host.
set -eu
dir=$1
shift
# /proc is private to this namespace (the host mounts are private), so these binds stay here.
mount --make-rprivate /proc
for key in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops \
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
  name=$(printf '%s' "$key" | tr / _)
  mount --bind "$dir/$name" "/proc/sys/$key"
done
exec "$@"
