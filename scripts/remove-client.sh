#!/usr/bin/env bash
# remove-client.sh — Removes VPN client(s) for good: off the live interface at once, keys and config deleted. Does not ask.
# A thin wrapper over 'mkb-vpn remove' for the mkb-stack; all logic lives in mkb-vpn.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/_mkb-vpn.sh"

usage() {
  cat <<USAGE
Usage: remove-client.sh [--data-dir DIR] NAME [NAME...]

Removes VPN client(s) for good: off the live interface at once, keys and config deleted. Does not ask.

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
exec "${MKB_VPN_CMD[@]}" remove --yes "$@"
