#!/usr/bin/env bash
# reenable-client.sh — Re-enables blocked VPN client(s) with the same keys and address: their config works again.
# A thin wrapper over 'mkb-vpn reenable' for the mkb-stack; all logic lives in mkb-vpn.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/_mkb-vpn.sh"

usage() {
  cat <<USAGE
Usage: reenable-client.sh [--data-dir DIR] NAME [NAME...]

Re-enables blocked VPN client(s) with the same keys and address: their config works again.

Example:
  sudo $0 alice

Options:
  --data-dir DIR   mkb-vpn's data directory (default: \$MKB_VPN_DATA_DIR or /var/lib/mkb-vpn)
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
exec "${MKB_VPN_CMD[@]}" reenable "$@"
