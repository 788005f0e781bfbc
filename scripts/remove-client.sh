#!/usr/bin/env bash
# remove-client.sh: for the mkb-stack, a thin wrapper over 'mkb-vpn remove' (all logic lives in mkb-vpn).
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/_mkb-vpn.sh"

USAGE="Usage: remove-client.sh [--data-dir DIR] NAME [NAME...]

Removes VPN client(s) for good: off the live interface at once, keys and config
deleted, the address returned to the pool. Does not ask.

Example:
  sudo remove-client.sh alice

Options:
"
mkb_vpn_main remove --yes -- "$@"
