#!/usr/bin/env bash
# block-client.sh: for the mkb-stack, a thin wrapper over 'mkb-vpn block' (all logic lives in mkb-vpn).
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/_mkb-vpn.sh"

USAGE="Usage: block-client.sh [--data-dir DIR] NAME [NAME...]

Blocks VPN client(s) for now: off the live interface at once; keys, address and
config are kept.

Example:
  sudo block-client.sh alice

Options:
"
mkb_vpn_main block -- "$@"
