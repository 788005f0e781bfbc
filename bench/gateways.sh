#!/usr/bin/env bash
# Gateways benchmark (issue 13): two gateways on one PostgreSQL registry, each in its own network
# namespace with the built-in engine, CLIENTS clients served by both. Prints how long
# 'up --foreground --gateway' takes to put every peer on its interface, and how long after a
# 'block' returns the client is off each gateway (polled with wg(8) every 5 ms), and how long after
# an access change returns ('set --group', 'access allow', 'access revoke') it is in both gateways'
# nftables (polled with nft(8) every 5 ms). Targets: up of 10,000 peers < 5 s; a change on both
# gateways < 1 s. Prints figures; asserts nothing.
# A throwaway PostgreSQL cluster (Debian's initdb/pg_ctl as the postgres user) in a temporary
# directory, reached over its Unix socket; removed at the end with everything else.
# MEMBERS (a multiple of 1,000): the first MEMBERS clients are in a group "office" with a rule, so
# each gateway's nftables map holds MEMBERS elements while single clients' rules change.
#   sudo bench/gateways.sh [CLIENTS] [CHANGES] [MEMBERS]     (defaults 10000, 5 and 0)
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-10000}
changes=${2:-5}
members=${3:-0}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 6; }
for t in wg ip nft; do command -v $t >/dev/null || { echo "missing $t (run scripts/test.sh once)" >&2; exit 7; }; done
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || { echo "missing PostgreSQL's server (apt-get install postgresql)" >&2; exit 7; }

echo "== building (native, as install.sh installs it; a few minutes)"
dotnet publish src/MkbVpn.Cli -c Release -r linux-x64 -o out/bench/mkb-vpn -nologo -v quiet -clp:ErrorsOnly
dotnet publish src/MkbVpn.Engine -c Release -r linux-x64 -o out/bench/mkb-vpn -nologo -v quiet -clp:ErrorsOnly
bin=$PWD/out/bench/mkb-vpn/mkb-vpn

id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-5)
nsa=mkbgwa$id nsb=mkbgwb$id ifa=mkbga$id ifb=mkbgb$id
work=$(mktemp -d /tmp/mkb-vpn-gwbench.XXXXXX)
chmod 755 "$work"
pgdir=$work/pg
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$nsa" 2>/dev/null || true
  ip netns del "$nsb" 2>/dev/null || true
  # The gateways take their interfaces (and engines) down on SIGTERM; only stale sockets are left to remove.
  for i in "$ifa" "$ifb"; do rm -f "/var/run/wireguard/$i.sock"; done
  [ -f "$pgdir/data/postmaster.pid" ] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== PostgreSQL in $pgdir"
install -d -o postgres -m 700 "$pgdir"
runuser -u postgres -- "$pgbin/initdb" -D "$pgdir/data" -U postgres --auth-local=trust --auth-host=reject --no-sync >/dev/null
port=$(( 20000 + RANDOM % 20000 ))
runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w -t 60 start \
  -o "-p $port -k $pgdir -c listen_addresses='' -c fsync=off -c synchronous_commit=off" >/dev/null
chmod 755 "$pgdir"
store="host=$pgdir port=$port dbname=postgres user=postgres"
vpn() { "$bin" --store "$store" --data-dir "$work/admin" "$@"; }

ip netns add "$nsa"; ip netns add "$nsb"
ip -n "$nsa" link set lo up; ip -n "$nsb" link set lo up
# 10,000 clients need more than a /24: the tunnel subnet is taken from the benchmarking range
# 198.18.0.0/15 (RFC 2544), which exists only inside these namespaces.
vpn init --endpoint 198.18.0.1:51820 --subnet 198.19.0.0/16 --subnet6 fd00:b::/64 --internal-network 198.51.100.0/24 \
  --dns none --interface "$ifa" >/dev/null
vpn gateway add b --endpoint 198.18.0.2:51821 --listen-port 51821 --interface "$ifb" >/dev/null

vpn group add office >/dev/null
vpn access allow group:office 198.51.100.0/25 >/dev/null
echo "== bulk add of $total clients (1,000 per call; $members in group office)"
start=$(date +%s%N)
n=0
while [ $n -lt "$total" ]; do
  to=$((n + 1000)); [ $to -gt "$total" ] && to=$total
  grp=(); [ "$to" -le "$members" ] && grp=(--group office)
  # shellcheck disable=SC2046
  vpn add $(for ((i = n + 1; i <= to; i++)); do printf 'c%05d ' "$i"; done) "${grp[@]}" --no-qr >/dev/null
  n=$to
done
echo "bulk add: $(( ($(date +%s%N) - start) / 1000000 )) ms"

peers() { ip netns exec "$1" wg show "$2" peers 2>/dev/null | wc -l; }
# wait_count NS IFACE COUNT DEADLINE_MS: prints ms until the interface has COUNT peers, or "timeout"
wait_count() {
  local t0 now; t0=$(date +%s%N)
  while true; do
    [ "$(peers "$1" "$2")" -eq "$3" ] && { echo $(( ($(date +%s%N) - t0) / 1000000 )); return; }
    now=$(date +%s%N)
    [ $(( (now - t0) / 1000000 )) -gt "$4" ] && { echo timeout; return; }
    sleep 0.005
  done
}

echo "== up --foreground --gateway, both at once"
start=$(date +%s%N)
MKB_VPN_ENGINE=builtin ip netns exec "$nsa" "$bin" --store "$store" --data-dir "$work/a" up --foreground --gateway main >"$work/a.log" 2>&1 &
pids+=($!)
MKB_VPN_ENGINE=builtin ip netns exec "$nsb" "$bin" --store "$store" --data-dir "$work/b" up --foreground --gateway b >"$work/b.log" 2>&1 &
pids+=($!)
wa=$(wait_count "$nsa" "$ifa" "$total" 120000)
echo "gateway main: $total peers $(( ($(date +%s%N) - start) / 1000000 )) ms after start ($wa ms of waiting)"
wait_count "$nsb" "$ifb" "$total" 120000 >/dev/null
echo "gateway b:    $total peers $(( ($(date +%s%N) - start) / 1000000 )) ms after start"

echo "== block one client at a time: ms after the command returned until it is off each gateway"
left=$total
for ((i = 1; i <= changes; i++)); do
  name=$(printf 'c%05d' "$i")
  t0=$(date +%s%N)
  vpn block "$name" >/dev/null
  cmd=$(( ($(date +%s%N) - t0) / 1000000 ))
  left=$((left - 1))
  a=$(wait_count "$nsa" "$ifa" "$left" 10000)
  b=$(wait_count "$nsb" "$ifb" "$left" 10000)
  echo "block $name: command $cmd ms; off main after $a ms, then off b after $b ms more"
done
# wait_nft NS PATTERN present|absent DEADLINE_MS NFT-ARGS...: ms until 'nft list NFT-ARGS' in NS shows (or no longer shows) PATTERN
wait_nft() {
  local ns=$1 pat=$2 want=$3 limit=$4 t0 now found; shift 4
  t0=$(date +%s%N)
  while true; do
    if ip netns exec "$ns" nft list "$@" 2>/dev/null | grep -qF -- "$pat"; then found=present; else found=absent; fi
    [ "$found" = "$want" ] && { echo $(( ($(date +%s%N) - t0) / 1000000 )); return; }
    now=$(date +%s%N)
    [ $(( (now - t0) / 1000000 )) -gt "$limit" ] && { echo timeout; return; }
    sleep 0.005
  done
}
# timed CMD...: runs a verb, prints its ms
timed() { local t0; t0=$(date +%s%N); vpn "$@" >/dev/null; echo $(( ($(date +%s%N) - t0) / 1000000 )); }
both() {   # both LABEL CMD_MS PATTERN present|absent NFT-ARGS...
  local label=$1 cmd=$2 pat=$3 want=$4; shift 4
  local a b
  a=$(wait_nft "$nsa" "$pat" "$want" 10000 "$@")
  b=$(wait_nft "$nsb" "$pat" "$want" 10000 "$@")
  echo "$label: command $cmd ms; in main's firewall after $a ms, then in b's after $b ms more"
}

echo "== rule changes: ms after the command returned until both gateways' nftables have it (per element, no reload)"
vpn group add staff >/dev/null
vpn access allow group:staff 198.51.100.20 >/dev/null
for ((i = 1; i <= changes; i++)); do
  name=$(printf 'c%05d' $((total - i + 1)))
  addr=$(vpn show "$name" --json | grep -o '"address4": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
  cmd=$(timed set "$name" --group staff)
  both "set $name --group staff" "$cmd" "$addr : jump g" present map inet mkb_vpn clients4
  t0=$(date +%s%N)
  rule=$(vpn access allow "client:$name" 198.51.100.30 --json | grep -o '"id": *[0-9]*' | head -1 | grep -o '[0-9]*$')
  cmd=$(( ($(date +%s%N) - t0) / 1000000 ))
  both "access allow client:$name" "$cmd" "$addr : jump c" present map inet mkb_vpn clients4
  cmd=$(timed access revoke "$rule")
  both "access revoke $rule" "$cmd" "$addr : jump g" present map inet mkb_vpn clients4
done
group=$(ip netns exec "$nsa" nft list map inet mkb_vpn clients4 | grep -F "$addr : jump g" | grep -o "jump g[0-9]*" | head -1 | cut -c6-)
for ((i = 1; i <= changes; i++)); do
  t0=$(date +%s%N)
  rule=$(vpn access allow group:staff "198.51.100.$((100 + i))" --port 443 --proto tcp --json | grep -o '"id": *[0-9]*' | head -1 | grep -o '[0-9]*$')
  cmd=$(( ($(date +%s%N) - t0) / 1000000 ))
  both "access allow group:staff 198.51.100.$((100 + i)) (a rule for $changes members)" "$cmd" "198.51.100.$((100 + i)) tcp dport 443" present chain inet mkb_vpn "$group"
done
grep -h "full reconcile\|applied changes:" "$work/a.log" "$work/b.log" | sed 's/^/gateway log: /' || true
grep -h "registry unreachable" "$work/a.log" "$work/b.log" || true
