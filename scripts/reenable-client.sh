#!/usr/bin/env bash
# reenable-client.sh: for the mkb-stack, a thin wrapper over 'mkb-vpn reenable' (all logic lives in mkb-vpn).
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/_mkb-vpn.sh"

USAGE="Usage: reenable-client.sh [--data-dir DIR] NAME [NAME...]

Re-enables blocked VPN client(s) with the same keys and address: their existing
config works again.

Example:
  sudo reenable-client.sh alice

Options:
"
mkb_vpn_main reenable -- "$@"
