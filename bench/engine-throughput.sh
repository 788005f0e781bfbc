#!/usr/bin/env bash
# Engine benchmark, side by side in one run: Debian's wireguard-go, the upstream wireguard-go (when its path is
# given) and mkb-vpn's own engine ('mkb-vpn engine'), each on both ends of a two-namespace veth testbed, in
# alternating order over several rounds (these machines are shared and noisy). For each engine and round:
#   iperf3 TCP single stream both directions (Mbit/s), the engines' CPU time during the transfers from /proc
#   (user + system, both engine processes) and so GB moved per engine CPU-second, ping median through the
#   tunnel, one engine's RSS idle (after the handshake) and under load (max sampled during iperf3), and the
#   responder's completed handshakes per second (bench/handshake-load.py: valid initiations from 512 peers).
#   Also how busy the whole machine was during the transfers (/proc/stat): below 100 % the engines left cores idle.
# Then the medians over the rounds and the ratios ours / upstream (the yardstick) and ours / Debian.
# Prints figures; asserts nothing (not a test).
#   sudo bench/engine-throughput.sh [-t SECONDS] [-r ROUNDS] [-u UPSTREAM_WIREGUARD_GO] [-6 | -B] [-H] [-D] [-C CC] [-e LABEL:COMMAND]...
#   (or MKB_VPN_UPSTREAM_WG_GO=/path/to/wireguard-go; -6: IPv6 underlay; -B: both underlays, each engine over IPv4
#   and then over IPv6 (labels ending in /v6) in every round, and each engine's IPv6 / IPv4 ratios; -H: no handshake
#   test; -D: without Debian's;
#   -C: the TCP congestion control iperf3 uses, e.g. cubic (Linux's default) or bbr; without it the system's, which the
#   header names; -e: one more engine, e.g. another build of ours: -e "old:/tmp/old/mkb-vpn engine")
# Addresses (docs/testing.md): underlay 198.18.8.0/24 (fd00:18:8::/64 with -6 or -B), tunnel 203.0.113.0/24.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=10 rounds=2 upstream=${MKB_VPN_UPSTREAM_WG_GO:-} v6=0 both=0 handshakes=1 debian=1 extra=() cc=
while getopts "t:r:u:6BHDC:e:" o; do
  case $o in
    t) secs=$OPTARG ;; r) rounds=$OPTARG ;; u) upstream=$OPTARG ;; 6) v6=1 ;; B) both=1 ;; H) handshakes=0 ;; D) debian=0 ;; C) cc=$OPTARG ;; e) extra+=("$OPTARG") ;;
    *) echo "usage: $0 [-t SECONDS] [-r ROUNDS] [-u UPSTREAM_WIREGUARD_GO] [-6 | -B] [-H: no handshake test] [-D: no Debian] [-C CONGESTION_CONTROL] [-e LABEL:COMMAND]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 6; }
for t in wg wireguard-go ip iperf3 ping python3; do command -v $t >/dev/null || { echo "missing $t (run scripts/test.sh once)" >&2; exit 7; }; done
[ -z "$upstream" ] || [ -x "$upstream" ] || { echo "upstream wireguard-go not executable: $upstream" >&2; exit 7; }
if [ -n "$cc" ]; then
  grep -qw "$cc" /proc/sys/net/ipv4/tcp_available_congestion_control 2>/dev/null || modprobe "tcp_$cc" 2>/dev/null || true
  grep -qw "$cc" /proc/sys/net/ipv4/tcp_available_congestion_control || { echo "TCP congestion control not available: $cc" >&2; exit 7; }
fi

echo "== building mkb-vpn (Release)"
dotnet build src/MkbVpn.Cli -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
bin=$PWD/src/MkbVpn.Cli/bin/Release/net10.0/mkb-vpn
hz=$(getconf CLK_TCK)

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
underlay() { # $1: 4 or 6; sets the underlay addresses and endpoints the next run uses
  if [ "$1" -eq 6 ]; then ua=fd00:18:8::1 ub=fd00:18:8::2 epa="[fd00:18:8::1]:51820" epb="[fd00:18:8::2]:51820"
  else ua=198.18.8.1 ub=198.18.8.2 epa=198.18.8.1:51820 epb=198.18.8.2:51820; fi
}

engine_pids() { # the engine processes of both namespaces (everything there but iperf3 and ping)
  local ns pid
  for ns in $nsa $nsb; do
    for pid in $(ip netns pids $ns 2>/dev/null); do
      case $(cat /proc/$pid/comm 2>/dev/null) in iperf3|ping|"") ;; *) echo $pid ;; esac
    done
  done
}
cpu_ticks() { # user + system ticks of the engines, all threads
  local total=0 pid t
  for pid in $(engine_pids); do
    t=$(awk '{print $14 + $15}' /proc/$pid/stat 2>/dev/null || echo 0)
    total=$((total + ${t:-0}))
  done
  echo $total
}
host_ticks() { # the machine's busy and total CPU ticks (all cores), from /proc/stat
  awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
rss_kib() { # VmRSS of the engine in namespace A
  local pid kib=0
  for pid in $(ip netns pids $nsa); do
    case $(cat /proc/$pid/comm 2>/dev/null) in iperf3|ping|"") ;; *) kib=$(awk '/^VmRSS:/ {print $2}' /proc/$pid/status) ;; esac
  done
  echo $kib
}

# One iperf3 run; prints "Mbit/s bytes engine-cpu-ticks max-rss-KiB host-busy-ticks host-total-ticks".
iperf_run() { # $1: "" or -R
  ip netns exec $nsb iperf3 -s -1 -D -B 203.0.113.2 >/dev/null
  sleep 0.3
  local c0 c1 out peak=0 r
  c0=$(cpu_ticks)
  read -r h0 t0 < <(host_ticks)
  ip netns exec $nsa iperf3 -c 203.0.113.2 -t "$secs" -J ${cc:+-C "$cc"} $1 >"$tmp/iperf.json" 2>&1 &
  local ip=$!
  while kill -0 $ip 2>/dev/null; do r=$(rss_kib); [ "${r:-0}" -gt $peak ] && peak=$r; sleep 0.5; done
  wait $ip || true
  c1=$(cpu_ticks)
  read -r h1 t1 < <(host_ticks)
  python3 - "$tmp/iperf.json" $((c1 - c0)) $peak $((h1 - h0)) $((t1 - t0)) <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = d["end"]["sum_received"]
print(f'{r["bits_per_second"] / 1e6:.0f} {int(r["bytes"])} {sys.argv[2]} {sys.argv[3]} {sys.argv[4]} {sys.argv[5]}')
PY
}

handshake_rate() { # completed handshakes per second of the engine in namespace B, as responder
  [ $handshakes -eq 1 ] || { echo "-"; return; }
  python3 bench/handshake-load.py --ns-gen $nsa --ns-resp $nsb --iface $ifb --target "$epb" --source "$ua" 2>"$tmp/hs.err" || echo "?"
  sed 's/^/    handshakes: /' "$tmp/hs.err" >&2
}

results=$tmp/results
run() { # $1: label, $2: command that starts an engine: ENGINE IFACE
  local label=$1 engine=$2
  ip netns add $nsa; ip netns add $nsb
  ip -n $nsa link set lo up; ip -n $nsb link set lo up
  ip link add veA$id netns $nsa type veth peer name veB$id netns $nsb
  ip -n $nsa addr add 198.18.8.1/24 dev veA$id; ip -n $nsb addr add 198.18.8.2/24 dev veB$id
  ip -n $nsa addr add fd00:18:8::1/64 dev veA$id nodad; ip -n $nsb addr add fd00:18:8::2/64 dev veB$id nodad
  ip -n $nsa link set veA$id up; ip -n $nsb link set veB$id up
  ip netns exec $nsa $engine $ifa >/dev/null 2>&1
  ip netns exec $nsb $engine $ifb >/dev/null 2>&1
  ip netns exec $nsa wg set $ifa private-key "$tmp/a.key" listen-port 51820 peer "$pb" allowed-ips 203.0.113.2/32 endpoint "$epb"
  ip netns exec $nsb wg set $ifb private-key "$tmp/b.key" listen-port 51820 peer "$pa" allowed-ips 203.0.113.1/32 endpoint "$epa"
  ip -n $nsa addr add 203.0.113.1/24 dev $ifa; ip -n $nsa link set $ifa up
  ip -n $nsb addr add 203.0.113.2/24 dev $ifb; ip -n $nsb link set $ifb up
  for _ in $(seq 50); do ip netns exec $nsa ping -c1 -W1 203.0.113.2 >/dev/null 2>&1 && break; done
  sleep 2
  local rss0 fwd rev lat hs
  rss0=$(rss_kib)
  read -r fwd fbytes fticks fpeak fhb fht < <(iperf_run "")
  read -r rev rbytes rticks rpeak rhb rht < <(iperf_run "-R")
  # Latency: the median of 300 pings (the average is at the mercy of a few scheduling outliers on shared cores).
  lat=$(ip netns exec $nsa ping -c 300 -i 0.005 -n 203.0.113.2 | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
  local gbcpu peak
  gbcpu=$(awk -v b=$((fbytes + rbytes)) -v t=$((fticks + rticks)) -v hz=$hz 'BEGIN { printf "%.3f", (t > 0) ? b / 1e9 / (t / hz) : 0 }')
  peak=$(( fpeak > rpeak ? fpeak : rpeak ))
  # How busy the whole machine was during the transfers: below 100 % the engines left cores idle (waiting, not computing).
  busy=$(awk -v b=$((fhb + rhb)) -v t=$((fht + rht)) 'BEGIN { printf "%.0f", (t > 0) ? 100 * b / t : 0 }')
  hs=$(handshake_rate)
  printf '%-20s  A->B %6s Mbit/s  B->A %6s Mbit/s  %6s GB/engine-CPU-s  ping %6s ms  RSS idle %6d KiB load %6d KiB  handshakes %6s/s  host busy %3s %%\n' \
    "$label" "$fwd" "$rev" "$gbcpu" "$lat" "$rss0" "$peak" "$hs" "$busy"
  echo "$label $fwd $rev $gbcpu $lat $rss0 $peak $hs $busy" >>"$results"
  teardown
}

engines=()
[ $debian -eq 1 ] && engines+=("debian-wg-go:wireguard-go")
[ -n "$upstream" ] && engines+=("upstream-wg-go:$upstream")
engines+=("mkb-vpn:$bin engine")
engines+=("${extra[@]}")
ccname=${cc:-"$(cat /proc/sys/net/ipv4/tcp_congestion_control), the system's"}
families=(4); [ $v6 -eq 1 ] && families=(6); [ $both -eq 1 ] && families=(4 6)
echo "== $rounds rounds, alternating order; iperf3 TCP single stream ${secs}s per direction; underlay $([ $both -eq 1 ] && echo "IPv4 and IPv6 (labels /v6)" || { [ $v6 -eq 1 ] && echo IPv6 || echo IPv4; }); TCP congestion control $ccname"
for r in $(seq "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then order=("${engines[@]}"); else order=(); for ((i=${#engines[@]}-1; i>=0; i--)); do order+=("${engines[$i]}"); done; fi
  for e in "${order[@]}"; do
    # With -B each engine runs over both underlays back to back, the first one alternating by round too.
    fams=("${families[@]}"); [ ${#fams[@]} -eq 2 ] && [ $((r % 2)) -eq 0 ] && fams=(6 4)
    for f in "${fams[@]}"; do
      underlay "$f"
      label=${e%%:*}; [ $both -eq 1 ] && [ "$f" -eq 6 ] && label=$label/v6
      run "$label" "${e#*:}"
    done
  done
done

echo "== medians over $rounds rounds"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], []).append(f[1:])
def med(label, i):
    vals = [float(r[i]) for r in rows.get(label, []) if r[i] not in ("-", "?", "")]
    return statistics.median(vals) if vals else float("nan")
cols = ["A->B Mbit/s", "B->A Mbit/s", "GB/CPU-s", "ping ms", "RSS idle KiB", "RSS load KiB", "handshakes/s", "host busy %"]
print(f'{"":34}' + "".join(f"{c:>14}" for c in cols))
for label in rows:
    print(f"{label:34}" + "".join(f"{med(label, i):14.{3 if i == 2 else 2}f}" for i in range(len(cols))))
# Every build of ours (mkb-vpn and each -e engine) against each wireguard-go over the same underlay.
bases = ("upstream-wg-go", "debian-wg-go")
for base in bases:
    for suffix in ("", "/v6"):
        for ours in [l for l in rows if l.endswith(suffix) and (suffix or not l.endswith("/v6")) and l[:len(l) - len(suffix)] not in bases]:
            if base + suffix in rows:
                print(f"{ours + ' / ' + base + suffix:34}" + "".join(f"{med(ours, i) / med(base + suffix, i):13.2f}x" for i in range(len(cols))))
# With -B: each engine over IPv6 against itself over IPv4 in the same run.
for label in [l for l in rows if l.endswith("/v6") and l[:-3] in rows]:
    print(f"{label + ' / IPv4':34}" + "".join(f"{med(label, i) / med(label[:-3], i):13.2f}x" for i in range(len(cols))))
print("targets: >= 1.5x upstream in Mbit/s and GB/CPU-s; RSS idle <= 15 MB (15360 KiB); IPv6 / IPv4 within 0.90-1.10x; lower ping and RSS ratios are better")
PY
