#!/usr/bin/env bash
# The end-to-end scenario on kernel WireGuard: boots Debian's kernel (which has the module) under
# qemu (TCG; -nic none), with this host's root file system shared read-only over 9p, and runs
# tests/kernel/scenario.sh inside as root with the mkb-vpn built here (Release; --no-build uses
# the build as it is, e.g. after scripts/test.sh built the solution). Installs qemu-system-x86,
# a Debian kernel image and busybox-static with apt-get when missing.
#
#   sudo tests/kernel/run.sh [--no-build] [--results FILE] [--timeout SECONDS] [--scenario FILE]
#
# Prints each RESULT line of the VM and "N passed, N failed" last; writes "passed N" and
# "failed N" to FILE. A VM that does not boot, times out or reports nothing is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

build=1 summary= vm_timeout=600 scenario=tests/kernel/scenario.sh
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) build=0 ;;
    --results) summary=$2; shift ;;
    --timeout) vm_timeout=$2; shift ;;
    --scenario) scenario=$2; shift ;;   # another script to run in the VM (while developing)
    *) echo "usage: $0 [--no-build] [--results FILE] [--timeout SECONDS] [--scenario FILE]" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "$0: run as root (it installs packages and boots a VM)" >&2; exit 6; }

started=$(date +%s.%N)
elapsed() { awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
passed=0 failed=0
report() {   # name pass|fail detail
  echo "RESULT $*"
  if [ "$2" = pass ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
finish() {
  echo "kernel VM test: $(elapsed) s in all"
  echo "$passed passed, $failed failed"
  if [ -n "$summary" ]; then printf 'passed %d\nfailed %d\n' "$passed" "$failed" > "$summary"; fi
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

# A kernel version whose image and WireGuard module are both installed (newest first).
find_kernel() {
  local k
  for k in $(ls -1 /lib/modules 2>/dev/null | sort -rV); do
    if [ -r "/boot/vmlinuz-$k" ] && [ -n "$(find "/lib/modules/$k/kernel/drivers/net/wireguard" -name 'wireguard.ko*' 2>/dev/null)" ]; then
      echo "$k"; return 0
    fi
  done
  return 1
}

need=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
find_kernel >/dev/null || need+=(linux-image-amd64)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  # The host boots nothing from it: INITRD=No spares the initramfs Debian would build.
  export DEBIAN_FRONTEND=noninteractive INITRD=No
  if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  echo "   installed in $(elapsed) s"
fi
kver=$(find_kernel) || { report vm_kernel fail "no kernel image with the WireGuard module after installing linux-image-amd64"; finish; exit 1; }

work=$(mktemp -d /tmp/mkb-kvm.XXXXXX)
qemu_pid=
cleanup() {
  if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/app" "$work/out"

# mkb-vpn and the scenario as the VM runs them, copied into a read-only share (the guest's
# /mnt/app, cached), so that the checkout may live anywhere (the guest has tmpfs over /tmp and
# /run). Results come back through a writable share (/mnt/out). Not ReadyToRun: measured
# here it saves about 10% of a CLI call in the VM, less than the 1-1.5 min a RID-specific
# publish of all four projects costs on a 2-core machine.
app="$work/app/mkb"
if [ "$build" -eq 1 ]; then
  echo "== build mkb-vpn"
  dotnet build src/MkbVpn.Cli -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null ||
    { report vm_build fail "dotnet build src/MkbVpn.Cli failed"; finish; exit 1; }
fi
cp -a src/MkbVpn.Cli/bin/Release/net10.0 "$app" 2>/dev/null ||
  { report vm_build fail "src/MkbVpn.Cli/bin/Release/net10.0 is not built"; finish; exit 1; }
[ -x "$app/mkb-vpn" ] || { report vm_build fail "no mkb-vpn in the build output"; finish; exit 1; }
cp "$scenario" "$work/app/scenario.sh"
echo "   ready after $(elapsed) s"

# The initramfs: static busybox, our init, and the modules that mount 9p over virtio (Debian's
# own initrd has none of them), decompressed, with their dependencies in load order.
root="$work/initramfs"
mkdir -p "$root"/{bin,modules,proc,sys,dev,newroot}
cp /bin/busybox "$root/bin/busybox"
cp tests/kernel/guest-init.sh "$root/init"
chmod 0755 "$root/init"
moddir=/lib/modules/$kver
declare -A loaded=()
add_module() {   # path relative to $moddir, e.g. kernel/net/9p/9pnet.ko.xz
  local rel=$1 dep
  [ -z "${loaded[$rel]:-}" ] || return 0
  loaded[$rel]=1
  for dep in $(sed -n "s|^$rel: ||p" "$moddir/modules.dep"); do add_module "$dep"; done
  local out
  out=$(basename "${rel%.xz}"); out=${out%.zst}
  case $rel in
    *.xz) xz -dc "$moddir/$rel" > "$root/modules/$out" ;;
    *.zst) zstd -qdc "$moddir/$rel" > "$root/modules/$out" ;;
    *) cp "$moddir/$rel" "$root/modules/$out" ;;
  esac
  echo "$out" >> "$root/modules/order"
}
for m in virtio_pci 9pnet_virtio 9p; do
  rel=$(grep -o "^kernel/[^:]*/$m\.ko[^:]*" "$moddir/modules.dep" | head -1 || true)
  if [ -n "$rel" ]; then add_module "$rel"
  elif ! grep -q "/$m\.ko" "$moddir/modules.builtin"; then report vm_initramfs fail "module $m not found for $kver"; finish; exit 1; fi
done
(cd "$root" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) > "$work/initramfs.cpio"

echo "== booting $kver under qemu (TCG), scenario $scenario (timeout ${vm_timeout} s)"
boot_started=$(date +%s.%N)
timeout --kill-after=10 "$vm_timeout" qemu-system-x86_64 \
  -accel tcg -cpu max -m 2048 -smp 2 -nic none -nographic -no-reboot \
  -kernel "/boot/vmlinuz-$kver" -initrd "$work/initramfs.cpio" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 mkbtest=/mnt/app/scenario.sh mkbvpn=/mnt/app/mkb/mkb-vpn" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$work/app,mount_tag=app,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$work/out,mount_tag=out,security_model=none,multidevs=remap" \
  < /dev/null > "$work/console.log" 2>&1 &
qemu_pid=$!
rc=0; wait "$qemu_pid" || rc=$?
qemu_pid=
vm_seconds=$(awk -v a="$boot_started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

# What the VM printed (the scenario's progress and timings), without the firmware's escape codes.
sed -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g; s/\r//g' "$work/console.log" | grep -v -e '^SeaBIOS' -e '^Booting from' -e '^$' | sed 's/^/  vm| /' || true
results="$work/out/results"
vm_results=$(grep -c '^RESULT ' "$results" 2>/dev/null || true)
# The scenario makes 28 checks; fewer means it skipped some silently.
[ "$scenario" != tests/kernel/scenario.sh ] || [ "${vm_results:-0}" -ge 28 ] ||
  report vm_results fail "the scenario reported ${vm_results:-0} checks, expected 28"
if [ -s "$results" ]; then
  while read -r tag name verdict detail; do
    [ "$tag" = RESULT ] || continue
    case $verdict in pass|fail) report "$name" "$verdict" "$detail" ;; *) report "$name" fail "bad verdict '$verdict' $detail" ;; esac
  done < "$results"
fi
grep -q 'init: booted' "$work/console.log" || report vm_boot fail "the VM printed no boot line (qemu exit $rc)"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then report vm_finished fail "timed out after ${vm_timeout} s"
elif ! grep -q '^DONE' "$results" 2>/dev/null; then report vm_finished fail "the scenario did not reach its end (qemu exit $rc)"
else report vm_finished pass "VM ran ${vm_seconds} s (qemu exit $rc)"; fi
finish
