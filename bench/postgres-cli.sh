#!/usr/bin/env bash
# What one CLI command costs on a PostgreSQL registry next to the same command on SQLite (issue 13):
# the process alone (--version), 'list' of an empty server, 'show', 'block' + 'reenable', each as a
# new process, medians of RUNS runs alternating the stores. PostgreSQL is a throwaway cluster
# (Debian's initdb/pg_ctl as the postgres user) reached as an admin would: over TCP on loopback
# with a scram-sha-256 login and the password in a passfile; also over its Unix socket (peer
# trust, no SCRAM), to show what the login costs. Prints figures; asserts nothing.
#   sudo bench/postgres-cli.sh [RUNS]                      (default 9)
#   MKB_VPN=out/mkb-vpn/mkb-vpn sudo bench/postgres-cli.sh (a binary already built; else the native one is published)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-9}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 6; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || { echo "missing PostgreSQL's server (apt-get install postgresql)" >&2; exit 7; }

bin=${MKB_VPN:-}
if [ -z "$bin" ]; then
  echo "== publishing the native binary (as shipped: NativeAOT; a few minutes)"
  dotnet publish src/MkbVpn.Cli -c Release -o out/bench/native -nologo -v quiet -clp:ErrorsOnly
  bin=$PWD/out/bench/native/mkb-vpn
fi
bin=$(readlink -f "$bin")

work=$(mktemp -d /tmp/mkb-vpn-pgcli.XXXXXX)
chmod 755 "$work"
pgdir=$work/pg
cleanup() {
  [ -f "$pgdir/data/postmaster.pid" ] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
install -d -o postgres -m 700 "$pgdir"
install -o postgres -m 600 /dev/null "$work/pwfile"
echo "$password" > "$work/pwfile"
runuser -u postgres -- "$pgbin/initdb" -D "$pgdir/data" -U mkbvpn --pwfile "$work/pwfile" \
  --auth-local=trust --auth-host=scram-sha-256 --no-sync >/dev/null
rm -f "$work/pwfile"
port=$(( 20000 + RANDOM % 20000 ))
runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w -t 60 start \
  -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" >/dev/null
chmod 755 "$pgdir"
install -m 600 /dev/null "$work/pgpass"
echo "127.0.0.1:$port:*:mkbvpn:$password" > "$work/pgpass"
"$pgbin/psql" -h "$pgdir" -p "$port" -U mkbvpn -d postgres -qc "CREATE DATABASE mkbvpn" >/dev/null

tcp="postgresql://mkbvpn@127.0.0.1:$port/mkbvpn?passfile=$work/pgpass"
sock="host=$pgdir port=$port dbname=mkbvpn user=mkbvpn"
init=(init --endpoint 198.18.1.1:51820 --subnet 203.0.113.0/24 --dns none)
"$bin" --data-dir "$work/sqlite" "${init[@]}" --interface mkbpc0 >/dev/null
"$bin" --store "$tcp" --data-dir "$work/pg-admin" "${init[@]}" --interface mkbpc1 >/dev/null
"$bin" --data-dir "$work/sqlite" add alice --no-qr >/dev/null
"$bin" --store "$tcp" --data-dir "$work/pg-admin" add alice --no-qr >/dev/null

# ms RUN...: one run's wall time in milliseconds
ms() { local t0; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; echo $(( ($(date +%s%N) - t0) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

declare -A t
stores=(sqlite pg-tcp pg-socket)
run() {   # run STORE ARGS...
  case $1 in
    sqlite) shift; ms "$bin" --data-dir "$work/sqlite" "$@" ;;
    pg-tcp) shift; ms "$bin" --store "$tcp" --data-dir "$work/pg-admin" "$@" ;;
    pg-socket) shift; ms "$bin" --store "$sock" --data-dir "$work/pg-admin" "$@" ;;
  esac
}
echo "== $bin, $runs runs each, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 0; i < runs; i++)); do
  t[version]+="$(ms "$bin" --version) "
  for s in "${stores[@]}"; do
    t[$s.list]+="$(run "$s" list) "
    t[$s.show]+="$(run "$s" show alice) "
    t[$s.block]+="$(run "$s" block alice) "
    run "$s" reenable alice >/dev/null
  done
done
printf '%-22s %8s %8s %10s\n' "median (ms)" sqlite pg-tcp pg-socket
printf '%-22s %8s\n' "process (--version)" "$(echo "${t[version]}" | tr ' ' '\n' | grep . | median)"
for v in list show block; do
  printf '%-22s' "$v"
  for s in "${stores[@]}"; do printf ' %8s' "$(echo "${t[$s.$v]}" | tr ' ' '\n' | grep . | median)"; done
  echo
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
