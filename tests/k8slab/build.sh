#!/usr/bin/env bash
# Build the Kubernetes lab binaries from the upstream Go modules (the Go module proxy only) and cache
# them by version outside the repository, so a warm machine skips the build entirely.
#
#   tests/k8slab/build.sh            build what is missing, print the bin directory
#   tests/k8slab/build.sh --regen    rewrite our go.mod/go.sum from k8s.io/kubernetes's own go.mod
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every k8s.io/<staging> module with a
# ./staging path, and replace directives only apply in the main module. Our go.mod (tests/k8slab/gomod/)
# requires k8s.io/kubernetes and replaces each staging module with its published v0.<minor>.<patch>.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=${K8S_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.5}     # the etcd k8s.io/kubernetes $K8S_VERSION itself requires
CACHE=${NODECHECK_LAB_CACHE:-/var/cache/nodecheck-lab}
bin="$CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION/bin"
k8s_cmds="kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl"

regen() {
  local mod=$here/gomod/kubernetes kmod staging
  kmod=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  staging_minor="v0.${K8S_VERSION#v1.}"
  (cd "$mod" && rm -f go.mod go.sum && go mod init nodecheck.local/k8slab >/dev/null 2>&1 \
     && go mod edit -require "k8s.io/kubernetes@$K8S_VERSION")
  for staging in $(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$kmod"); do
    (cd "$mod" && go mod edit -replace "$staging=$staging@$staging_minor")
  done
  printf 'package k8slab\n\nimport (\n' > "$mod/tools.go"
  for c in $k8s_cmds; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c" >> "$mod/tools.go"; done
  printf ')\n' >> "$mod/tools.go"
  sed -i '1i //go:build tools\n' "$mod/tools.go"
  (cd "$mod" && go mod tidy -e)
  local emod=$here/gomod/etcd
  (cd "$emod" && rm -f go.mod go.sum && go mod init nodecheck.local/etcdlab >/dev/null 2>&1 \
     && go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
     && printf '//go:build tools\n\npackage etcdlab\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go \
     && go mod tidy -e)
}

if [ "${1:-}" = --regen ]; then regen; exit 0; fi

missing=""
for c in $k8s_cmds etcd; do [ -x "$bin/$c" ] || missing="$missing $c"; done
if [ -z "$missing" ]; then echo "$bin"; exit 0; fi

# Two test runs may ask at once: one builds, the other waits for it and then finds everything there.
mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9
missing=""
for c in $k8s_cmds etcd; do [ -x "$bin/$c" ] || missing="$missing $c"; done
if [ -z "$missing" ]; then echo "$bin"; exit 0; fi
rm -rf "$bin.tmp"
mkdir -p "$bin.tmp"
start=$(date +%s)
ver="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
ver="$ver -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
ver="$ver -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitTreeState=clean"
pkgs=""
for c in $k8s_cmds; do pkgs="$pkgs k8s.io/kubernetes/cmd/$c"; done
echo "building $K8S_VERSION:$k8s_cmds into $bin (a cold machine takes tens of minutes)" >&2
# CGO off: static binaries, and the lab needs no cgo paths (kubelet's cadvisor works without it).
(cd "$here/gomod/kubernetes" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w $ver" -o "$bin.tmp/" $pkgs)
echo "building etcd $ETCD_VERSION" >&2
(cd "$here/gomod/etcd" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o "$bin.tmp/etcd" go.etcd.io/etcd/server/v3)
mkdir -p "$bin"
for f in "$bin.tmp"/*; do mv -f "$f" "$bin/"; done
rmdir "$bin.tmp"
echo "built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
