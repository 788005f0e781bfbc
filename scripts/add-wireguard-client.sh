#!/usr/bin/env bash
# add-wireguard-client.sh — Adds VPN client(s): keys, the next free address, a config file (printed path) and a QR code. Live at once.
# A thin wrapper over 'mkb-vpn add' for the mkb-stack; all logic lives in mkb-vpn.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/_mkb-vpn.sh"

usage() {
  cat <<USAGE
Usage: add-wireguard-client.sh [--data-dir DIR] [--qr-png FILE] [--no-qr] [--json] NAME [NAME...]

Adds VPN client(s): keys, the next free address, a config file (printed path) and a QR code. Live at once.

Example:
  sudo $0 alice

Options:
  --data-dir DIR   mkb-vpn's data directory (default: \$MKB_VPN_DATA_DIR or /var/lib/mkb-vpn)
  --qr-png FILE    Also write the QR code as a PNG (one client)
  --no-qr          Do not print the QR code
  --json           Print the result as JSON
  -h, --help       Show this help

$MKB_VPN_EXIT_CODES
USAGE
}

for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
  esac
done
if [ $# -eq 0 ]; then
  usage >&2
  exit 2
fi
mkb_vpn_find
exec "${MKB_VPN_CMD[@]}" add "$@"
