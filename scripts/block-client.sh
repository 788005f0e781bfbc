#!/usr/bin/env bash
# block-client.sh — Blocks VPN client(s) for now: off the live interface at once; keys, address and config are kept.
# A thin wrapper over 'mkb-vpn block' for the mkb-stack; all logic lives in mkb-vpn.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/_mkb-vpn.sh"

usage() {
  cat <<USAGE
Usage: block-client.sh [--data-dir DIR] NAME [NAME...]

Blocks VPN client(s) for now: off the live interface at once; keys, address and config are kept.

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
exec "${MKB_VPN_CMD[@]}" block "$@"
