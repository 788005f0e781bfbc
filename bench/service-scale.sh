#!/usr/bin/env bash
# Service scale benchmark: a live server (wireguard-go, in its own network namespace) filled with
# 10,000 clients. Prints wall time and peak memory of mkb-vpn's verbs, beside the bare floor of the
# same operation done directly with wg(8) on the same interface (the competitor: what any tool that
# shells out to wg can at best do). Targets: one add < 300 ms, list and status < 1 s, a bulk add
# of 1,000 names in one call < 10 s. Prints figures; asserts nothing.
#   sudo bench/service-scale.sh [CLIENTS]     (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-10000}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 6; }
for t in wg wireguard-go ip nft; do command -v $t >/dev/null || { echo "missing $t (run scripts/test.sh once)" >&2; exit 7; }; done

echo "== building (Release, ReadyToRun)"
dotnet publish src/MkbVpn.Cli -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true \
  -o out/bench/mkb-vpn -nologo -v quiet -clp:ErrorsOnly
bin=$PWD/out/bench/mkb-vpn/mkb-vpn

id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-5)
ns=mkbbench$id
iface=mkbb$id
data=$(mktemp -d /tmp/mkb-vpn-bench.XXXXXX)
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  pkill -f "wireguard-go $iface\$" 2>/dev/null || true
  rm -f "/var/run/wireguard/$iface.sock"
  rm -rf "$data"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
export MKB_VPN_ENGINE=${MKB_VPN_ENGINE:-builtin}   # the product default; wireguard-go to compare
vpn() { ip netns exec "$ns" "$bin" --data-dir "$data" "$@"; }
# 10,000 clients need more than a /24: the tunnel subnet is taken from the benchmarking range
# 198.18.0.0/15 (RFC 2544), which exists only inside this namespace.
vpn init --endpoint 198.18.0.1:51820 --subnet 198.19.0.0/16 --subnet6 fd00:b::/64 --internal-network 198.51.100.0/24 \
  --dns none --interface "$iface" >/dev/null
vpn up >/dev/null

# time_ms CMD...: prints wall milliseconds of one run; its peak RSS (KiB) goes to $data/rss
time_ms() {
  local start end
  start=$(date +%s%N)
  /usr/bin/time -o "$data/rss" -f '%M' "$@" >/dev/null 2>&1
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}
rss() { cat "$data/rss"; }
names() { local from=$1 to=$2; for ((i = from; i <= to; i++)); do printf 'c%05d ' "$i"; done; }

echo "== bulk add, 1,000 names per call, up to $total clients"
first=""
n=0
while [ $n -lt "$total" ]; do
  to=$((n + 1000)); [ $to -gt "$total" ] && to=$total
  # shellcheck disable=SC2046
  ms=$(time_ms ip netns exec "$ns" "$bin" --data-dir "$data" add $(names $((n + 1)) $to) --no-qr)
  bulk_rss=$(rss)
  [ -z "$first" ] && first=$ms
  n=$to
  last=$ms
done
peers=$(ip netns exec "$ns" wg show "$iface" peers | wc -l)
echo "   live peers: $peers"

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
one_add=$(for i in 1 2 3 4 5; do time_ms ip netns exec "$ns" "$bin" --data-dir "$data" add "x$i" --no-qr; done | median); add_rss=$(rss)
list_ms=$(for i in 1 2 3; do time_ms ip netns exec "$ns" "$bin" --data-dir "$data" list; done | median); list_rss=$(rss)
list_json=$(for i in 1 2 3; do time_ms ip netns exec "$ns" "$bin" --data-dir "$data" list --json; done | median)
status_ms=$(for i in 1 2 3; do time_ms ip netns exec "$ns" "$bin" --data-dir "$data" status; done | median); status_rss=$(rss)
block_ms=$(time_ms ip netns exec "$ns" "$bin" --data-dir "$data" block x1)
reenable_ms=$(time_ms ip netns exec "$ns" "$bin" --data-dir "$data" reenable x1)
remove_ms=$(time_ms ip netns exec "$ns" "$bin" --data-dir "$data" remove x1 --yes)

# The floor: the same operations straight through wg(8) on the same interface.
wg_one=$(for i in 1 2 3 4 5; do k=$(wg genkey | wg pubkey); time_ms ip netns exec "$ns" wg set "$iface" peer "$k" allowed-ips "198.19.250.$i/32"; done | median)
wg_dump=$(for i in 1 2 3; do time_ms ip netns exec "$ns" wg show "$iface" dump; done | median)
conf=$data/bulk.conf
: > "$conf"
for i in $(seq 1 1000); do printf '[Peer]\nPublicKey = %s\nAllowedIPs = 198.18.%d.%d/32\n' "$(wg genkey | wg pubkey)" $((i / 250 + 100)) $((i % 250 + 1)) >> "$conf"; done
wg_bulk=$(time_ms ip netns exec "$ns" wg addconf "$iface" "$conf")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1; printf "%.1fx", a / b }'; }
echo
printf '%-44s %10s %12s %10s %8s\n' "operation ($total clients live)" "mkb-vpn" "bare wg" "ratio" "target"
printf '%-44s %8d ms %9d ms %10s %8s\n' "add 1 client" "$one_add" "$wg_one" "$(ratio "$one_add" "$wg_one")" "<300 ms"
printf '%-44s %8d ms %9d ms %10s %8s\n' "bulk add 1,000 (first call, empty store)" "$first" "$wg_bulk" "$(ratio "$first" "$wg_bulk")" "<10 s"
printf '%-44s %8d ms %12s %10s %8s\n' "bulk add 1,000 (last call, store full)" "$last" "" "" "<10 s"
printf '%-44s %8d ms %9d ms %10s %8s\n' "status (live: endpoint, handshake, rx/tx)" "$status_ms" "$wg_dump" "$(ratio "$status_ms" "$wg_dump")" "<1 s"
printf '%-44s %8d ms %12s %10s %8s\n' "list" "$list_ms" "" "" "<1 s"
printf '%-44s %8d ms %12s %10s %8s\n' "list --json" "$list_json" "" "" ""
printf '%-44s %8d ms %12s %10s %8s\n' "block 1 / reenable 1 / remove 1" "$block_ms" "" "" ""
printf '%-44s %8d ms\n' "  reenable" "$reenable_ms"
printf '%-44s %8d ms\n' "  remove" "$remove_ms"
echo "peak RSS: bulk add $((bulk_rss / 1024)) MiB, add $((add_rss / 1024)) MiB, list $((list_rss / 1024)) MiB, status $((status_rss / 1024)) MiB"
echo "database: $(du -h "$data/mkb-vpn.db" | cut -f1), config files: $(ls "$data/clients" | wc -l)"
