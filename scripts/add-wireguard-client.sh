#!/usr/bin/env bash
# add-wireguard-client.sh: for the mkb-stack, a thin wrapper over 'mkb-vpn add' (all logic lives in mkb-vpn).
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/_mkb-vpn.sh"

USAGE="Usage: add-wireguard-client.sh [--data-dir DIR] [--qr-png FILE] [--no-qr] [--json] NAME [NAME...]

Adds VPN client(s): keys, the next free address, a config file (its path is printed)
and a QR code for the WireGuard app. Live at once.

Example:
  sudo add-wireguard-client.sh alice

Options:
  --qr-png FILE    Also write the QR code as a PNG (one client)
  --no-qr          Do not print the QR code
  --json           Print the result as JSON
"
mkb_vpn_main add -- "$@"
