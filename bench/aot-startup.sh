#!/usr/bin/env bash
# Native vs JIT mkb-vpn, side by side in one run: the same sources built twice, the JIT build ('dotnet build',
# run through its apphost) and the native one ('dotnet publish -r linux-x64', NativeAOT, what install.sh installs).
# Alternating the order, it prints the median of each:
#   CLI start: '--version', and 'list' on an initialised store with a few clients (no interface)
#   on a live server (built-in engine, own network namespace) with CLIENTS clients: one 'add', 'status', 'list'
#   the engine's idle RSS: 'mkb-vpn engine' on a TUN in a namespace, one peer, after a handshake
#   (with -G, also the native engine under GC settings given as environment variables, to choose the defaults)
#   with -T, engine throughput native vs JIT (bench/engine-throughput.sh with the native engine added)
# Targets (issue 8): start <= 20 ms; add at 10,000 <= 40 ms; status <= 150 ms; engine idle RSS <= 15 MB.
# Prints figures; asserts nothing (not a test).
#   sudo bench/aot-startup.sh [-n RUNS] [-c CLIENTS] [-G] [-T]      (defaults: 11 runs, 10000 clients)
# Addresses (docs/testing.md): tunnel subnet 198.19.0.0/16 + fd00:b::/64 inside the namespace only (as
# bench/service-scale.sh), engine underlay 198.18.9.0/24, engine tunnel 203.0.113.0/24.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=11 total=10000 gc=0 throughput=0
while getopts "n:c:GT" o; do
  case $o in
    n) runs=$OPTARG ;; c) total=$OPTARG ;; G) gc=1 ;; T) throughput=1 ;;
    *) echo "usage: $0 [-n RUNS] [-c CLIENTS] [-G: GC settings for the engine] [-T: engine throughput too]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 6; }
for t in wg ip nft ping; do command -v $t >/dev/null || { echo "missing $t (run scripts/test.sh once)" >&2; exit 7; }; done

echo "== building: JIT (dotnet build) and native (dotnet publish, NativeAOT)"
dotnet build src/MkbVpn.Cli -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
jit=$PWD/src/MkbVpn.Cli/bin/Release/net10.0/mkb-vpn
dotnet publish src/MkbVpn.Cli -c Release -r linux-x64 -o out/bench/aot -nologo -v quiet -clp:ErrorsOnly >/dev/null
aot=$PWD/out/bench/aot/mkb-vpn
# The engine alone (src/MkbVpn.Engine), as the package and install.sh ship it beside mkb-vpn: 'up' runs it from there.
dotnet publish src/MkbVpn.Engine -c Release -r linux-x64 -o out/bench/aot -nologo -v quiet -clp:ErrorsOnly >/dev/null
eng=$PWD/out/bench/aot/mkb-vpn-engine
echo "   native binary: $(du -h "$aot" | cut -f1) (+ $(cd out/bench/aot && ls ./*.so | tr '\n' ' ' | sed 's|\./||g'))"

id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-5)
ns=mkbaot$id iface=mkba$id
ena=mkbEa$id enb=mkbEb$id eia=mkbea$id eib=mkbeb$id
tmp=$(mktemp -d /tmp/mkb-vpn-aot-bench.XXXXXX)
small=$tmp/small data=$tmp/live
engines_down() {
  for n in $ena $enb; do
    for pid in $(ip netns pids $n 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    ip netns del $n 2>/dev/null || true
  done
  rm -f /var/run/wireguard/$eia.sock /var/run/wireguard/$eib.sock
}
cleanup() {
  ip netns exec "$ns" "$aot" --data-dir "$data" down >/dev/null 2>&1 || true
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -f "/var/run/wireguard/$iface.sock"
  engines_down
  rm -rf "$tmp"
}
trap cleanup EXIT

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# time_us CMD...: wall microseconds of one run (output discarded)
time_us() {
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s%N)
  echo $(((end - start) / 1000))
}
ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1; printf "%.1fx", a / b }'; }
# bench LABEL TARGET CMD-WITH-@BIN@...: runs CMD $runs times per build, alternating which goes first; prints a row
rows=()
bench() {
  local label=$1 target=$2; shift 2
  local j=() a=() i cmd_j cmd_a
  cmd_j=("${@//@BIN@/$jit}") cmd_a=("${@//@BIN@/$aot}")
  time_us "${cmd_j[@]}" >/dev/null; time_us "${cmd_a[@]}" >/dev/null   # warm the page cache
  for ((i = 0; i < runs; i++)); do
    if [ $((i % 2)) -eq 0 ]; then j+=("$(time_us "${cmd_j[@]}")"); a+=("$(time_us "${cmd_a[@]}")")
    else a+=("$(time_us "${cmd_a[@]}")"); j+=("$(time_us "${cmd_j[@]}")"); fi
  done
  local mj ma
  mj=$(printf '%s\n' "${j[@]}" | median) ma=$(printf '%s\n' "${a[@]}" | median)
  rows+=("$(printf '%-40s %9s ms %9s ms %8s %10s' "$label" "$(ms "$mj")" "$(ms "$ma")" "$(ratio "$mj" "$ma")" "$target")")
  echo "   $label: JIT $(ms "$mj") ms, native $(ms "$ma") ms"
}
# peak_kib CMD...: peak RSS of one run
peak_kib() { /usr/bin/time -f '%M' -o "$tmp/rss" "$@" >/dev/null 2>&1 || true; cat "$tmp/rss"; }

echo "== CLI start ($runs runs each, alternating)"
"$aot" --data-dir "$small" init --endpoint 198.18.0.1:51820 --subnet 203.0.113.0/24 --no-ipv6 --dns none --interface "$iface" >/dev/null
"$aot" --data-dir "$small" add a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 --no-qr >/dev/null
bench "--version" "<=20 ms" "@BIN@" --version
bench "list (10 clients, no interface)" "<=20 ms" "@BIN@" --data-dir "$small" list
bench "list --json (10 clients)" "" "@BIN@" --data-dir "$small" list --json
rss_list_j=$(peak_kib "$jit" --data-dir "$small" list) rss_list_a=$(peak_kib "$aot" --data-dir "$small" list)

echo "== a live server with $total clients (built-in engine, namespace $ns)"
ip netns add "$ns"
ip -n "$ns" link set lo up
export MKB_VPN_ENGINE=builtin
vpn() { ip netns exec "$ns" "$aot" --data-dir "$data" "$@"; }
vpn init --endpoint 198.18.0.1:51820 --subnet 198.19.0.0/16 --subnet6 fd00:b::/64 --internal-network 198.51.100.0/24 \
  --dns none --interface "$iface" >/dev/null
vpn up >/dev/null
names() { local from=$1 to=$2; for ((i = from; i <= to; i++)); do printf 'c%05d ' "$i"; done; }
n=0
while [ $n -lt "$total" ]; do
  to=$((n + 1000)); [ $to -gt "$total" ] && to=$total
  # shellcheck disable=SC2046
  vpn add $(names $((n + 1)) $to) --no-qr >/dev/null
  n=$to
done
echo "   live peers: $(ip netns exec "$ns" wg show "$iface" peers | wc -l)"
seq_add=0
add_one() { seq_add=$((seq_add + 1)); ip netns exec "$ns" "$1" --data-dir "$data" add "x$seq_add" --no-qr; }
# 'add' makes a new client each run: the two builds take turns by hand.
aj=() aa=()
for ((i = 0; i < runs; i++)); do
  if [ $((i % 2)) -eq 0 ]; then aj+=("$(time_us add_one "$jit")"); aa+=("$(time_us add_one "$aot")")
  else aa+=("$(time_us add_one "$aot")"); aj+=("$(time_us add_one "$jit")"); fi
done
mj=$(printf '%s\n' "${aj[@]}" | median) ma=$(printf '%s\n' "${aa[@]}" | median)
rows+=("$(printf '%-40s %9s ms %9s ms %8s %10s' "add 1 client ($total live)" "$(ms "$mj")" "$(ms "$ma")" "$(ratio "$mj" "$ma")" "<=40 ms")")
echo "   add: JIT $(ms "$mj") ms, native $(ms "$ma") ms"
bench "status ($total live)" "<=150 ms" ip netns exec "$ns" "@BIN@" --data-dir "$data" status
bench "list ($total)" "" ip netns exec "$ns" "@BIN@" --data-dir "$data" list
rss_status_j=$(peak_kib ip netns exec "$ns" "$jit" --data-dir "$data" status)
rss_status_a=$(peak_kib ip netns exec "$ns" "$aot" --data-dir "$data" status)
vpn down >/dev/null
ip netns del "$ns"

# engine_rss "ENV=VALUE ..." COMMAND: the engine's VmRSS (KiB) idle after a handshake with a second engine
# (COMMAND takes the interface name: "$jit engine", "$aot engine" or "$eng")
engine_rss() {
  local env=$1 bin=$2 pid kib=0
  ip netns add $ena; ip netns add $enb
  ip -n $ena link set lo up; ip -n $enb link set lo up
  ip link add veA$id netns $ena type veth peer name veB$id netns $enb
  ip -n $ena addr add 198.18.9.1/24 dev veA$id; ip -n $enb addr add 198.18.9.2/24 dev veB$id
  ip -n $ena link set veA$id up; ip -n $enb link set veB$id up
  # shellcheck disable=SC2086
  ip netns exec $ena env $env $bin $eia >/dev/null 2>&1
  ip netns exec $enb "$aot" engine $eib >/dev/null 2>&1
  ip netns exec $ena wg set $eia private-key "$tmp/a.key" listen-port 51820 peer "$pb" allowed-ips 203.0.113.2/32 endpoint 198.18.9.2:51820
  ip netns exec $enb wg set $eib private-key "$tmp/b.key" listen-port 51820 peer "$pa" allowed-ips 203.0.113.1/32 endpoint 198.18.9.1:51820
  ip -n $ena addr add 203.0.113.1/24 dev $eia; ip -n $ena link set $eia up
  ip -n $enb addr add 203.0.113.2/24 dev $eib; ip -n $enb link set $eib up
  for _ in $(seq 30); do ip netns exec $ena ping -c1 -W1 203.0.113.2 >/dev/null 2>&1 && break; done
  ip netns exec $ena ping -c 20 -i 0.05 -q 203.0.113.2 >/dev/null 2>&1 || true
  sleep 3
  for pid in $(ip netns pids $ena); do kib=$(awk '/^VmRSS:/ {print $2}' /proc/$pid/status); done
  engines_down
  echo "$kib"
}
echo "== engine idle RSS (after a handshake and 20 pings; 3 runs each, alternating)"
ka=$(wg genkey) kb=$(wg genkey)
pa=$(echo "$ka" | wg pubkey) pb=$(echo "$kb" | wg pubkey)
echo "$ka" >"$tmp/a.key"; echo "$kb" >"$tmp/b.key"; chmod 600 "$tmp"/*.key
ej=() ea=() ee=()
for i in 1 2 3; do
  if [ $((i % 2)) -eq 1 ]; then ej+=("$(engine_rss "" "$jit engine")"); ea+=("$(engine_rss "" "$aot engine")"); ee+=("$(engine_rss "" "$eng")")
  else ee+=("$(engine_rss "" "$eng")"); ea+=("$(engine_rss "" "$aot engine")"); ej+=("$(engine_rss "" "$jit engine")"); fi
done
rj=$(printf '%s\n' "${ej[@]}" | median) ra=$(printf '%s\n' "${ea[@]}" | median) re=$(printf '%s\n' "${ee[@]}" | median)
rows+=("$(printf '%-40s %8d KiB %8d KiB %8s %10s' "engine idle RSS ('mkb-vpn engine')" "$rj" "$ra" "$(ratio "$rj" "$ra")" "<=15 MB")")
rows+=("$(printf '%-40s %8d KiB %8d KiB %8s %10s' "engine idle RSS (native mkb-vpn-engine)" "$rj" "$re" "$(ratio "$rj" "$re")" "<=15 MB")")
if [ $gc -eq 1 ]; then
  echo "== native engine idle RSS under GC settings (environment; the build's defaults are in src/MkbVpn.Cli/MkbVpn.Cli.csproj)"
  for env in "DOTNET_gcConcurrent=1" "DOTNET_gcConcurrent=0" "DOTNET_GCgen0size=0x80000" "DOTNET_GCgen0size=0x200000" \
             "DOTNET_GCHeapHardLimit=0x2000000" "DOTNET_GCConserveMemory=9" "DOTNET_GCgen0size=0x80000 DOTNET_GCConserveMemory=9"; do
    v=(); for i in 1 2 3; do v+=("$(engine_rss "$env" "$aot engine")"); done
    printf '   %-52s %8d KiB\n' "$env" "$(printf '%s\n' "${v[@]}" | median)"
  done
fi

echo
printf '%-40s %12s %12s %8s %10s\n' "median of $runs runs" "JIT" "native" "JIT/nat" "target"
printf '%s\n' "${rows[@]}"
echo "peak RSS: list (10) JIT $((rss_list_j / 1024)) MiB / native $((rss_list_a / 1024)) MiB; status ($total) JIT $((rss_status_j / 1024)) MiB / native $((rss_status_a / 1024)) MiB"
echo "load while measuring: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

if [ $throughput -eq 1 ]; then
  echo
  echo "== engine throughput, native vs JIT (bench/engine-throughput.sh -D -H -e native:...)"
  bench/engine-throughput.sh -D -H -t 8 -r 2 -e "native:$aot engine"
fi
