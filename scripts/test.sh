#!/usr/bin/env bash
# Runs the whole test suite: unit tests and the end-to-end tests (real wireguard-go peers in
# network namespaces, real nftables). Installs with apt-get whatever the tests need and is
# missing. Needs root (network namespaces, TUN devices). Prints "N passed, N failed" last.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: the end-to-end tests create network namespaces and TUN devices: run as root (sudo $0)" >&2
  exit 6
fi

# Debian packages the tests drive: tool -> package.
need=()
for pair in wg:wireguard-tools wireguard-go:wireguard-go ip:iproute2 ping:iputils-ping nft:nftables iperf3:iperf3 socat:socat pgrep:procps flock:util-linux setpriv:util-linux curl:curl pg_ctlcluster:postgresql; do
  tool=${pair%%:*} pkg=${pair#*:}
  command -v "$tool" >/dev/null 2>&1 || need+=("$pkg")
done
# The browser tests drive Debian's chromium (never a downloaded browser).
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v dotnet >/dev/null 2>&1; then
  echo "test.sh: the .NET SDK (dotnet) is required" >&2
  exit 7
fi
[ -c /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200 && chmod 0666 /dev/net/tun; }

echo "== build"
dotnet build MkbVpn.sln -c Release -nologo -v quiet -clp:ErrorsOnly

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0
# Playwright (browser tests) uses the system chromium; it must never try to fetch one.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 MKB_VPN_CHROMIUM=/usr/bin/chromium
for project in tests/MkbVpn.WireGuard.Tests tests/MkbVpn.Tests tests/MkbVpn.Web.Tests tests/MkbVpn.EndToEnd.Tests; do
  name=$(basename "$project")
  echo "== $name"
  # The runner's own exit status is kept in a file: a pipeline through grep would hide it.
  { rc=0; dotnet test "$project" -c Release --no-build -nologo --logger "trx;LogFileName=$results/$name.trx" \
        --logger "console;verbosity=normal" 2>&1 || rc=$?; echo $rc > "$results/$name.rc"; } | tee "$results/$name.log" |
    grep -E '^\s+(Passed|Failed|Skipped) |^(Passed|Failed)!|error|Error Message|Assert|at MkbVpn' || true
  [ "$(cat "$results/$name.rc")" -eq 0 ] || status=1
done

# Kernel WireGuard: the end-to-end scenario in a VM running Debian's kernel (tests/kernel/run.sh;
# installs qemu-system-x86, linux-image-amd64 and busybox-static when missing).
echo "== kernel WireGuard in a VM"
bash tests/kernel/run.sh --no-build --results "$results/kernel.counts" || status=1

# The Debian package: scripts/package.sh (NativeAOT publish), then apt install ./mkb-vpn_*.deb into
# a minimal Debian 12 chroot without .NET, init/add/up/a script/down, apt remove and purge
# (tests/package/run.sh; installs debootstrap when missing; the chroot base is cached under
# /var/cache/mkb-vpn-test).
echo "== Debian package in a Debian 12 chroot"
bash tests/package/run.sh --results "$results/package.counts" || status=1

# Sum the trx counters of every project into one closing line.
passed=0 failed=0 skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || { status=1; continue; }
  counters=$(grep -o '<Counters [^>]*>' "$trx")
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  n=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0})) skipped=$((skipped + ${n:-0}))
done
if [ -f "$results/kernel.counts" ]; then
  passed=$((passed + $(sed -n 's/^passed //p' "$results/kernel.counts")))
  failed=$((failed + $(sed -n 's/^failed //p' "$results/kernel.counts")))
else
  echo "test.sh: the kernel VM test produced no results" >&2; status=1; failed=$((failed + 1))
fi
if [ -f "$results/package.counts" ]; then
  passed=$((passed + $(sed -n 's/^passed //p' "$results/package.counts")))
  failed=$((failed + $(sed -n 's/^failed //p' "$results/package.counts")))
else
  echo "test.sh: the package test produced no results" >&2; status=1; failed=$((failed + 1))
fi
# Repeat each failed test's name and the start of its message here, next to the closing line, so
# that the tail of a long log says what failed.
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  awk '
    /<UnitTestResult / && /outcome="Failed"/ {
      match($0, /testName="[^"]*"/); name = substr($0, RSTART + 10, RLENGTH - 11)
      gsub(/&quot;/, "\"", name); gsub(/&amp;/, "\\&", name)
      print "FAILED " name; failed = 1; next }
    failed && /<Message>/ { inmsg = 1; lines = 0; sub(/.*<Message>/, "") }
    inmsg {
      end = sub(/<\/Message>.*/, "")
      gsub(/&quot;/, "\""); gsub(/&lt;/, "<"); gsub(/&gt;/, ">"); gsub(/&amp;/, "\\&")
      if (lines++ < 6) print "    " $0
      if (end) { inmsg = 0; failed = 0 } }
    /<\/UnitTestResult>/ { failed = 0; inmsg = 0 }' "$trx"
done
[ "$(ls "$results"/*.trx 2>/dev/null | wc -l)" -eq 4 ] || { echo "test.sh: a test project produced no results" >&2; status=1; }
[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
