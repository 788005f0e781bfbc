#!/usr/bin/env bash
# Fills a store (tunnel subnet from the benchmarking range, as bench/service-scale.sh) (no live interface needed) with N clients (default 10,000), serves it, and prints:
# the time of one API page of 50 clients (first, middle, filtered), of the HTML client list page
# (curl, and chromium through playwright-core), and the server's RSS. Targets (issue 4): API page < 100 ms, page < 1 s, RSS < 150 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
port=${PORT:-51871}
dotnet build src/MkbVpn.Cli -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
mkb=src/MkbVpn.Cli/bin/Release/net10.0/mkb-vpn
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
"$mkb" init --data-dir "$dir" --endpoint vpn.example.com --subnet 198.19.0.0/16 --no-ipv6 --internal-network 198.51.100.0/24 --interface mkbbench0 >/dev/null
start=$(date +%s.%N)
for ((i = 0; i < n; i += 1000)); do
  "$mkb" add --data-dir "$dir" --no-qr $(seq -f "c%05g" "$i" $((i + 999 < n - 1 ? i + 999 : n - 1))) >/dev/null
done
echo "added $n clients in $(echo "$(date +%s.%N) - $start" | bc) s"
token=$("$mkb" token add bench --data-dir "$dir")
"$mkb" serve --data-dir "$dir" --listen 127.0.0.1:$port 2>/dev/null &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/login" && break; sleep 0.1; done
t() { curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" "http://127.0.0.1:$port$1"; }
t "/api/v1/clients" >/dev/null   # warm up
printf 'API page 1 (50 of %d):       %.1f ms\n' "$n" "$(echo "$(t /api/v1/clients) * 1000" | bc)"
printf 'API page 100:                %.1f ms\n' "$(echo "$(t '/api/v1/clients?page=100') * 1000" | bc)"
printf 'API search q=c0999:          %.1f ms\n' "$(echo "$(t '/api/v1/clients?q=c0999') * 1000" | bc)"
printf 'API page size 500:           %.1f ms\n' "$(echo "$(t '/api/v1/clients?page=3&page_size=500') * 1000" | bc)"
printf 'HTML client list, page 100:  %.1f ms\n' "$(echo "$(t '/?page=100') * 1000" | bc)"

# The page as a person opens it: Debian's chromium (bench/lib/chromium-page.sh).
. bench/lib/chromium-page.sh
chromium_list_page "http://127.0.0.1:$port" "$mkb" "$dir" "$n"
printf 'server RSS:                  %d MB\n' "$(( $(awk '/VmRSS/ {print $2}' /proc/$pid/status) / 1024 ))"
