#!/usr/bin/env bash
# Access-rule scale benchmark: a live server (mkb-vpn's engine, in its own network namespace) with
# 10,000 clients in 50 groups of 200, each group with 5 rules, the default 'everyone' rules revoked.
# Prints: the time 'up' takes to install everything (and the nft load alone), one 'access allow',
# 'access revoke' and 'set --group' (median of 5), the size of the rule set, and iperf3 through the
# server from a real client (mkb-vpn's engine on both ends) with the rules loaded vs the same table
# without access rules, alternating. Targets: up installs every rule < 2 s; one change < 300 ms;
# throughput with rules within 5% of none. Prints figures; asserts nothing.
#   sudo bench/access-scale.sh [CLIENTS]     (default 10000; a multiple of 50)
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-10000}
per=$((total / 50))
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 6; }
for t in wg ip nft iperf3 wg-quick; do command -v $t >/dev/null || { echo "missing $t (run scripts/test.sh once)" >&2; exit 7; }; done

echo "== building (Release, ReadyToRun)"
dotnet publish src/MkbVpn.Cli -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true \
  -o out/bench/mkb-vpn -nologo -v quiet -clp:ErrorsOnly
bin=$PWD/out/bench/mkb-vpn/mkb-vpn
engine_script=$PWD/scripts/mkb-vpn-engine

id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-5)
ns=mkbas$id cl=mkbac$id in=mkbai$id
iface=mkba$id
data=$(mktemp -d /tmp/mkb-vpn-access-bench.XXXXXX)
cleanup() {
  ip netns exec "$cl" wg-quick down "$data/clients/cl$id.conf" >/dev/null 2>&1 || true
  for n in "$ns" "$cl" "$in"; do ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null || true; ip netns del "$n" 2>/dev/null || true; done
  pkill -f "mkb-vpn engine $iface\$" 2>/dev/null || true
  pkill -f "mkb-vpn engine cl$id\$" 2>/dev/null || true
  rm -f "/var/run/wireguard/$iface.sock" "/var/run/wireguard/cl$id.sock"
  rm -rf "$data"
}
trap cleanup EXIT
for n in "$ns" "$cl" "$in"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n "$ns" link add u0 type veth peer name u1 netns "$cl"
ip -n "$ns" address add 198.18.1.1/24 dev u0; ip -n "$cl" address add 198.18.1.2/24 dev u1
ip -n "$ns" link add i0 type veth peer name i1 netns "$in"
ip -n "$ns" address add 198.51.100.1/24 dev i0; ip -n "$in" address add 198.51.100.2/24 dev i1
for l in "$ns u0" "$ns i0" "$cl u1" "$in i1"; do set -- $l; ip -n "$1" link set "$2" up; done
ip -n "$in" route add 198.19.0.0/16 via 198.51.100.1
ip -n "$cl" route add default via 198.18.1.1

export MKB_VPN_ENGINE=builtin
vpn() { ip netns exec "$ns" "$bin" --data-dir "$data" "$@"; }
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
names() { local g=$1 from=$2 to=$3; for ((i = from; i <= to; i++)); do printf 'g%02dc%04d ' "$g" "$i"; done; }

vpn init --endpoint 198.18.1.1:51820 --subnet 198.19.0.0/16 --subnet6 fd00:ac::/64 --internal-network 198.51.100.0/24 \
  --dns none --interface "$iface" >/dev/null
vpn up >/dev/null

echo "== $total clients in 50 groups, 5 rules per group"
for g in $(seq 1 50); do
  gn=$(printf 'g%02d' "$g")
  vpn group add "$gn" >/dev/null
  # shellcheck disable=SC2046
  vpn add $(names "$g" 1 "$per") --group "$gn" --no-qr >/dev/null
  host=198.51.100.$((g + 10))
  vpn access allow "group:$gn" "$host" --port 443 --proto tcp >/dev/null
  vpn access allow "group:$gn" "$host" --port 53 --proto udp >/dev/null
  vpn access allow "group:$gn" "$host" --proto icmp >/dev/null
  vpn access allow "group:$gn" 198.51.100.128/25 --port 8000-8100 >/dev/null
  if [ "$g" -eq 50 ]; then vpn access allow "group:$gn" 198.51.100.2 --port 5201 --proto tcp >/dev/null
  else vpn access allow "group:$gn" 198.51.100.64/26 --port 22 --proto tcp >/dev/null; fi
done
# The client that measures throughput: in the last group, whose rules allow iperf3's port.
vpn add "cl$id" --group g50 --no-qr >/dev/null
for r in $(vpn access list --json | grep -B1 '"who": "everyone"' | sed -n 's/.*"id": \([0-9]*\).*/\1/p'); do vpn access revoke "$r" >/dev/null; done
rules=$(vpn access list --json | grep -c '"id"')
peers=$(ip netns exec "$ns" wg show "$iface" peers | wc -l)
elements=$(ip netns exec "$ns" nft list map inet mkb_vpn clients4 | grep -o ' : jump' | wc -l)
chains=$(ip netns exec "$ns" nft list table inet mkb_vpn | grep -c '^\s*chain ')
echo "   live peers $peers, rules $rules, map elements (IPv4) $elements, chains $chains"

echo "== one change on the full server (median of 5)"
allow_ms=$(for i in 1 2 3 4 5; do time_ms vpn access allow group:g07 "198.51.100.$((200 + i))" --port 993 --proto tcp; done | median)
revoke_ids=$(vpn access list --json | grep -B5 '"port": "993"' | sed -n 's/.*"id": \([0-9]*\).*/\1/p')
revoke_ms=$(for r in $revoke_ids; do time_ms vpn access revoke "$r"; done | median)
set_ms=$(for i in 1 2 3 4 5; do time_ms vpn set "g01c000$i" --group g02; done | median)

echo "== up from nothing (down, then up)"
vpn down >/dev/null
up_ms=$(time_ms vpn up)
ip netns exec "$ns" nft list table inet mkb_vpn > "$data/with.nft"
# The same table without access rules: traffic to the internal networks accepted at once (the seed's table).
{ echo "table inet mkb_vpn"; echo "delete table inet mkb_vpn"; cat "$data/with.nft"; } > "$data/load-with.nft"
sed 's/goto access$/accept/' "$data/load-with.nft" > "$data/load-none.nft"
nft_ms=$(for i in 1 2 3; do time_ms ip netns exec "$ns" nft -f "$data/load-with.nft"; done | median)

echo "== iperf3 through the server, 5 s per run, alternating"
ip netns exec "$in" iperf3 -s -B 198.51.100.2 -D --logfile "$data/iperf.log"
MKB_VPN=$bin WG_QUICK_USERSPACE_IMPLEMENTATION=$engine_script ip netns exec "$cl" wg-quick up "$data/clients/cl$id.conf" >/dev/null 2>&1
for i in $(seq 1 50); do ip netns exec "$cl" ping -c1 -W1 198.19.0.1 >/dev/null 2>&1 && break; done
run() {
  ip netns exec "$ns" nft -f "$data/load-$1.nft"
  ip netns exec "$cl" iperf3 -c 198.51.100.2 -t 5 -J 2>/dev/null | awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { printf "%d\n", $2 / 1e6; exit }'
}
with=() none=()
for round in 1 2; do
  none+=("$(run none)"); with+=("$(run with)")
done
avg() { awk '{ s += $1; n++ } END { if (n) printf "%d", s / n; else print 0 }'; }
w=$(printf '%s\n' "${with[@]}" | avg); n=$(printf '%s\n' "${none[@]}" | avg)

echo
printf '%-52s %12s %10s\n' "measure ($total clients, 50 groups, $rules rules)" "result" "target"
printf '%-52s %9d ms %10s\n' "up from nothing (engine, $peers peers, table)" "$up_ms" ""
printf '%-52s %9d ms %10s\n' "  nft load of the whole table with every rule" "$nft_ms" "<2 s"
printf '%-52s %9d ms %10s\n' "access allow (one rule)" "$allow_ms" "<300 ms"
printf '%-52s %9d ms %10s\n' "access revoke (one rule)" "$revoke_ms" "<300 ms"
printf '%-52s %9d ms %10s\n' "set --group (one client)" "$set_ms" "<300 ms"
printf '%-52s %7d Mbit/s (runs: %s)\n' "iperf3 through the server, rules loaded" "$w" "${with[*]}"
printf '%-52s %7d Mbit/s (runs: %s)\n' "iperf3 through the server, no access rules" "$n" "${none[*]}"
awk -v w="$w" -v n="$n" 'BEGIN { if (n > 0) printf "%-52s %11.1f%% %10s\n", "throughput with rules vs none", 100 * w / n, ">=95%" }'
