#!/usr/bin/env bash
# Engine throughput benchmark: the same two-namespace testbed built twice in one run — wireguard-go on
# both ends, then mkb-vpn's own engine ('mkb-vpn engine') on both ends — and, for each, iperf3 TCP single
# stream in both directions, ping latency through the tunnel, and the engines' RSS. Prints the figures and
# the ratio ours / wireguard-go. Prints figures; asserts nothing (not a test).
#   sudo bench/engine-throughput.sh [SECONDS]     (iperf3 duration per direction, default 10)
# Addresses (TESTBED.md): underlay 198.18.8.0/24, tunnel 203.0.113.0/24.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 6; }
for t in wg wireguard-go ip iperf3 ping; do command -v $t >/dev/null || { echo "missing $t (run scripts/test.sh once)" >&2; exit 7; }; done

echo "== building mkb-vpn (Release)"
dotnet build src/MkbVpn.Cli -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
bin=$PWD/src/MkbVpn.Cli/bin/Release/net10.0/mkb-vpn

id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-5)
nsa=mkbTa$id nsb=mkbTb$id ifa=mkbta$id ifb=mkbtb$id
tmp=$(mktemp -d /tmp/mkb-engine-bench.XXXXXX)
teardown() {
  for ns in $nsa $nsb; do
    for pid in $(ip netns pids $ns 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    ip netns del $ns 2>/dev/null || true
  done
  rm -f /var/run/wireguard/$ifa.sock /var/run/wireguard/$ifb.sock
}
trap 'teardown; rm -rf "$tmp"' EXIT

ka=$(wg genkey) kb=$(wg genkey)
pa=$(echo "$ka" | wg pubkey) pb=$(echo "$kb" | wg pubkey)
echo "$ka" >"$tmp/a.key"; echo "$kb" >"$tmp/b.key"; chmod 600 "$tmp"/*.key

rss_kib() { # sum of VmRSS over the processes in namespace $1
  local total=0 pid kib
  for pid in $(ip netns pids "$1"); do
    kib=$(awk '/^VmRSS:/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    total=$((total + ${kib:-0}))
  done
  echo $total
}

iperf_mbps() { # $1: extra iperf3 client flag ("" or -R); prints receiver Mbit/s
  ip netns exec $nsb iperf3 -s -1 -D -B 203.0.113.2 >/dev/null
  sleep 0.3
  ip netns exec $nsa iperf3 -c 203.0.113.2 -t "$secs" -f m $1 2>&1 | awk '/receiver/ {print $(NF-2)}' | tail -1
}

run() { # $1: label, $2: command that starts an engine: ENGINE IFACE
  local label=$1 engine=$2
  ip netns add $nsa; ip netns add $nsb
  ip -n $nsa link set lo up; ip -n $nsb link set lo up
  ip link add veA$id netns $nsa type veth peer name veB$id netns $nsb
  ip -n $nsa addr add 198.18.8.1/24 dev veA$id; ip -n $nsb addr add 198.18.8.2/24 dev veB$id
  ip -n $nsa link set veA$id up; ip -n $nsb link set veB$id up
  ip netns exec $nsa $engine $ifa >/dev/null 2>&1
  ip netns exec $nsb $engine $ifb >/dev/null 2>&1
  ip netns exec $nsa wg set $ifa private-key "$tmp/a.key" listen-port 51820 peer "$pb" allowed-ips 203.0.113.2/32 endpoint 198.18.8.2:51820
  ip netns exec $nsb wg set $ifb private-key "$tmp/b.key" listen-port 51820 peer "$pa" allowed-ips 203.0.113.1/32 endpoint 198.18.8.1:51820
  ip -n $nsa addr add 203.0.113.1/24 dev $ifa; ip -n $nsa link set $ifa up
  ip -n $nsb addr add 203.0.113.2/24 dev $ifb; ip -n $nsb link set $ifb up
  for _ in $(seq 50); do ip netns exec $nsa ping -c1 -W1 203.0.113.2 >/dev/null 2>&1 && break; done
  local rss0; rss0=$(rss_kib $nsa)
  local fwd rev lat rss
  fwd=$(iperf_mbps "")
  rev=$(iperf_mbps "-R")
  # Latency: the median of 300 pings (the average is at the mercy of a few scheduling outliers on shared cores).
  lat=$(ip netns exec $nsa ping -c 300 -i 0.005 -n 203.0.113.2 | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
  rss=$(rss_kib $nsa)
  printf '%-12s  A->B %8s Mbit/s   B->A %8s Mbit/s   ping median %6s ms   RSS(one engine) idle %6d KiB, after load %6d KiB\n' \
    "$label" "$fwd" "$rev" "$lat" "$rss0" "$rss"
  eval "${label//-/_}_fwd=$fwd ${label//-/_}_rev=$rev ${label//-/_}_lat=$lat ${label//-/_}_rss=$rss"
  teardown
}

echo "== iperf3 TCP single stream, ${secs}s per direction; ping 300 x 5 ms (median)"
run wireguard-go wireguard-go
run mkb-vpn "$bin engine"
awk -v a="$mkb_vpn_fwd" -v b="$wireguard_go_fwd" -v c="$mkb_vpn_rev" -v d="$wireguard_go_rev" \
    -v e="$mkb_vpn_lat" -v f="$wireguard_go_lat" -v g="$mkb_vpn_rss" -v h="$wireguard_go_rss" 'BEGIN {
  printf "ratio mkb-vpn / wireguard-go:  A->B %.2fx   B->A %.2fx   latency %.2fx   RSS %.2fx\n", a/b, c/d, e/f, g/h }'
