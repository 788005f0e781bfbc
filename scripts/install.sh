#!/usr/bin/env bash
# Builds mkb-vpn (a native executable, NativeAOT, and its small native engine mkb-vpn-engine), installs them, sets up the server (first run only) and starts it.
#   sudo scripts/install.sh --endpoint vpn.example.com [other 'mkb-vpn init' options]
# Re-running updates the program and restarts the service; settings and clients are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<USAGE
Usage: sudo scripts/install.sh [--endpoint HOST[:PORT]] [mkb-vpn init options...]

Builds mkb-vpn as one native executable (NativeAOT; the host then needs no .NET), installs it
to /opt/mkb-vpn (command: /usr/local/bin/mkb-vpn, a symlink), runs
'mkb-vpn init' with the given options the first time (asks for the endpoint on a terminal),
and starts the server: as the systemd service mkb-vpn where systemd runs, else in the
background with 'mkb-vpn up --foreground' (log: /var/log/mkb-vpn.log).

Example:
  sudo scripts/install.sh --endpoint vpn.example.com --internal-network 10.10.0.0/24
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (sudo $0 $*)" >&2
  exit 6
fi

need=()
for pair in wg:wireguard-tools ip:iproute2 nft:nftables; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# The native build links with clang and zlib (build time only; the binary needs neither).
command -v clang >/dev/null 2>&1 || need+=(clang)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
# Where the kernel has no WireGuard module, mkb-vpn runs its own userspace engine: nothing to install.
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v dotnet >/dev/null 2>&1 || { echo "install.sh: the .NET 10 SDK (dotnet) is required to build mkb-vpn" >&2; exit 7; }

case $(uname -m) in
  x86_64) rid=linux-x64 ;;
  aarch64) rid=linux-arm64 ;;
  *) echo "install.sh: no native build for $(uname -m)" >&2; exit 7 ;;
esac
echo "== building (native, $rid; a few minutes)"
rm -rf out/mkb-vpn
dotnet publish src/MkbVpn.Cli -c Release -r "$rid" -o out/mkb-vpn -nologo -v quiet -clp:ErrorsOnly
# The engine alone (src/MkbVpn.Engine), beside mkb-vpn: 'up' runs it from there (it idles in far less memory).
dotnet publish src/MkbVpn.Engine -c Release -r "$rid" -o out/mkb-vpn -nologo -v quiet -clp:ErrorsOnly
# The executable and the native libraries it loads from its own directory (libe_sqlite3, libsodium). A new directory
# is moved into place, so a running server keeps its files until it restarts.
rm -rf /opt/mkb-vpn.new /opt/mkb-vpn.old
install -d -m 0755 /opt/mkb-vpn.new
install -m 0755 out/mkb-vpn/mkb-vpn /opt/mkb-vpn.new/mkb-vpn
install -m 0644 out/mkb-vpn/*.so /opt/mkb-vpn.new/
install -m 0755 out/mkb-vpn/mkb-vpn-engine /opt/mkb-vpn.new/mkb-vpn-engine
cp README.md /opt/mkb-vpn.new/ 2>/dev/null || true
[ -d /opt/mkb-vpn ] && mv /opt/mkb-vpn /opt/mkb-vpn.old
mv /opt/mkb-vpn.new /opt/mkb-vpn
rm -rf /opt/mkb-vpn.old
# Earlier versions installed a wrapper script that set DOTNET_ROOT; the native binary is linked directly.
rm -f /usr/local/bin/mkb-vpn
ln -s /opt/mkb-vpn/mkb-vpn /usr/local/bin/mkb-vpn

data=${MKB_VPN_DATA_DIR:-/var/lib/mkb-vpn}
if [ ! -f "$data/mkb-vpn.db" ] || ! mkb-vpn list >/dev/null 2>&1; then
  echo "== initialising $data"
  mkb-vpn init "$@"
elif [ $# -gt 0 ]; then
  echo "== already initialised; applying the given settings"
  mkb-vpn init --change "$@"
fi

echo "== starting"
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  install -m 0644 deploy/mkb-vpn.service /etc/systemd/system/mkb-vpn.service
  # The admin page is installed but not enabled: create an admin first (see README).
  install -m 0644 deploy/mkb-vpn-web.service /etc/systemd/system/mkb-vpn-web.service
  systemctl daemon-reload
  systemctl enable mkb-vpn >/dev/null
  systemctl restart mkb-vpn
  echo "mkb-vpn runs as the systemd service 'mkb-vpn' (journalctl -u mkb-vpn)"
else
  # No systemd (a container): bring it up now, then keep a supervisor running.
  pkill -f '/opt/mkb-vpn/mkb-vpn up --foreground' 2>/dev/null || true
  mkb-vpn up
  setsid nohup /usr/local/bin/mkb-vpn up --foreground >>/var/log/mkb-vpn.log 2>&1 < /dev/null &
  echo "mkb-vpn runs in the background (log: /var/log/mkb-vpn.log; stop: mkb-vpn down)"
fi
echo "Add a user: sudo mkb-vpn add alice"
