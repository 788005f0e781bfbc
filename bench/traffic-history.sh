#!/usr/bin/env bash
# Traffic history at scale (issue 12): fills a store with N clients (default 10,000), each with 90 days
# of hourly and 48 hours of per-minute history, every bucket busy (the worst case of the size bound),
# then prints the store's size, the time of one sampling round over N busy peers, and, served by
# 'mkb-vpn serve', the latency of the traffic API for one client and for the total and of the SVG
# charts (median of 5 each), and the client list page (with the total chart) in chromium. Targets: a client's chart
# < 300 ms, the list page < 1 s. No root and no interface needed.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
port=${PORT:-51872}
dotnet build src/MkbVpn.Cli -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
mkb=$PWD/src/MkbVpn.Cli/bin/Release/net10.0/mkb-vpn
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
dotnet run -c Release bench/traffic-history/TrafficBench.cs -- "$dir" "$n"
db="$dir/mkb-vpn.db"
printf 'store size:                  %d MB (%s bytes; %d clients, full history)\n' "$(( $(stat -c %s "$db") / 1000000 ))" "$(stat -c %s "$db")" "$n"

token=$("$mkb" token add bench --data-dir "$dir")
"$mkb" serve --data-dir "$dir" --listen 127.0.0.1:$port 2>/dev/null &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/login" && break; sleep 0.1; done
t() { curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "http://127.0.0.1:$port$1"; }
median() {   # median of 5 in ms, after one warm-up
  t "$1" >/dev/null
  for _ in 1 2 3 4 5; do t "$1"; done | sort -n | sed -n 3p | awk '{ printf "%.1f", $1 * 1000 }'
}
c=$(printf 'c%05d' $((n / 2)))
size() { curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port$1" | wc -c; }
printf 'API one client, 24 h (5 min):   %s ms\n' "$(median "/api/v1/clients/$c/traffic")"
printf 'API one client, 90 d per hour:  %s ms (%d bytes)\n' "$(median "/api/v1/clients/$c/traffic?from=90d&step=hour")" "$(size "/api/v1/clients/$c/traffic?from=90d&step=hour")"
printf 'API total, 24 h (5 min):        %s ms\n' "$(median "/api/v1/traffic")"
printf 'API total, 90 d per hour:       %s ms\n' "$(median "/api/v1/traffic?from=90d&step=hour")"
printf 'chart one client, 48 h (15 min): %s ms\n' "$(median "/clients/$c/traffic.svg?from=48h")"
printf 'chart one client, 90 d per hour: %s ms (%d bytes; target < 300 ms)\n' "$(median "/clients/$c/traffic.svg?from=90d&step=hour")" "$(size "/clients/$c/traffic.svg?from=90d&step=hour")"
printf 'chart total, 90 d per hour:      %s ms\n' "$(median "/traffic.svg?from=90d&step=hour")"
. bench/lib/chromium-page.sh
chromium_list_page "http://127.0.0.1:$port" "$mkb" "$dir" "$n"
printf 'server RSS:                      %d MB\n' "$(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 ))"
