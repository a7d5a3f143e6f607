#!/bin/sh
# nodecheck probe: the only code that runs on a node.
#
# It reads files under a root directory and prints them as delimited sections; it
# decides nothing (the controller parses everything) and it never writes, loads a
# module, creates a cgroup or calls statvfs. POSIX sh only: it runs under dash,
# busybox sh and bash, with no Python on the node, and it is sent over SSH on stdin.
#
# Usage: sh probe.sh [ROOT]        ROOT defaults to /; every path is read under it.
#
# Output: a header line, then sections
#   <B> BEGIN <name> <status> [detail]
#   <content, only when status is ok>
#   <B> END <name> <rc> <cap>
# where <B> is the boundary on the header line. The content is followed by exactly
# one newline that is not part of it. status is ok, ENOENT, ENOTREG (a FIFO or device
# is never opened: a FIFO would block), EISDIR, or OPENERR with the shell's message.
# rc is the exit code of the read (non-zero: the content may be partial); cap is the
# size limit in 4 KiB blocks (content that long was cut), 0 when not capped, N+ when
# the input of a filter was cut (the content is capped whatever its length). Status
# ELOOP: the path could not be resolved inside the root (40 links, or an unreadable link).

# shellcheck disable=SC2034  # B is rewritten by the controller with a per-run nonce
B='@@NODECHECK-__NONCE__@@'
R=${1:-/}
R=${R%/}
# Every file is read with a size cap (in 4 KiB blocks): 1 MiB, and 4 MiB for the
# few big ones (kernel config, dpkg status lines, mountinfo on busy hosts).
CAP=256
BIGCAP=1024
# What a filter (grep, awk, sed) may read of its input: 64 MiB, so a 500 MB single-line
# file never becomes a 500 MB line in a child's memory; input cut there is reported.
INCAP=16384
LC_ALL=C
export LC_ALL
NL='
'
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}

begin() { printf '%s BEGIN %s %s\n' "$B" "$1" "$2"; }
end() { printf '\n%s END %s %s %s\n' "$B" "$1" "${2:-0}" "${3:-0}"; }
empty() { begin "$1" "$2"; end "$1"; }

# check NAME FILE: set ST to ok or a status; opening never blocks because only
# regular files are opened.
check() {
  if [ -e "$2" ]; then
    if [ -d "$2" ]; then ST=EISDIR; return 1; fi
    if [ ! -f "$2" ]; then ST=ENOTREG; return 1; fi
    # Opening costs no fork when it works; the message is fetched only when it fails.
    if { true <"$2"; } 2>/dev/null; then ST=ok; return 0; fi
  elif [ -L "$2" ]; then
    ST=ENOENT_DANGLING
    return 1
  else
    # Missing: if the nearest existing ancestor is a directory we may search, the file
    # really is absent (no fork needed to ask the shell why).
    d=$2
    while :; do
      p=${d%/*}
      [ "$p" = "$d" ] && break
      d=$p
      if [ -z "$d" ] || [ -e "$d" ]; then break; fi
    done
    if [ -z "$d" ] || { [ -d "$d" ] && [ -x "$d" ]; }; then
      ST=ENOENT
      return 1
    fi
  fi
  # The shell's own message tells EACCES (DAC, an LSM, or an untraversable parent) from
  # ENOENT, which `-e` cannot.
  if ! err=$( { true <"$2"; } 2>&1 ); then
    ST="OPENERR $(printf '%s' "$err" | tr '\n' ' ')"
    return 1
  fi
  ST=ok
  return 0
}

# inroot PATH: set RP to where node path PATH lies under $R, every symlink resolved the
# way the node sees it: an absolute target re-rooted under $R, `..` stopped at $R (as
# `distro` and NFD treat a host prefix). Returns 1 after 40 links (ELOOP). Under / it is
# the path itself. One readlink fork per link met; none for plain paths.
inroot() {
  if [ -z "$R" ]; then RP=$1; return 0; fi
  ir_todo=${1#/}; ir_done=; ir_n=0
  while [ -n "$ir_todo" ]; do
    case $ir_todo in
      */*) ir_part=${ir_todo%%/*}; ir_todo=${ir_todo#*/} ;;
      *) ir_part=$ir_todo; ir_todo= ;;
    esac
    case $ir_part in
      '' | .) continue ;;
      ..) ir_done=${ir_done%/*}; continue ;;
    esac
    if [ -L "$R$ir_done/$ir_part" ]; then
      ir_n=$((ir_n + 1))
      [ "$ir_n" -le 40 ] || return 1
      ir_t=$(readlink "$R$ir_done/$ir_part" 2>/dev/null) || return 1
      case $ir_t in /*) ir_done= ;; esac
      ir_todo=${ir_t#/}${ir_todo:+/$ir_todo}
    else
      ir_done=$ir_done/$ir_part
    fi
  done
  RP=$R${ir_done:-/}
}

# rd NAME PATH [CAP]: one file under the root, capped.
rd() {
  if ! inroot "$2"; then
    empty "$1" ELOOP
  elif check "$1" "$RP"; then
    begin "$1" ok
    dd if="$RP" bs=4096 count="${3:-$CAP}" 2>/dev/null
    end "$1" $? "${3:-$CAP}"
  else
    empty "$1" "$ST"
  fi
}

# longer FILE BLOCKS: FILE holds more than BLOCKS 4 KiB blocks (a filter's input was cut).
# dd's own count of what it read past them (LC_ALL=C: "0+0 records in" is nothing), so one
# fork, not a pipe into wc; no count at all (dd could not open it) is not longer, as before.
longer() {
  case $(dd if="$1" bs=4096 skip="$2" count=1 2>&1 >/dev/null) in
    *"0+0 records in"*) return 1 ;;
    *"records in"*) return 0 ;;
  esac
  return 1
}

# filt NAME PATH OUTCAP CMD...: one file under the root, read through a filter (only what a
# parser uses leaves the node), input capped at INCAP and output at OUTCAP blocks. A cap
# printed as N+ says the input itself was cut, so the section is capped whatever its length.
filt() {
  f_name=$1; f_cap=$3
  if ! inroot "$2"; then
    empty "$f_name" ELOOP
    return 1
  fi
  if ! check "$f_name" "$RP"; then
    empty "$f_name" "$ST"
    return 1
  fi
  f_path=$RP
  shift 3
  begin "$f_name" ok
  dd if="$f_path" bs=4096 count="$INCAP" 2>/dev/null | "$@" 2>/dev/null | dd bs=4096 count="$f_cap" 2>/dev/null
  f_rc=$?
  if longer "$f_path" "$INCAP"; then f_cap=$f_cap+; fi
  end "$f_name" "$f_rc" "$f_cap"
}

# lawk ARGS...: awk over lines cut to 4 KiB. mawk's time grows with the square of a line's
# length (a 32 MB line took 64 s); no line a parser uses is that long.
lawk() { cut -c1-4096 | awk "$@"; }

# present PATH: something (a file, a link, a device) is at node path PATH; its parent
# directories are resolved inside the root, the entry itself is not followed.
present() {
  case $1 in
    */*) inroot "${1%/*}" || return 1; set -- "$RP/${1##*/}" ;;
  esac
  [ -e "$1" ] || [ -L "$1" ]
}

# isdir PATH: node path PATH, resolved inside the root, is a directory.
isdir() { inroot "$1" && [ -d "$RP" ]; }

# run NAME CMD...: a command's stdout, capped; status ENOCMD when it is not installed.
run() {
  name=$1
  shift
  if command -v "$1" >/dev/null 2>&1; then
    begin "$name" ok
    "$@" 2>/dev/null | dd bs=4096 count="$CAP" 2>/dev/null
    end "$name" $?
  else
    empty "$name" ENOCMD
  fi
}

printf '%s PROBE 1 root=%s\n' "$B" "${R:-/}"

# Who ran the probe explains EACCES later.
run cmd:id-u id -u
run cmd:uname-r uname -r
run cmd:uname-m uname -m
rd /proc/sys/kernel/osrelease /proc/sys/kernel/osrelease
rd /proc/sys/kernel/arch /proc/sys/kernel/arch

# The release the rest is keyed on: under a root other than /, the root's own proc.
REL=
# At most 256 bytes of it: `read` of a 500 MB single-line file would take minutes.
if [ -n "$R" ] && inroot /proc/sys/kernel/osrelease && [ -f "$RP" ]; then
  REL=$(dd if="$RP" bs=256 count=1 2>/dev/null | { read -r l; printf '%s' "$l"; })
fi
# The release becomes part of paths (/boot/config-$REL): a node's crafted osrelease must not
# steer them elsewhere (../../, /), so anything but a release's characters matches no file.
case $REL in
  *[!A-Za-z0-9._+~-]* | *..* | .* | -*) REL=invalid-release ;;
esac
# Without a root, the running kernel's own: procfs holds uname's release, read with no fork.
if [ -z "$R" ] && [ -z "$REL" ] && [ -f /proc/sys/kernel/osrelease ]; then
  read -r REL </proc/sys/kernel/osrelease 2>/dev/null || REL=
fi
[ -n "$REL" ] || REL=$(uname -r 2>/dev/null)

# Distribution files (the distro library parses them on the controller).
rd /etc/os-release /etc/os-release
rd /usr/lib/os-release /usr/lib/os-release
rd /etc/lsb-release /etc/lsb-release
# The directory is resolved inside the root, so the names listed are the node's own.
if inroot /etc; then
  ETC=$RP
  for f in "$ETC"/*-release "$ETC"/*_version; do
    case $f in
      "$ETC/os-release" | "$ETC/lsb-release" | "$ETC/*-release" | "$ETC/*_version") ;;
      *) rd "/etc/${f##*/}" "/etc/${f##*/}" ;;
    esac
  done
fi

# Kernel config: the first hit of the union of kubeadm's, NFD's and moby's lookup
# orders (RT paths included). Never `modprobe configs`. Misses are printed too, so a
# report can say where it looked.
KCFOUND=
for p in /proc/config.gz "/boot/config-$REL" "/lib/modules/$REL/config" \
  "/usr/lib/modules/$REL/config" "/usr/lib/ostree-boot/config-$REL" \
  "/usr/lib/kernel/config-$REL" "/usr/src/linux-$REL/.config" \
  "/usr/src/linux-rt-$REL/.config" "/usr/src/linux-headers-$REL/.config" \
  "/usr/src/linux-rt-headers-$REL/.config" "/lib/modules/$REL/build/.config" \
  /usr/src/linux/.config; do
  name="kconfig:$p"
  if [ -n "$KCFOUND" ]; then continue; fi
  # Resolved inside the root: /boot/config-X -> /boot/... or ../../.. never reaches the
  # controller's own config.
  case $p in
    *.gz)
      if ! inroot "$p"; then
        empty "$name" ELOOP
      elif ! check "$name" "$RP"; then
        empty "$name" "$ST"
      elif command -v gzip >/dev/null 2>&1; then
        KCFOUND=1
        begin "$name" ok
        # Decompression itself is capped (a gzip bomb stops at BIGCAP blocks: gzip gets
        # SIGPIPE), and a config cut there is reported capped, so it gives unknown.
        gzip -dc <"$RP" 2>/dev/null | dd bs=4096 count="$BIGCAP" 2>/dev/null
        end "$name" $? "$BIGCAP"
      else
        empty "$name" ENOGZIP
      fi
      ;;
    *)
      if filt "$name" "$p" "$BIGCAP" grep '^CONFIG_'; then KCFOUND=1; fi
      ;;
  esac
done

# Modules: loaded, built in, and whether a shiftfs module exists for this kernel.
rd /proc/modules /proc/modules
MODDIR=/lib/modules/$REL
isdir "$MODDIR" || MODDIR=/usr/lib/modules/$REL
rd modules.builtin "$MODDIR/modules.builtin"
if ! inroot "$MODDIR"; then
  empty shiftfs.ko ELOOP
elif [ -d "$RP" ]; then
  begin shiftfs.ko ok
  # find starts at the directory resolved inside the root and follows no link below it (its
  # default), so it never walks the controller's tree. find's status is passed on as the
  # last line: a directory it could not read makes the listing partial (rc 1), as does a
  # listing cut at the cap (the status line is lost).
  { find "$RP" -name 'shiftfs.ko*' 2>/dev/null; printf 'find-rc %s\n' "$?"; } | dd bs=4096 count="$CAP" 2>/dev/null | {
    frc=1
    while IFS= read -r l; do
      case $l in
        'find-rc '*) frc=${l#find-rc } ;;
        *) printf '%s\n' "$MODDIR${l#"$RP"}" ;;
      esac
    done
    exit "$frc"
  }
  end shiftfs.ko $?
else
  empty shiftfs.ko ENOENT
fi

# The host paths Coder's CVM pod mounts (the docs' table: /usr/src, /lib/modules for the
# running kernel, /var/run, /var/lib), resolved inside the root: one line "<kind> <path>",
# kind dir, notdir, absent or eloop. Whether /var/lib is on NFS comes from mountinfo.
begin hostpaths ok
for hp in /usr/src "/lib/modules/$REL" /var/run /var/lib; do
  if ! inroot "$hp"; then printf 'eloop %s\n' "$hp"
  elif [ -d "$RP" ]; then printf 'dir %s\n' "$hp"
  elif [ -e "$RP" ]; then printf 'notdir %s\n' "$hp"
  else printf 'absent %s\n' "$hp"
  fi
done
end hostpaths 0

rd /proc/filesystems /proc/filesystems
# The kernel command line can hold secrets (a LUKS key file, an ip= or iscsi password, a
# cloud-init seed URL with a token): only the LSM, cgroup and user-namespace switches leave
# the node, space-separated on one line. Words after "--" go to init, not the kernel.
# shellcheck disable=SC2016  # an awk program: its $i is awk's
filt /proc/cmdline /proc/cmdline 1 lawk '{ o = ""
  for (i = 1; i <= NF && $i != "--"; i++)
    if ($i ~ /^(selinux|enforcing|apparmor|security|lsm|systemd\.unified_cgroup_hierarchy|systemd\.legacy_systemd_cgroup_controller|cgroup_no_v1|cgroup_enable|user_namespace\.enable|namespace\.unpriv_enable)=/)
      o = o (o == "" ? "" : " ") $i
  print o }' || true
# The host's mount table: our own under /, init's under another root (a pod that
# reads its own mountinfo would see the pod's mounts, not the node's).
if [ -z "$R" ]; then
  rd mountinfo /proc/self/mountinfo "$BIGCAP"
else
  rd mountinfo /proc/1/mountinfo "$BIGCAP"
fi

# SELinux: runtime mode (old and new selinuxfs mount points), boot config.
rd /sys/fs/selinux/enforce /sys/fs/selinux/enforce
rd /selinux/enforce /selinux/enforce
rd /etc/selinux/config /etc/selinux/config

# AppArmor.
rd /sys/module/apparmor/parameters/enabled /sys/module/apparmor/parameters/enabled
rd /sys/kernel/security/lsm /sys/kernel/security/lsm
if isdir /sys/kernel/security/apparmor; then empty apparmorfs ok; else empty apparmorfs ENOENT; fi
rd /etc/apparmor.d/fusermount3 /etc/apparmor.d/fusermount3
# Its local drop-in (the stock profile includes it; an upgrade does not overwrite it) and
# the aa-disable marker (a profile listed there is not loaded at boot).
rd /etc/apparmor.d/local/fusermount3 /etc/apparmor.d/local/fusermount3
rd /etc/apparmor.d/disable/fusermount3 /etc/apparmor.d/disable/fusermount3

# User namespaces.
rd /proc/sys/kernel/unprivileged_userns_clone /proc/sys/kernel/unprivileged_userns_clone
rd /proc/sys/user/max_user_namespaces /proc/sys/user/max_user_namespaces
rd /proc/sys/kernel/apparmor_restrict_unprivileged_userns /proc/sys/kernel/apparmor_restrict_unprivileged_userns

# cgroups: v2 controllers; v1 subsystem table.
rd /sys/fs/cgroup/cgroup.controllers /sys/fs/cgroup/cgroup.controllers
rd /proc/cgroups /proc/cgroups

# PCI: one line per device, "addr vendor class device driver physfn". Built-in
# `read` keeps this to one fork per bound device on hosts with hundreds of them.
# An unreadable devices dir (EACCES as an unprivileged user) is not "no devices"; a FIFO
# planted as an attribute is never opened; a failed read makes the section partial (rc 1).
# Under a root, each device (a link into /sys/devices on a real sysfs) and any attribute
# that is a link are resolved inside the root (one readlink per link), never on the controller.
if ! inroot /sys/bus/pci/devices; then
  empty pci ELOOP
elif [ -d "$RP" ] && { [ ! -r "$RP" ] || [ ! -x "$RP" ]; }; then
  empty pci EACCES
elif [ -d "$RP" ]; then
  PD=$RP
  begin pci ok
  prc=0
  for e in "$PD"/*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    if ! inroot "/sys/bus/pci/devices/${e##*/}"; then prc=1; continue; fi
    d=$RP
    v=-; c=-; dev=-; drv=-; pf=0; nv=0
    for a in vendor class device; do
      # The device ID and the driver are only ever used for NVIDIA GPUs (facts/gpu.py): other
      # vendors' devices cost no fork for them (a real server has 30-150 PCI functions). The
      # same with and without a root, so a pod's sections match a direct run's.
      if [ "$a" = device ]; then
        case $v in *10[dD][eE]*) nv=1 ;; *) continue ;; esac
      fi
      f=$d/$a
      if [ -n "$R" ] && [ -L "$f" ]; then
        if inroot "${f#"$R"}"; then f=$RP; else f=; prc=1; fi
      fi
      if [ "$a" = vendor ] && [ -n "$f" ] && [ ! -e "$f" ]; then continue 2; fi
      if [ -z "$f" ] || [ ! -f "$f" ] || [ ! -r "$f" ]; then prc=1; continue; fi
      if [ -z "$R" ]; then
        case $a in
          vendor) read -r v <"$f" 2>/dev/null || prc=1 ;;
          class) read -r c <"$f" 2>/dev/null || prc=1 ;;
          device) read -r dev <"$f" 2>/dev/null || prc=1 ;;
        esac
      else
        # Under a root an attribute can be any regular file: `read` of a 500 MB single line
        # would take minutes (a byte per syscall), so 64 bytes of it, at one fork each.
        x=$(dd if="$f" bs=64 count=1 2>/dev/null) || prc=1
        x=${x%%"$NL"*}
        case $a in vendor) v=${x:--} ;; class) c=${x:--} ;; device) dev=${x:--} ;; esac
      fi
    done
    if [ "$nv" = 1 ] && [ -L "$d/driver" ]; then
      # shellcheck disable=SC2012  # fallback where readlink is missing; sysfs names are safe
      drv=$(readlink "$d/driver" 2>/dev/null || ls -ld "$d/driver" 2>/dev/null | sed 's/.* -> //')
      drv=${drv##*/}
    fi
    # The name itself, not what a link points at (physfn is a link on a real sysfs).
    if [ -L "$d/physfn" ] || [ -e "$d/physfn" ]; then pf=1; fi
    printf '%s %s %s %s %s %s\n' "${e##*/}" "$v" "$c" "$dev" "${drv:--}" "$pf"
  done
  end pci "$prc"
else
  # Absent only when the nearest existing ancestor could be searched (check's rule).
  check pci "$RP" || true
  empty pci "$ST"
fi

# NVIDIA driver and device nodes.
rd /sys/module/nvidia/version /sys/module/nvidia/version
rd /proc/driver/nvidia/version /proc/driver/nvidia/version
begin dev-nvidia ok
if inroot /dev; then
  for f in "$RP"/nvidia*; do
    if [ -e "$f" ] || [ -L "$f" ]; then printf '/dev/%s\n' "${f##*/}"; fi
  done
fi
end dev-nvidia 0
if isdir /run/nvidia/driver; then empty run-nvidia-driver ok; else empty run-nvidia-driver ENOENT; fi

# Platform: bare metal or VM.
for a in sys_vendor product_name board_vendor bios_vendor chassis_type; do
  rd "dmi:$a" "/sys/devices/virtual/dmi/id/$a"
done
rd /sys/hypervisor/type /sys/hypervisor/type
filt cpuinfo-flags /proc/cpuinfo "$CAP" lawk '/^(flags|Features)[ \t]*:/ { print; exit }' || true

# Packages: only the stanzas of the packages that matter, from dpkg's status file,
# and the same names from rpm when an rpm database exists under the root.
PKGS='docker-ce docker-ce-cli docker.io moby-engine containerd containerd.io cri-o crio kubelet kubeadm sysbox-ce sysbox fuse fuse3 rsync iptables jq snapd'
# shellcheck disable=SC2016  # an awk program: its $2 is awk's
filt dpkg-status /var/lib/dpkg/status "$CAP" lawk -v want=" $PKGS " '
    /^Package: / { keep = index(want, " " $2 " ") > 0 }
    keep && /^(Package|Status|Version|Architecture): / { print }
    /^$/ { if (keep) print ""; keep = 0 }
  ' || true
# rpm is asked only when a database file exists, with an explicit --dbpath: without one
# Debian's rpm would create ~/.rpmdb under the root, and the probe never writes.
RPMDB=
for d in /var/lib/rpm /usr/lib/sysimage/rpm; do
  for f in rpmdb.sqlite Packages Packages.db; do
    # rpm opens $R$RPMDB itself, following links as the controller sees them: so RPMDB is
    # the directory's resolution inside the root (no link left in it).
    if [ -z "$RPMDB" ] && inroot "$d/$f" && [ -f "$RP" ]; then RPMDB=${RP%/*}; RPMDB=${RPMDB#"$R"}; fi
  done
done
if [ -n "$RPMDB" ]; then
  if command -v rpm >/dev/null 2>&1; then
    begin rpm ok
    # shellcheck disable=SC2086  # PKGS is a fixed word list
    rpm --root "${R:-/}" --dbpath "$RPMDB" -q --qf '%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\t%{ARCH}\n' $PKGS 2>/dev/null \
      | grep -v 'is not installed' | dd bs=4096 count="$CAP" 2>/dev/null
    end rpm 0
  else
    empty rpm ENOCMD
  fi
else
  empty rpm ENOENT
fi

# Tools the verdict needs, looked up in the root's own directories (not $PATH, which
# is the prober's); "name path" or "name -".
begin bins ok
for b in docker dockerd containerd crio kubelet rsync iptables fusermount fusermount3 modprobe jq sysbox-runc snap; do
  found=-
  for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin /snap/bin /opt/bin; do
    if present "$dir/$b"; then found=$dir/$b; break; fi
  done
  printf '%s %s\n' "$b" "$found"
done
end bins 0
begin snaps ok
if inroot /snap; then
  for f in "$RP"/*/current; do
    if [ -e "$f" ] || [ -L "$f" ]; then s=${f%/current}; printf '/snap/%s/current\n' "${s##*/}"; fi
  done
fi
if inroot /var/lib/snapd/snaps; then
  for f in "$RP"/*.snap; do
    if [ -e "$f" ] || [ -L "$f" ]; then printf '/var/lib/snapd/snaps/%s\n' "${f##*/}"; fi
  done
fi
end snaps 0

# Runtime configuration. These files are 0600 on many nodes and can hold credentials
# (containerd's registry auth, a splunk-token or proxy password in daemon.json): only
# what a parser reads leaves the node.
# daemon.json is parsed whole (data-root, userns-remap, bip, features, ...), so it is sent
# with the string value of every key that names a credential (auth, password, token,
# secret, credential) and the user:password of every URL replaced; the JSON stays valid.
K='[^"]*'
V='"[^"\\]*\(\\.[^"\\]*\)*"'
RED=
for w in '[Aa][Uu][Tt][Hh]' '[Pp][Aa][Ss][Ss]' '[Tt][Oo][Kk][Ee][Nn]' '[Ss][Ee][Cc][Rr][Ee][Tt]' \
  '[Cc][Rr][Ee][Dd][Ee][Nn][Tt][Ii][Aa][Ll]'; do
  # A key whose value starts on the next line: that line is joined first (N).
  RED="${RED}/\"${K}${w}${K}\"[[:space:]]*:[[:space:]]*\$/N
s/\\(\"${K}${w}${K}\"[[:space:]]*:[[:space:]]*\\)${V}/\\1\"<redacted>\"/g
"
done
filt /etc/docker/daemon.json /etc/docker/daemon.json "$CAP" sed -e "$RED" \
  -e 's|://[^/@"[:space:]]*@|://<redacted>@|g' || true
# containerd's config.toml: its parser reads the top-level `version` only, so only those
# lines (before the first table: registry credentials live in tables) are sent.
filt /etc/containerd/config.toml /etc/containerd/config.toml "$CAP" \
  sed -n '/^[[:space:]]*\[/q; /^[[:space:]]*version[[:space:]]*=/p' || true
# crio.conf is read by no parser: not read. The kubelet's config only has to exist and be
# readable (a kubelet node): its status, no content.
if ! inroot /var/lib/kubelet/config.yaml; then
  empty /var/lib/kubelet/config.yaml ELOOP
elif check /var/lib/kubelet/config.yaml "$RP"; then
  empty /var/lib/kubelet/config.yaml ok
else
  empty /var/lib/kubelet/config.yaml "$ST"
fi
rd /etc/subuid /etc/subuid

printf '%s DONE\n' "$B"
