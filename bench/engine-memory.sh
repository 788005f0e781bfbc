#!/usr/bin/env bash
# Engine memory, side by side in one run: RSS of each engine idle (a fresh interface, no peers) and after 10,000
# peers (each with a /32 allowed IP and an endpoint) were set through its UAPI socket, the way 'mkb-vpn up' loads a
# large server. Engines: Debian's wireguard-go, the upstream wireguard-go (when given), mkb-vpn's engine under the
# JIT ('mkb-vpn engine' of the Release build) and the native mkb-vpn-engine (NativeAOT publish of src/MkbVpn.Engine).
# Prints figures; asserts nothing (not a test). Targets (issue 7): idle <= 15 MB, 10,000 peers <= 60 MB.
#   sudo bench/engine-memory.sh [-n PEERS] [-u UPSTREAM_WIREGUARD_GO]   (or MKB_VPN_UPSTREAM_WG_GO=...)
# Runs in its own network namespace; tunnel addresses 203.0.113.0/24 and fd00::/8 only, endpoints in 198.18.0.0/15.
set -euo pipefail
cd "$(dirname "$0")/.."
peers=10000 upstream=${MKB_VPN_UPSTREAM_WG_GO:-}
while getopts "n:u:" o; do
  case $o in
    n) peers=$OPTARG ;; u) upstream=$OPTARG ;;
    *) echo "usage: $0 [-n PEERS] [-u UPSTREAM_WIREGUARD_GO]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 6; }
for t in wg wireguard-go ip python3; do command -v $t >/dev/null || { echo "missing $t (run scripts/test.sh once)" >&2; exit 7; }; done

tmp=$(mktemp -d /tmp/mkb-engine-memory.XXXXXX)
id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-5)
ns=mkbM$id ifc=mkbm$id
teardown() {
  for pid in $(ip netns pids $ns 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  ip netns del $ns 2>/dev/null || true
  rm -f /var/run/wireguard/$ifc.sock
}
trap 'teardown; rm -rf "$tmp"' EXIT

echo "== building mkb-vpn (Release, JIT) and mkb-vpn-engine (NativeAOT)"
dotnet build src/MkbVpn.Cli -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
dotnet publish src/MkbVpn.Engine -c Release -r linux-x64 -o "$tmp/aot" -nologo -v quiet -clp:ErrorsOnly >/dev/null

# The UAPI set of $peers peers: random public keys (hex), one /32 in 203.0.113.0/24 and 198.51.100.0/24 blocks...
# (addresses repeat across peers: only the count of peers and trie nodes matters here) and an endpoint.
python3 - "$peers" >"$tmp/set.uapi" <<'PY'
import os, sys
n = int(sys.argv[1])
out = ["set=1", "private_key=" + os.urandom(32).hex(), "listen_port=0"]
for i in range(n):
    out.append("public_key=" + os.urandom(32).hex())
    out.append(f"endpoint=198.18.{(i >> 8) & 255}.{i & 255}:51820")
    out.append(f"allowed_ip=fd00:{(i >> 16) & 0xffff:x}:{i & 0xffff:x}::1/128")
print("\n".join(out) + "\n")
PY

uapi() { # send a file to the UAPI socket of $ifc, print the errno line
  python3 - "/var/run/wireguard/$ifc.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(open(sys.argv[2], "rb").read() + b"\n")
buf = b""
while not buf.endswith(b"\n\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
print(buf.decode().strip())
PY
}
rss_kib() { awk '/^VmRSS:/ {print $2}' /proc/$1/status; }

measure() { # $1 label, rest: command taking the interface name last (foreground)
  local label=$1; shift
  ip netns add $ns
  ip netns exec $ns env WG_PROCESS_FOREGROUND=1 "$@" $ifc >"$tmp/engine.log" 2>&1 &
  local pid=$! i
  for i in $(seq 300); do [ -S /var/run/wireguard/$ifc.sock ] && break; sleep 0.1; done
  [ -S /var/run/wireguard/$ifc.sock ] || { echo "$label: did not start"; cat "$tmp/engine.log"; teardown; return; }
  sleep 2
  local idle; idle=$(rss_kib $pid)
  local t0 t1 errno; t0=$(date +%s%N)
  errno=$(uapi "$tmp/set.uapi")
  t1=$(date +%s%N)
  sleep 2
  local loaded; loaded=$(rss_kib $pid)
  local count; count=$(ip netns exec $ns wg show $ifc peers | wc -l)
  printf '%-30s idle %6.1f MB   %d peers %6.1f MB   (set took %d ms, %s, wg shows %d peers)\n' \
    "$label" "$(awk -v k=$idle 'BEGIN{print k/1024}')" "$peers" "$(awk -v k=$loaded 'BEGIN{print k/1024}')" $(( (t1 - t0) / 1000000 )) "$errno" "$count"
  kill $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  teardown
}

echo "== RSS idle and with $peers peers"
measure "Debian wireguard-go" wireguard-go -f
[ -z "$upstream" ] || measure "upstream wireguard-go" "$upstream" -f
measure "mkb-vpn engine (JIT)" "$PWD/src/MkbVpn.Cli/bin/Release/net10.0/mkb-vpn" engine -f
measure "mkb-vpn-engine (NativeAOT)" "$tmp/aot/mkb-vpn-engine" -f
echo "targets (issue 7): idle <= 15 MB; $peers peers <= 60 MB"
