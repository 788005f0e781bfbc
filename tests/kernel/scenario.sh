#!/bin/bash
# The end-to-end scenario on kernel WireGuard. Runs inside the VM that tests/kernel/run.sh boots,
# as root, on the host's root file system (read-only; tmpfs on /tmp and /run); $1 is the
# writable share where "RESULT name pass|fail detail" lines and a final DONE line go.
#
# The office in network namespaces (docs/testing.md addresses only), as in the userspace test
# (tests/MkbVpn.EndToEnd.Tests/ServerScenarioTests.cs):
#   server   - mkb-vpn's interface, kernel WireGuard chosen by itself (module loaded, no --engine);
#              underlay 198.18.1.1 (to A) and 198.18.2.1 (to B); internal network 198.51.100.1/24
#   client A - 198.18.1.2, kernel WireGuard, brought up with wg-quick from the file 'add' wrote
#   client B - 198.18.2.2, wireguard-go, loaded from its file the way wg-quick does it
#   internal - 198.51.100.2, a host on the internal network, routing back via the server
# .NET runs 25-30x slower here than on the host: mkb-vpn is run as few times as the scenario needs.
set -u
out=${1:?usage: scenario.sh RESULTS_DIR}/results
mkb=$(sed -n 's/.* mkbvpn=\([^ ]*\).*/\1/p' /proc/cmdline)
export DOTNET_TieredPGO=0 DOTNET_TC_QuickJitForLoops=1 DOTNET_ReadyToRun=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n' | cut -c1-5)
S=mkbS$id A=mkbA$id B=mkbB$id I=mkbI$id
sif=mkbs$id a=a$id b=b$id
data=/tmp/mkb-kvm-$id
shim=/tmp/mkb-kvm-shim-$id
server_tunnel=203.0.113.1 internal_host=198.51.100.2

cleanup() {
  for ns in $S $A $B $I; do ip netns del "$ns" 2>/dev/null; done
  [ -n "${gopid:-}" ] && kill "$gopid" 2>/dev/null
  rm -rf "$data" "$shim" "/run/wireguard/$b.sock"
}
trap cleanup EXIT

ms_now() { echo $(( $(date +%s%N) / 1000000 )); }
result() {   # name pass|fail detail...
  local name=$1 verdict=$2; shift 2
  echo "RESULT $name $verdict $*" | tee -a "$out"
}
# check NAME DETAIL COMMAND...: one result from a command's exit status.
check() {
  local name=$1 detail=$2; shift 2
  if "$@"; then result "$name" pass "$detail"; else result "$name" fail "$detail"; fi
}

# mkb-vpn in the server namespace; its output is kept in $vpn_out, its time printed.
vpn() {
  local t0 rc
  t0=$(ms_now)
  vpn_out=$(ip netns exec "$S" "$mkb" --data-dir "$data" "$@" 2>&1); rc=$?
  echo "vm: mkb-vpn $* -> exit $rc in $(( $(ms_now) - t0 )) ms"
  [ -z "$vpn_out" ] || sed 's/^/    /' <<<"$vpn_out"
  return $rc
}

ping_ok() {   # namespace address [wait seconds]
  ip netns exec "$1" ping -c 1 -W "${3:-1}" "$2" >/dev/null 2>&1
}
# wait_until SECONDS COMMAND...: polls until the command succeeds; prints "MS ms, N tries".
wait_until() {
  local limit=$(( $1 * 1000 )) t0 now tries; shift
  t0=$(ms_now) tries=0
  while true; do
    tries=$((tries + 1))
    if "$@"; then echo "$(( $(ms_now) - t0 )) ms, $tries tries"; return 0; fi
    now=$(ms_now)
    [ $(( now - t0 )) -lt "$limit" ] || return 1
  done
}
# first_reply NS: pings the server's tunnel address every 0.1 s for up to 40 s; prints the wall
# clock (ms) of the first reply and its sequence number (1: the very first probe was answered),
# or nothing. One ping process per client, started at once: on a loaded host starting it
# ('ip netns exec', ping) can take a second, which the sequence number tells apart.
first_reply() {
  ip netns exec "$1" ping -D -n -c 1 -i 0.1 -w 40 $server_tunnel 2>/dev/null |
    sed -n 's/^\[\([0-9]*\)\.\([0-9][0-9][0-9]\)[0-9]*\].*bytes from.*icmp_seq=\([0-9]*\).*/\1\2 \3/p'
}
# recovered NAME LABEL T0 "MS SEQ": one result; served within 2 s of T0, or by the first probe.
recovered() {
  local name=$1 label=$2 t0=$3 ms seq
  read -r ms seq <<<"$4"
  if [ -z "$ms" ]; then result "$name" fail "$label: no reply within 40 s"; return; fi
  echo "vm: $label: served again $((ms - t0)) ms after mkb-vpn returned (reply to probe $seq, probes every 100 ms)"
  check "$name" "$label: $((ms - t0)) ms, probe $seq (promise: < 2000 ms)" test $((ms - t0)) -lt 2000 -o "$seq" = 1
}
handshake() {   # namespace interface -> latest handshake (unix seconds) of its first peer
  ip netns exec "$1" wg show "$2" latest-handshakes 2>/dev/null | awk 'NR == 1 { print $2 }'
}
server_peers() { ip netns exec "$S" wg show "$sif" peers 2>/dev/null | grep -c . ; }
link_kind() { ip -n "$1" -d link show dev "$2" 2>/dev/null | grep -q "$3"; }

add_ns() { ip netns add "$1" && ip -n "$1" link set lo up; }
veth() {   # ns1 if1 addr1 ns2 if2 addr2
  ip -n "$1" link add "$2" type veth peer name "$5" netns "$4" &&
    ip -n "$1" address add "$3" dev "$2" && ip -n "$4" address add "$6" dev "$5" &&
    ip -n "$1" link set "$2" up && ip -n "$4" link set "$5" up
}

echo "vm: scenario $id starts at $(cut -d' ' -f1 /proc/uptime) s of uptime"
t_mod=$(ms_now)
check kernel_module "modprobe wireguard" modprobe wireguard
echo "vm: modprobe wireguard took $(( $(ms_now) - t_mod )) ms"
modprobe tun   # /dev/net/tun for wireguard-go and the built-in engine

if ! { add_ns "$S" && add_ns "$I" && add_ns "$A" && add_ns "$B" &&
       veth "$S" i0 198.51.100.1/24 "$I" i1 "$internal_host/24" &&
       ip -n "$I" route add 203.0.113.0/24 via 198.51.100.1 &&
       veth "$S" ua0 198.18.1.1/24 "$A" ua1 198.18.1.2/24 &&
       veth "$S" ub0 198.18.2.1/24 "$B" ub1 198.18.2.2/24 &&
       ip -n "$A" route add default via 198.18.1.1 && ip -n "$B" route add default via 198.18.2.1; }; then
  result testbed fail "cannot build the namespaces"
  echo DONE >> "$out"; exit 1
fi

# ---- init, up: kernel WireGuard chosen because the module is loaded ----------------------
vpn init --endpoint 198.18.1.1:51820 --subnet 203.0.113.0/24 --subnet6 fd00:5e:1::/64 \
  --internal-network 198.51.100.0/24 --dns none --interface "$sif"
check init "" test $? -eq 0
vpn up
rc=$?
check up_chooses_kernel "up said: $(head -1 <<<"$vpn_out")" \
  test $rc -eq 0 -a -n "$(grep 'kernel WireGuard: the wireguard kernel module is loaded' <<<"$vpn_out")"
check up_kernel_link "the server interface is a wireguard link" link_kind "$S" "$sif" "wireguard"

# ---- two clients from the files 'add' wrote ----------------------------------------------
vpn add "$a" "$b" --no-qr
confA=$data/clients/$a.conf confB=$data/clients/$b.conf
check add "both config files written, mode 0600" test -f "$confA" -a -f "$confB" -a "$(stat -c %a "$confA" 2>/dev/null)" = 600

# A: kernel WireGuard, exactly as wg-quick on a Linux laptop brings it up.
ip netns exec "$A" wg-quick up "$confA" >/dev/null 2>&1
check client_a_kernel "A is a kernel wireguard interface made by wg-quick" link_kind "$A" "$a" "wireguard"
# B: wireguard-go, loaded the way wg-quick does it: wg setconf with the stripped file, the
# Address line, and a route for each AllowedIPs.
ip netns exec "$B" env WG_PROCESS_FOREGROUND=1 wireguard-go "$b" >/dev/null 2>&1 &
gopid=$!
wait_until 20 test -S "/run/wireguard/$b.sock" >/dev/null
wg-quick strip "$confB" > "$data/b.stripped"
ip netns exec "$B" wg setconf "$b" "$data/b.stripped"
for addr in $(sed -n 's/^Address *= *//p' "$confB" | tr ',' ' '); do ip -n "$B" address add "$addr" dev "$b"; done
ip -n "$B" link set "$b" up
for net in $(sed -n 's/^AllowedIPs *= *//p' "$confB" | tr ',' ' '); do ip -n "$B" route add "$net" dev "$b"; done
check client_b_wireguard_go "B is wireguard-go's TUN interface" link_kind "$B" "$b" "tun"

for pair in "a:$A" "b:$B"; do
  who=${pair%%:*} ns=${pair#*:}
  if t=$(wait_until 20 ping_ok "$ns" $server_tunnel); then
    check "reach_$who" "server v4 after $t; server v6, internal host" \
      eval "ping_ok $ns fd00:5e:1::1 && ping_ok $ns $internal_host"
  else
    result "reach_$who" fail "no ping to the server's tunnel address within 20 s"
  fi
done
check server_two_peers "$(server_peers) peers" test "$(server_peers)" = 2

# ---- block A within 1 s; B keeps its session ----------------------------------------------
hsB=$(handshake "$B" "$b")
vpn block "$a"
check block_a "A reaches neither the server nor the internal host (1 s each)" \
  eval "! ping_ok $A $server_tunnel 1 && ! ping_ok $A $internal_host 1"
check block_b_keeps_session "B reaches the internal host; its handshake is unchanged" \
  eval "ping_ok $B $internal_host && [ '$(handshake "$B" "$b")' = '$hsB' ] && [ '$hsB' != 0 ] && [ -n '$hsB' ]"

# ---- reenable A: the server contacts A at its last endpoint ---------------------------------
vpn reenable "$a"
t0=$(ms_now)
recovered reenable_recovery "A after reenable" "$t0" "$(first_reply "$A")"

# ---- status shows the data plane; the interface is killed and 'up' restores it ----------
vpn status
check status_data_plane "status names the data plane and why" eval "grep -q 'up (kernel WireGuard: the wireguard kernel module is loaded)' <<<\"\$vpn_out\""
ip -n "$S" link del "$sif"
vpn up
rc=$?
check up_restores "up restored the interface on kernel WireGuard, 2 peers, both contacted" \
  eval "[ $rc -eq 0 ] && link_kind $S $sif wireguard && [ \$(server_peers) = 2 ] && grep -q '2 recent clients contacted' <<<\"\$vpn_out\""
t0=$(ms_now)
first_reply "$A" > "$data/reply.a" & pa=$!
first_reply "$B" > "$data/reply.b" & pb=$!
wait $pa $pb
recovered restore_recovery_a "A after up restored the interface" "$t0" "$(cat "$data/reply.a")"
recovered restore_recovery_b "B after up restored the interface" "$t0" "$(cat "$data/reply.b")"

# ---- access rules on kernel WireGuard: least privilege, a group rule, live per element ----
# init made rules 1 (everyone -> internal) and 2 (everyone -> server); revoking rule 1 leaves
# nobody a way to the internal network; a rule for B's group lets B (and only B) back in;
# 'everyone -> internal' puts things back as they were for the rest of the scenario (rule 2 stays:
# the later checks ping the server's tunnel address).
vpn group add kstaff && vpn set "$b" --group kstaff && vpn access revoke 1
check access_least_privilege "with no rule, neither A nor B reaches the internal host" \
  eval "! ping_ok $A $internal_host 1 && ! ping_ok $B $internal_host 1"
vpn access allow group:kstaff "$internal_host" --proto icmp
if t=$(wait_until 1 ping_ok "$B" "$internal_host" 0.3); then
  check access_group_rule "B (group kstaff) reaches the internal host $t after the rule; A still cannot" \
    eval "! ping_ok $A $internal_host 1"
else
  result access_group_rule fail "B did not reach the internal host within 1 s of 'access allow'"
fi
vpn access check "$a" "$internal_host/icmp"
check access_check_explains "access check says deny for A" eval "grep -q '^deny' <<<\"\$vpn_out\""
vpn access allow everyone internal
check access_everyone_back "A reaches the internal host again" wait_until 2 ping_ok "$A" "$internal_host" 0.3

# ---- remove A: gone for good; B unaffected -------------------------------------------------
wg-quick strip "$confA" > "$data/a.saved"
vpn remove "$a" --yes
check remove_a "A's file deleted, 1 peer left, B reaches the internal host" \
  eval "[ ! -e $confA ] && [ \$(server_peers) = 1 ] && ping_ok $B $internal_host"
# A tries a fresh handshake with its old config: it must not get one.
serverpub=$(ip netns exec "$A" wg show "$a" peers)
ip netns exec "$A" wg set "$a" peer "$serverpub" remove
ip netns exec "$A" wg addconf "$a" "$data/a.saved"
if wait_until 3 eval "ping_ok $A $server_tunnel 0.5 || [ \"\$(handshake $A $a)\" != 0 ]" >/dev/null; then
  result removed_a_refused fail "A got a handshake or a reply after remove"
else
  result removed_a_refused pass "no handshake within 3 s"
fi

# ---- down removes everything ----------------------------------------------------------------
vpn down
check down "interface and nftables table gone" \
  eval "! ip -n $S link show dev $sif >/dev/null 2>&1 && ! ip netns exec $S nft list table inet mkb_vpn >/dev/null 2>&1"

# ---- the module is loaded but creating a wireguard link fails (locked-down host) ------------
# An ip(8) in front of the real one refuses 'link add ... type wireguard'. mkb-vpn must not
# leave a half-made interface: it takes the built-in engine and says so.
mkdir -p "$shim"
cat > "$shim/ip" <<'EOF'
#!/bin/sh
case " $* " in
  *" add "*" type wireguard "*) echo "RTNETLINK answers: Operation not permitted" >&2; exit 2 ;;
esac
exec /usr/sbin/ip "$@"
EOF
chmod +x "$shim/ip"
t0=$(ms_now)
vpn_out=$(ip netns exec "$S" env PATH="$shim:$PATH" "$mkb" --data-dir "$data" up 2>&1); rc=$?
echo "vm: mkb-vpn up with 'ip link add type wireguard' refused -> exit $rc in $(( $(ms_now) - t0 )) ms"
sed 's/^/    /' <<<"$vpn_out"
check kernel_refused_fallback "exit $rc; built-in engine with a warning, a TUN interface, B served again" \
  eval "[ $rc -eq 0 ] && grep -qi 'warning' <<<\"\$vpn_out\" && grep -qi 'built-in' <<<\"\$vpn_out\" && link_kind $S $sif tun && wait_until 20 ping_ok $B $server_tunnel 0.2 >/dev/null"
vpn down
check down_after_fallback "interface gone" eval "! ip -n $S link show dev $sif >/dev/null 2>&1"

# ---- --engine builtin still forces mkb-vpn's own engine where the module is loaded ------------
vpn up --engine builtin
rc=$?
check engine_builtin_forced "a TUN link run by the built-in engine, and up says why" \
  eval "[ $rc -eq 0 ] && grep -q 'built-in engine: chosen with --engine' <<<\"\$vpn_out\" && link_kind $S $sif tun"
vpn down
check down_after_builtin "interface gone" eval "! ip -n $S link show dev $sif >/dev/null 2>&1"

echo "vm: scenario done at $(cut -d' ' -f1 /proc/uptime) s of uptime"
echo DONE >> "$out"
