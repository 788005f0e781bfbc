#!/usr/bin/env bash
# The Debian package on a Debian 12 host without .NET: builds mkb-vpn_VERSION_amd64.deb with
# scripts/package.sh, installs it with 'apt install ./mkb-vpn_*.deb' into a minimal Debian 12
# chroot (debootstrap --variant=minbase; no dotnet anywhere in it), runs the program, a
# mkb-stack script by its PATH name, up/down on the built-in engine, then 'apt remove' (the
# data directory stays) and 'apt purge' (it goes, nothing asked).
#
#   sudo tests/package/run.sh [--deb FILE] [--results FILE]
#
#   --deb FILE      test this package instead of building one
#   --results FILE  write "passed N" and "failed N" there (scripts/test.sh sums them)
#
# The chroot's base is cached as /var/cache/mkb-vpn-test/debian12-minbase.tar (made by
# debootstrap the first time, from deb.debian.org; remade after 30 days) and the packages apt
# fetched for it in /var/cache/mkb-vpn-test/apt-archives. Each chroot command runs in its own
# mount namespace (/proc, /sys, /dev, /run mounted there vanish with it, also on failure); all
# but 'apt install' (which may download) also in a network namespace of their own. The chroot
# itself lives in a temporary directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

deb= summary=
while [ $# -gt 0 ]; do
  case $1 in
    --deb) deb=$(readlink -f "$2"); shift ;;
    --results) summary=$2; shift ;;
    *) echo "usage: $0 [--deb FILE] [--results FILE]" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "$0: run as root (debootstrap, chroot, namespaces)" >&2; exit 6; }

started=$(date +%s.%N)
elapsed() { awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
passed=0 failed=0
check() {   # name pass|fail detail
  echo "RESULT $*"
  if [ "$2" = pass ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
expect() {   # name detail command...: a check that passes when the command succeeds
  local name=$1 detail=$2; shift 2
  if "$@"; then check "$name" pass "$detail"; else check "$name" fail "$detail"; fi
}
finish() {
  echo "package test: $(elapsed) s in all"
  echo "$passed passed, $failed failed"
  if [ -n "$summary" ]; then printf 'passed %d\nfailed %d\n' "$passed" "$failed" > "$summary"; fi
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

cache=/var/cache/mkb-vpn-test
base="$cache/debian12-minbase.tar"
mirror=http://deb.debian.org/debian
work=$(mktemp -d /tmp/mkb-pkg.XXXXXX)
root="$work/root"
cleanup() {
  # Processes started from the chroot's program (an engine left by a failed 'down'): only ours.
  local exe pid
  for exe in /proc/[0-9]*/exe; do
    case $(readlink "$exe" 2>/dev/null) in "$root/usr/lib/mkb-vpn/mkb-vpn"*) ;; *) continue ;; esac
    pid=${exe#/proc/}; pid=${pid%/exe}
    kill "$pid" 2>/dev/null || true
  done
  # Nothing is mounted under $root outside the namespaces; never delete through a mount.
  if findmnt -rn -o TARGET | grep -q "^$work"; then
    echo "package test: something is still mounted under $work; not removing it" >&2
  else
    rm -rf --one-file-system "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

# 1. The package.
if [ -z "$deb" ]; then
  echo "== scripts/package.sh"
  if deb=$(scripts/package.sh --out "$work/deb" | tail -1) && [ -f "$deb" ]; then
    check package_build pass "$(basename "$deb") in $(elapsed) s"
  else
    check package_build fail "scripts/package.sh failed"; finish; exit 1
  fi
fi
version=$(dpkg-deb -f "$deb" Version)
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
if grep -Eq '\.(pdb|dbg|dll)$' <<<"$contents"; then
  check package_contents fail "ships $(grep -E '\.(pdb|dbg|dll)$' <<<"$contents" | tr '\n' ' ')"
else
  missing=
  for f in ./usr/lib/mkb-vpn/mkb-vpn ./usr/lib/mkb-vpn/mkb-vpn-engine ./usr/lib/mkb-vpn/libe_sqlite3.so ./usr/lib/mkb-vpn/libsodium.so ./usr/bin/mkb-vpn \
           ./lib/systemd/system/mkb-vpn.service ./lib/systemd/system/mkb-vpn-web.service ./usr/share/doc/mkb-vpn/copyright \
           ./usr/share/man/man8/mkb-vpn.8.gz ./usr/share/mkb-vpn/scripts/add-wireguard-client.sh ./usr/bin/add-wireguard-client.sh \
           ./usr/bin/remove-client.sh ./usr/bin/block-client.sh ./usr/bin/reenable-client.sh; do
    grep -qx -- "$f" <<<"$contents" || missing+=" $f"
  done
  if [ -z "$missing" ]; then check package_contents pass "binary, libraries, units, scripts, man page, copyright; no .pdb/.dbg/.dll"
  else check package_contents fail "missing:$missing"; fi
fi
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)
expect package_conffiles "conffiles: $(tr '\n' ' ' <<<"$conffiles")" test "$conffiles" = /etc/default/mkb-vpn

# 2. The chroot: a minimal Debian 12 from the cached base, else from debootstrap (cached for next time).
mkdir -p "$cache/apt-archives/partial"
(
  flock 9
  if [ ! -s "$base" ] || [ -n "$(find "$base" -mtime +30)" ]; then
    echo "== debootstrap --variant=minbase bookworm (cached as $base)"
    t=$(date +%s)
    fresh="$cache/debootstrap.$$"
    rm -rf "$fresh"
    debootstrap --variant=minbase --cache-dir="$cache/apt-archives" bookworm "$fresh" "$mirror" > "$work/debootstrap.log" 2>&1 ||
      { tail -20 "$work/debootstrap.log" >&2; rm -rf --one-file-system "$fresh"; exit 1; }
    # With the package lists, so that a cached run installs without asking the mirror.
    cp /etc/resolv.conf "$fresh/etc/resolv.conf"
    unshare --mount --fork -- sh -c 'mount -t proc proc "$1/proc" && chroot "$1" apt-get update -q' _ "$fresh" >> "$work/debootstrap.log" 2>&1 ||
      { tail -20 "$work/debootstrap.log" >&2; rm -rf --one-file-system "$fresh"; exit 1; }
    rm -f "$fresh/etc/resolv.conf"
    tar -C "$fresh" -cf "$base.tmp" . && mv "$base.tmp" "$base"
    rm -rf --one-file-system "$fresh"
    echo "   made in $(( $(date +%s) - t )) s"
  fi
) 9>"$cache/lock" || { check chroot_base fail "debootstrap failed (log above)"; finish; exit 1; }
mkdir "$root"
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Services are never started from maintainer scripts in here (invoke-rc.d asks policy-rc.d).
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod 0755 "$root/usr/sbin/policy-rc.d"
# A throw-away root: dpkg need not fsync every file it unpacks.
echo force-unsafe-io > "$root/etc/dpkg/dpkg.cfg.d/mkb-vpn-test-unsafe-io"
# A Debian host has a kernel package, which provides wireguard-modules; a chroot has none, and
# apt would satisfy wireguard-tools' Recommends (wireguard-modules | wireguard-dkms) with a whole
# kernel image and initramfs-tools (90 s here). A stand-in provides it, as linux-image-amd64 does.
mkdir -p "$work/kernel-stand-in/DEBIAN"
cat > "$work/kernel-stand-in/DEBIAN/control" <<'CONTROL'
Package: mkb-vpn-test-kernel-stand-in
Version: 1
Architecture: all
Maintainer: mkb-vpn tests <mkb-vpn@example.org>
Provides: wireguard-modules (= 1.0.0)
Description: stands in for the host's kernel package in the package test's chroot
CONTROL
dpkg-deb --root-owner-group --build "$work/kernel-stand-in" "$root/tmp/kernel-stand-in.deb" >/dev/null
cp "$deb" "$root/tmp/"
pkgfile=/tmp/$(basename "$deb")
check chroot_base pass "Debian $(cat "$root/etc/debian_version") minbase ready after $(elapsed) s"

# in_chroot [--isolated] COMMAND...: runs COMMAND in the chroot, in a mount namespace of its own
# (with /proc, /sys, a small /dev with /dev/net/tun, /run and the apt cache) and, with
# --isolated, a network namespace of its own too (only lo, which it brings up).
mdwe=()
in_chroot() {
  local ns=(--mount --fork) pre=()
  if [ "$1" = --isolated ]; then ns+=(--net); shift; fi
  if [ "$1" = --mdwe ]; then pre=("${mdwe[@]}"); shift; fi
  "${pre[@]}" unshare "${ns[@]}" -- /bin/bash -c '
    set -e
    root=$1; cache=$2; shift 2
    mount --make-rprivate /
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount -t tmpfs -o mode=0755,size=1m tmpfs "$root/dev"
    mkdir "$root/dev/net" "$root/dev/pts" "$root/dev/shm"
    mknod -m 0666 "$root/dev/null" c 1 3; mknod -m 0666 "$root/dev/zero" c 1 5
    mknod -m 0666 "$root/dev/random" c 1 8; mknod -m 0666 "$root/dev/urandom" c 1 9
    mknod -m 0666 "$root/dev/tty" c 5 0; mknod -m 0666 "$root/dev/net/tun" c 10 200
    ln -s /proc/self/fd "$root/dev/fd"
    mount -t tmpfs -o mode=0755 tmpfs "$root/run"
    mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
    ip link set lo up 2>/dev/null || true
    exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
  ' in_chroot "$root" "$cache" "$@"
}

# 3. No .NET in there: the package must stand alone.
dotnet_found=$(in_chroot sh -c 'command -v dotnet; ls -d /usr/share/dotnet /usr/lib/dotnet /opt/dotnet 2>/dev/null' || true)
expect no_dotnet "no dotnet on PATH nor in the usual places" test -z "$dotnet_found"

in_chroot dpkg -i /tmp/kernel-stand-in.deb >/dev/null

# 4. apt install ./mkb-vpn_*.deb: the Depends come from the archive (cached after the first run).
echo "== apt install $pkgfile"
# The README's command, as an admin types it (apt, a ./ path).
install_cmd=(sh -c "cd /tmp && DEBIAN_FRONTEND=noninteractive apt install -y -q -o APT::Keep-Downloaded-Packages=true ./$(basename "$deb")")
t=$(date +%s.%N)
if in_chroot "${install_cmd[@]}" > "$work/install.log" 2>&1 ||
   { echo "   retrying after apt-get update"; in_chroot apt-get update -q > "$work/update.log" 2>&1 &&
     in_chroot "${install_cmd[@]}" > "$work/install.log" 2>&1; }; then
  check apt_install pass "$(sed -n 's/^\([0-9]* upgraded, [0-9]* newly installed\).*/\1/p' "$work/install.log") ($(sed -n '/NEW packages/,/upgraded/p' "$work/install.log" | grep "^ " | tr -s ' \n' ' ')) in $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
else
  tail -20 "$work/install.log" | sed 's/^/  apt| /'
  check apt_install fail "apt install ./$(basename "$deb") failed"; finish; exit 1
fi
installed=$(in_chroot dpkg-query -W -f='${Status} ${Version}' mkb-vpn 2>/dev/null || true)
expect dpkg_status "$installed" test "$installed" = "install ok installed $version"
deps=$(in_chroot dpkg-query -W -f='${Status}\n' iproute2 nftables libssl3 2>/dev/null | grep -c 'install ok installed' || true)
expect depends_installed "iproute2, nftables, libssl3 installed with it ($deps of 3)" test "$deps" = 3
# The postinst starts nothing and initialises nothing.
ours_running() {   # how many processes run the chroot's mkb-vpn (also once deleted by dpkg)
  local exe n=0
  for exe in /proc/[0-9]*/exe; do
    case $(readlink "$exe" 2>/dev/null) in "$root/usr/lib/mkb-vpn/mkb-vpn"*) n=$((n + 1)) ;; esac
  done
  echo "$n"
}
running=$(ours_running)
expect nothing_started "no mkb-vpn process and no data directory after install" test "$running" -eq 0 -a ! -e "$root/var/lib/mkb-vpn"

# 5. The program, without .NET, through /usr/bin/mkb-vpn (a symlink into /usr/lib/mkb-vpn).
got=$(in_chroot mkb-vpn --version 2>&1 || true)
expect version "mkb-vpn --version: $got" test "$got" = "$version"
iface="mkbdeb$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')"
# The scenario runs inside the systemd unit's limits, as far as they can be had without systemd:
# only the unit's CapabilityBoundingSet (read from the installed mkb-vpn.service), no_new_privs
# (setpriv), and MemoryDenyWriteExecute's kernel twin PR_SET_MDWE (Linux 6.3+; inherited by
# every child: the engine, ip, nft), set before entering the namespaces.
unit_caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$root/lib/systemd/system/mkb-vpn.service")
setpriv_caps=$(for c in $unit_caps; do c=${c#CAP_}; printf ',+%s' "${c,,}"; done)
capbits=0
for c in $unit_caps; do
  case $c in
    CAP_NET_BIND_SERVICE) capbits=$((capbits | 1 << 10)) ;;
    CAP_NET_ADMIN) capbits=$((capbits | 1 << 12)) ;;
    CAP_NET_RAW) capbits=$((capbits | 1 << 13)) ;;
    *) check unit_caps fail "this test does not know the bit of $c: add it" ;;
  esac
done
capbnd=$(printf '%016x' "$capbits")
mdwe_set='import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0 or libc.prctl(66, 0, 0, 0, 0) != 1:   # PR_SET_MDWE, PR_GET_MDWE
    sys.exit("PR_SET_MDWE: " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])'
if command -v python3 >/dev/null 2>&1 && python3 -c "$mdwe_set" true 2>/dev/null; then
  mdwe=(python3 -c "$mdwe_set")
  check sandbox_mdwe_available pass "PR_SET_MDWE works here: the scenario runs with write-or-execute memory"
else
  echo "   note: no PR_SET_MDWE here (kernel $(uname -r) < 6.3 or no python3): MemoryDenyWriteExecute not checked"
fi
# Everything that touches the network runs in a network namespace of its own; test addresses only.
cat > "$root/tmp/scenario.sh" <<SCENARIO
#!/bin/bash
r() { local n=\$1 rc=0; shift; "\$@" > /tmp/\$n.out 2>&1 || rc=\$?; if [ \$rc -eq 0 ]; then echo "RESULT \$n pass"; else echo "RESULT \$n fail exit \$rc: \$(grep . /tmp/\$n.out | tail -3 | tr '\\n' ' ')"; fi; }
r sandbox sh -c 'grep -q "^CapBnd:[[:space:]]*$capbnd\$" /proc/self/status && grep -q "^NoNewPrivs:[[:space:]]*1\$" /proc/self/status'
r init mkb-vpn init --endpoint 198.18.0.1:51820 --subnet 203.0.113.0/24 --subnet6 fd00:deb::/64 --internal-network 198.51.100.0/24 --dns none --interface $iface
r data_dir_0700 sh -c '[ "\$(stat -c %a /var/lib/mkb-vpn)" = 700 ] && [ -s /var/lib/mkb-vpn/mkb-vpn.db ]'
r add mkb-vpn add alice --no-qr
r add_config test -s /var/lib/mkb-vpn/clients/alice.conf
r up mkb-vpn up
r engine_runs sh -c 'mkb-vpn status | grep -Eqi "built-?in" && ip link show dev $iface && nft list table inet mkb_vpn >/dev/null'
r engine_native sh -c 'for p in /proc/[0-9]*; do [ "\$(readlink \$p/exe)" = /usr/lib/mkb-vpn/mkb-vpn-engine ] && exit 0; done; exit 1'
r script_on_path sh -c 'p=\$(command -v add-wireguard-client.sh) && [ "\$p" = /usr/bin/add-wireguard-client.sh ] && add-wireguard-client.sh bob --no-qr'
r script_live sh -c 'mkb-vpn status | grep -q bob && test -s /var/lib/mkb-vpn/clients/bob.conf'
r script_audited sh -c 'mkb-vpn log --client bob | grep -qi script'
r block_script block-client.sh bob
r down mkb-vpn down
r down_clean sh -c '! ip link show dev $iface 2>/dev/null && ! nft list table inet mkb_vpn 2>/dev/null'
SCENARIO
chmod 0755 "$root/tmp/scenario.sh"
[ -n "$unit_caps" ] || check unit_caps fail "no CapabilityBoundingSet= in mkb-vpn.service"
echo "== mkb-vpn in the chroot (interface $iface, own network namespace)"
echo "   with only $unit_caps, no_new_privs${mdwe:+ and PR_SET_MDWE}"
in_chroot --isolated ${mdwe:+--mdwe} setpriv --no-new-privs --inh-caps=-all --bounding-set="-all$setpriv_caps" /tmp/scenario.sh > "$work/scenario.log" 2>&1 || true
while read -r tag name verdict detail; do
  [ "$tag" = RESULT ] || continue
  check "$name" "$verdict" "$detail"
done < "$work/scenario.log"
n=$(grep -c '^RESULT ' "$work/scenario.log" || true)
[ "$n" -eq 14 ] || { check scenario_complete fail "the scenario reported $n of 14 checks"; sed 's/^/  chroot| /' "$work/scenario.log" | tail -20; }

# 6. The hardened units under a real systemd: systemd is installed into the chroot, which boots
# as a container (systemd-nspawn, its own network namespace, /dev/net/tun bound in). A oneshot
# unit there starts mkb-vpn.service (up --foreground: the engine, nftables, forwarding, all
# inside the unit's sandbox), changes clients live from the CLI and through mkb-vpn-web.service,
# lets the service restore a deleted interface, stops both, and powers off.
echo "== the systemd units in the chroot booted with systemd-nspawn"
if in_chroot sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o APT::Keep-Downloaded-Packages=true systemd systemd-sysv' > "$work/systemd.log" 2>&1; then
  cat > "$root/root/units-check.sh" <<UNITS
#!/bin/bash
exec > /root/units.log 2>&1
r() { local n=\$1; shift; if "\$@" > /tmp/\$n.out 2>&1; then echo "RESULT \$n pass"; else echo "RESULT \$n fail \$(grep . /tmp/\$n.out | tail -2 | tr '\\n' ' ')"; fi; }
wait_for() { local i; for i in \$(seq 1 120); do "\$@" >/dev/null 2>&1 && return 0; sleep 0.25; done; return 1; }
engine_pid() { local p; for p in /proc/[0-9]*; do [ "\$(readlink \$p/exe)" = /usr/lib/mkb-vpn/mkb-vpn-engine ] && tr '\\0' ' ' < \$p/cmdline | grep -q " $iface" && { echo "\${p#/proc/}"; return 0; }; done; return 1; }
http() { # METHOD PATH TOKEN: prints the HTTP status code
  exec 3<>/dev/tcp/127.0.0.1/51821 || return 1
  printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Length: 0\r\n\r\n' "\$1" "\$2" "\$3" >&3
  local line; read -r line <&3; exec 3<&-; echo "\$line" | cut -d' ' -f2
}
echo 0 > /proc/sys/net/ipv4/ip_forward
systemctl start mkb-vpn
r unit_up wait_for ip link show dev $iface
r unit_nftables wait_for nft list table inet mkb_vpn
r unit_forwarding grep -qx 1 /proc/sys/net/ipv4/ip_forward
p=\$(engine_pid)
grep -E "^(CapBnd|NoNewPrivs|Seccomp):" /proc/\$p/status
systemctl show -p MemoryDenyWriteExecute -p CapabilityBoundingSet mkb-vpn
r unit_engine_sandboxed sh -c "test -n '\$p' && grep -q '^CapBnd:[[:space:]]*$capbnd\$' /proc/\$p/status && grep -q '^NoNewPrivs:[[:space:]]*1' /proc/\$p/status && grep -q '^Seccomp:[[:space:]]*2' /proc/\$p/status"
r unit_live_cli sh -c 'mkb-vpn add carol --no-qr && mkb-vpn status | grep -q "^carol "'
ip link del dev $iface
sleep 1
r unit_restores wait_for ip link show dev $iface
token=\$(mkb-vpn token add units-check 2>/dev/null)
systemctl start mkb-vpn-web
r web_up wait_for bash -c 'exec 3<>/dev/tcp/127.0.0.1/51821'
# The live effect is checked (the engine's peers, through wg), not only the answer: the answer's
# HTTP status is printed for the record.
peers() { wg show $iface peers | wc -l; }
n=\$(peers)
code=\$(http POST /api/v1/clients/carol/block \$token); echo "web: POST block: HTTP \$code"
r web_block_live test "\$(peers)" -eq \$((n - 1))
code=\$(http POST /api/v1/clients/carol/reenable \$token); echo "web: POST reenable: HTTP \$code"
r web_reenable_live test "\$(peers)" -eq \$n
code=\$(http DELETE /api/v1/clients/carol \$token); echo "web: DELETE: HTTP \$code"
r web_remove_live sh -c "test \$(wg show $iface peers | wc -l) -eq \$((n - 1)) && ! mkb-vpn list | grep -q '^carol '"
systemctl stop mkb-vpn-web mkb-vpn
r units_stop_down sh -c '! ip link show dev $iface && ! nft list table inet mkb_vpn && grep -qx 0 /proc/sys/net/ipv4/ip_forward'
r units_no_failure sh -c '! systemctl --failed --no-legend | grep -q mkb'
systemd-analyze security mkb-vpn.service mkb-vpn-web.service --no-pager | grep Overall
journalctl -u mkb-vpn -u mkb-vpn-web --no-pager | tail -20
echo END
UNITS
  chmod 0755 "$root/root/units-check.sh"
  cat > "$root/etc/systemd/system/mkb-units-check.service" <<'UNIT'
[Unit]
Description=package test: the mkb-vpn units under systemd
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/root/units-check.sh
ExecStopPost=/bin/systemctl --no-block poweroff
[Install]
WantedBy=multi-user.target
UNIT
  ln -sf /etc/systemd/system/mkb-units-check.service "$root/etc/systemd/system/multi-user.target.wants/mkb-units-check.service"
  t=$(date +%s.%N)
  timeout --kill-after=10 180 systemd-nspawn -q -D "$root" --machine "mkbpkg-${iface#mkbdeb}" -b --private-network \
    --bind=/dev/net/tun --register=no --keep-unit --console=pipe < /dev/null > "$work/nspawn.log" 2>&1 || true
  rm -f "$root/etc/systemd/system/multi-user.target.wants/mkb-units-check.service"
  if grep -q '^END$' "$root/root/units.log" 2>/dev/null; then
    check systemd_boot pass "booted, checked and powered off in $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
  else
    check systemd_boot fail "the container did not run the check to its end"; tail -20 "$work/nspawn.log" | sed 's/^/  nspawn| /'
  fi
  while read -r tag name verdict detail; do
    [ "$tag" = RESULT ] || continue
    check "$name" "$verdict" "$detail"
  done < <(cat "$root/root/units.log" 2>/dev/null)
  grep -e 'Overall exposure' -e '^web: ' "$root/root/units.log" | sed 's/^/   /' || true
  grep -q 'RESULT .* fail' "$root/root/units.log" 2>/dev/null && sed 's/^/  units| /' "$root/root/units.log" | tail -40
  rmdir /run/systemd/nspawn/propagate /run/systemd/nspawn/locks /run/systemd/nspawn 2>/dev/null || true
else
  tail -5 "$work/systemd.log" | sed 's/^/  apt| /'; check systemd_boot fail "apt-get install systemd in the chroot failed"
fi

# 7. apt remove keeps the users' keys; apt purge removes them and asks nothing (no terminal, no input).
echo "== apt remove, apt purge"
if in_chroot env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q mkb-vpn > "$work/remove.log" 2>&1 </dev/null; then
  state=$(in_chroot dpkg-query -W -f='${Status}' mkb-vpn 2>/dev/null || true)
  expect remove_keeps_data "status '$state'; /var/lib/mkb-vpn kept with the store and configs" \
    test "$state" = "deinstall ok config-files" -a -s "$root/var/lib/mkb-vpn/mkb-vpn.db" -a -s "$root/var/lib/mkb-vpn/clients/alice.conf" \
      -a ! -e "$root/usr/bin/mkb-vpn" -a ! -e "$root/usr/bin/add-wireguard-client.sh" -a -f "$root/etc/default/mkb-vpn"
else
  tail -5 "$work/remove.log" | sed 's/^/  apt| /'; check remove_keeps_data fail "apt-get remove failed"
fi
# No DEBIAN_FRONTEND here: a question would block on the closed input or show in the log.
if in_chroot timeout 120 apt-get purge -y -q mkb-vpn > "$work/purge.log" 2>&1 </dev/null; then
  state=$(in_chroot dpkg-query -W -f='${Status}' mkb-vpn 2>/dev/null || true)
  expect purge_removes_data "status '${state:-unknown}'; /var/lib/mkb-vpn and /etc/default/mkb-vpn gone" \
    test ! -e "$root/var/lib/mkb-vpn" -a ! -e "$root/etc/default/mkb-vpn" -a "$state" != "deinstall ok config-files"
  if grep -Eiq 'debconf|\[y/n\]|\?\s*$' "$work/purge.log"; then check purge_asks_nothing fail "$(grep -Ei 'debconf|\[y/n\]|\?\s*$' "$work/purge.log" | head -1)"
  else check purge_asks_nothing pass "no question in the output"; fi
else
  tail -5 "$work/purge.log" | sed 's/^/  apt| /'; check purge_removes_data fail "apt-get purge failed or waited"
fi
left=$(ours_running)
expect no_process_left "no mkb-vpn process from the chroot left running ($left)" test "$left" -eq 0

finish
