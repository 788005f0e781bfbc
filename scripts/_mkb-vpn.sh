# Shared by the mkb-stack scripts: finds the mkb-vpn command.
# The audit log records changes made through these scripts as done by a script.
export MKB_VPN_VIA=script
# $MKB_VPN may name it (a path); else, when these scripts are installed by the Debian package
# (PREFIX/share/mkb-vpn/scripts, also reached through the PATH symlinks), the package's own
# PREFIX/lib/mkb-vpn/mkb-vpn; else mkb-vpn on PATH; else the build in this checkout.
mkb_vpn_find() {
  local here
  here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
  if [ -n "${MKB_VPN:-}" ]; then
    MKB_VPN_CMD=("$MKB_VPN")
  elif [ "${here%/share/mkb-vpn/scripts}" != "$here" ] && [ -x "${here%/share/mkb-vpn/scripts}/lib/mkb-vpn/mkb-vpn" ]; then
    MKB_VPN_CMD=("${here%/share/mkb-vpn/scripts}/lib/mkb-vpn/mkb-vpn")
  elif command -v mkb-vpn >/dev/null 2>&1; then
    MKB_VPN_CMD=(mkb-vpn)
  else
    here=$(cd "$here/.." && pwd)
    if [ -x "$here/out/mkb-vpn/mkb-vpn" ]; then
      MKB_VPN_CMD=("$here/out/mkb-vpn/mkb-vpn")
    else
      echo "mkb-vpn: error: the mkb-vpn command is not installed (run scripts/install.sh, or set MKB_VPN)" >&2
      exit 7
    fi
  fi
}

# Exit codes, the same as mkb-vpn's:
MKB_VPN_EXIT_CODES='Exit codes (the same as mkb-vpn):
  0  success
  1  failure while applying (system command, live interface)
  2  invalid usage or input; nothing was changed
  3  no such client
  4  a client with that name already exists
  5  mkb-vpn is not initialised (run mkb-vpn init)
  6  must run as root
  7  a required tool is missing (wg, wireguard-go, ip, nft, mkb-vpn)
  8  the database is locked or corrupt
  9  the address pool is full'

# mkb_vpn_main VERB [FIXED_ARGS...] -- "$@": the whole body of a wrapper script. Prints the
# script's $USAGE (plus the shared options and exit codes) for --help, refuses no arguments
# with exit 2, else runs 'mkb-vpn VERB FIXED_ARGS... ARGS...' in its place.
mkb_vpn_main() {
  local verb=$1 arg
  shift
  local fixed=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do fixed+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  for arg in "$@"; do
    case "$arg" in
      -h|--help) mkb_vpn_usage; exit 0 ;;
    esac
  done
  if [ $# -eq 0 ]; then
    mkb_vpn_usage >&2
    exit 2
  fi
  mkb_vpn_find
  exec "${MKB_VPN_CMD[@]}" "$verb" "${fixed[@]}" "$@"
}

mkb_vpn_usage() {
  printf '%s' "$USAGE"
  printf '  --data-dir DIR   mkb-vpn data directory (default: $MKB_VPN_DATA_DIR or /var/lib/mkb-vpn)\n'
  printf '  -h, --help       Show this help\n\n%s\n' "$MKB_VPN_EXIT_CODES"
}
