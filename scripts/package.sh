#!/usr/bin/env bash
# Builds the Debian package mkb-vpn_VERSION_amd64.deb (dpkg-deb) from a NativeAOT publish of
# src/MkbVpn.Cli: one native executable and its two native libraries, nothing from .NET needed
# on the host.
#
#   scripts/package.sh [--out DIR] [--publish-dir DIR] [--version VERSION]
#
#   --out DIR          where the .deb goes (default: out/)
#   --publish-dir DIR  package an existing NativeAOT publish (mkb-vpn, mkb-vpn-engine,
#                      libe_sqlite3.so, libsodium.so) instead of publishing; it must carry
#                      the same version
#   --version V        the package version (default: from the project, see below)
#
# Prints the path of the .deb last. Needs dpkg-deb (and dotnet unless --publish-dir).
#
# Layout:  /usr/lib/mkb-vpn/{mkb-vpn,mkb-vpn-engine,libe_sqlite3.so,libsodium.so}
#          /usr/bin/mkb-vpn -> ../lib/mkb-vpn/mkb-vpn (the libraries are found next to the
#          executable's real path, also through the symlink)
#          /usr/share/mkb-vpn/scripts/*.sh, the mkb-stack scripts, also on PATH in /usr/bin
#          /lib/systemd/system/mkb-vpn.service, mkb-vpn-web.service (not enabled, not started)
#          /etc/default/mkb-vpn (conffile), man pages, /usr/share/doc/mkb-vpn/
# The data directory /var/lib/mkb-vpn is made by 'mkb-vpn init' (and systemd's StateDirectory),
# kept by 'apt remove', removed by 'apt purge'.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

out=out publish_dir= version=
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift ;;
    --publish-dir) publish_dir=$2; shift ;;
    --version) version=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "usage: $0 [--out DIR] [--publish-dir DIR] [--version VERSION]" >&2; exit 2 ;;
  esac
  shift
done
command -v dpkg-deb >/dev/null 2>&1 || { echo "package.sh: dpkg-deb is required (apt-get install dpkg)" >&2; exit 7; }

# The version: a git tag vX.Y.Z on this commit gives X.Y.Z; else the project's <Version>
# (Directory.Build.props or the csproj; the SDK's default 1.0.0 when none is set) as a
# pre-release of it: 1.0.0~git20261125.02ff599 (commit date and id), which sorts before 1.0.0
# and after every earlier snapshot. The same string is compiled in: 'mkb-vpn --version' prints it.
if [ -z "$version" ]; then
  if tag=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
    version=${tag#v}
  else
    base=$(sed -n 's|.*<Version>\([^<]*\)</Version>.*|\1|p' src/MkbVpn.Cli/MkbVpn.Cli.csproj Directory.Build.props 2>/dev/null | head -1)
    base=${base:-1.0.0}
    if git rev-parse --git-dir >/dev/null 2>&1; then
      version="$base~git$(git log -1 --format=%cd --date=format:%Y%m%d).$(git rev-parse --short=7 HEAD)"
    else
      version=$base
    fi
  fi
fi
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "package.sh: '$version' is not a Debian version" >&2; exit 2; }
arch=amd64
# Whoever made the commit packaged; MKB_VPN_MAINTAINER="Name <mail>" overrides.
maintainer=${MKB_VPN_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || echo 'mkb-vpn maintainers <mkb-vpn@example.org>')}
mkdir -p "$out"
deb="$(cd "$out" && pwd)/mkb-vpn_${version}_${arch}.deb"

stage=$(mktemp -d /tmp/mkb-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT

if [ -z "$publish_dir" ]; then
  command -v dotnet >/dev/null 2>&1 || { echo "package.sh: the .NET 10 SDK (dotnet) is required to build mkb-vpn" >&2; exit 7; }
  publish_dir="$stage/publish"
  echo "== NativeAOT publish of mkb-vpn $version" >&2
  # Both csproj files publish with NativeAOT; an AOT or trim warning fails the build.
  dotnet publish src/MkbVpn.Cli -c Release -r linux-x64 \
    -p:InformationalVersion="$version" -p:IncludeSourceRevisionInInformationalVersion=false \
    -o "$publish_dir" -nologo -v quiet -clp:ErrorsOnly >&2
  # The engine alone (its csproj publishes with NativeAOT): 'up' runs it when it sits next to mkb-vpn.
  dotnet publish src/MkbVpn.Engine -c Release -r linux-x64 \
    -p:InformationalVersion="$version" -p:IncludeSourceRevisionInInformationalVersion=false \
    -o "$publish_dir" -nologo -v quiet -clp:ErrorsOnly >&2
fi
for f in mkb-vpn mkb-vpn-engine libe_sqlite3.so libsodium.so; do
  [ -f "$publish_dir/$f" ] || { echo "package.sh: $publish_dir/$f is missing (not a NativeAOT publish?)" >&2; exit 1; }
done
# A JIT build has mkb-vpn.dll beside it and needs a .NET runtime on the host: refuse it.
[ ! -e "$publish_dir/mkb-vpn.dll" ] || { echo "package.sh: $publish_dir holds a JIT build (mkb-vpn.dll), not NativeAOT" >&2; exit 1; }
built_version=$("$publish_dir/mkb-vpn" --version)
[ "$built_version" = "$version" ] ||
  { echo "package.sh: $publish_dir/mkb-vpn says version '$built_version', the package would be '$version'" >&2; exit 1; }

root="$stage/root"
lib="$root/usr/lib/mkb-vpn"
share="$root/usr/share/mkb-vpn"
doc="$root/usr/share/doc/mkb-vpn"
install -d -m 0755 "$lib" "$root/usr/bin" "$share/scripts" "$doc" "$root/usr/share/man/man8" \
  "$root/lib/systemd/system" "$root/etc/default" "$root/DEBIAN"

# The program: only the executable and its native libraries (no .pdb, no .dbg).
install -m 0755 "$publish_dir/mkb-vpn" "$lib/mkb-vpn"
install -m 0644 "$publish_dir/libe_sqlite3.so" "$publish_dir/libsodium.so" "$lib/"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$lib/libe_sqlite3.so" "$lib/libsodium.so" 2>/dev/null || true
# The engine alone, a native executable: 'mkb-vpn up' runs it from beside itself; also usable as
# MKB_VPN_ENGINE or WG_QUICK_USERSPACE_IMPLEMENTATION (/usr/lib/mkb-vpn/mkb-vpn-engine IFACE).
install -m 0755 "$publish_dir/mkb-vpn-engine" "$lib/mkb-vpn-engine"
[ "$(head -c4 "$lib/mkb-vpn-engine" | od -An -c | tr -d ' ')" = '177ELF' ] ||
  { echo "package.sh: $publish_dir/mkb-vpn-engine is not a native executable" >&2; exit 1; }
ln -s ../lib/mkb-vpn/mkb-vpn "$root/usr/bin/mkb-vpn"

# The mkb-stack scripts with their documented names, on PATH too. _mkb-vpn.sh finds the
# package's own mkb-vpn from /usr/share/mkb-vpn/scripts (also through the symlinks).
install -m 0644 scripts/_mkb-vpn.sh "$share/scripts/_mkb-vpn.sh"
stack_scripts=(add-wireguard-client.sh remove-client.sh block-client.sh reenable-client.sh)
for s in "${stack_scripts[@]}"; do
  install -m 0755 "scripts/$s" "$share/scripts/$s"
  ln -s "../share/mkb-vpn/scripts/$s" "$root/usr/bin/$s"
done

# systemd units (not conffiles: admins override them with drop-ins in /etc/systemd/system).
for u in mkb-vpn.service mkb-vpn-web.service; do
  sed -e 's|/usr/local/bin/mkb-vpn|/usr/bin/mkb-vpn|g' \
      -e 's|^Documentation=file:///opt/mkb-vpn/README.md|Documentation=man:mkb-vpn(8) file:///usr/share/doc/mkb-vpn/README.md|' \
      "deploy/$u" > "$root/lib/systemd/system/$u"
  chmod 0644 "$root/lib/systemd/system/$u"
  ! grep -q '/usr/local\|/opt/' "$root/lib/systemd/system/$u" || { echo "package.sh: $u still names /usr/local or /opt" >&2; exit 1; }
done

# The one conffile: settings the services read (kept on upgrade, asked about if both changed).
cat > "$root/etc/default/mkb-vpn" <<'DEFAULT'
# Read by the systemd units mkb-vpn.service and mkb-vpn-web.service.
#
# The data plane 'mkb-vpn up' takes: kernel, builtin, wireguard-go, or a path to another
# userspace engine. Unset: kernel WireGuard where the module exists, else the built-in engine.
#MKB_VPN_ENGINE=builtin
#
# The built-in engine's packet threads run as SCHED_BATCH: the same CPU share as other threads, but their
# wake-ups do not preempt the services running on the host's cores. normal: the default scheduling policy.
#MKB_VPN_ENGINE_SCHEDULER=normal
#
# The store on PostgreSQL instead of SQLite (see README): keep the password in a passfile under
# /etc (the units hide /root, so /root/.pgpass is not read).
#MKB_VPN_STORE=postgresql://mkbvpn@db.example.com/mkbvpn?passfile=/etc/mkb-vpn/pgpass
DEFAULT
chmod 0644 "$root/etc/default/mkb-vpn"

# Documentation: README, copyright, changelog, and man pages made from the --help texts.
install -m 0644 README.md "$doc/README.md"
cat > "$doc/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mkb-vpn
Comment: mkb-vpn is compiled with NativeAOT into one executable that contains the .NET
 runtime and libraries and the NuGet packages listed below; libsodium and SQLite are
 shipped as the shared libraries /usr/lib/mkb-vpn/libsodium.so and libe_sqlite3.so.

Files: *
Copyright: the mkb-vpn authors
License: other
 The mkb-vpn project has not published a licence yet. Until it does, no rights beyond
 running this program are granted.

Files: usr/lib/mkb-vpn/mkb-vpn
Copyright: .NET Foundation and Contributors (the .NET runtime and libraries,
 System.CommandLine, Microsoft.Data.Sqlite, SQLitePCLRaw: Eric Sink)
 Klaus Hartke (NSec), The Legion of the Bouncy Castle Inc. (BouncyCastle.Cryptography),
 Raffael Herrmann and contributors (QRCoder)
License: MIT and Apache-2.0
 The .NET runtime, System.CommandLine, Microsoft.Data.Sqlite, NSec, BouncyCastle and QRCoder
 are under the MIT licence; SQLitePCLRaw is under the Apache licence 2.0 (on Debian:
 /usr/share/common-licenses/Apache-2.0).
 .
 Permission is hereby granted, free of charge, to any person obtaining a copy of this
 software and associated documentation files (the "Software"), to deal in the Software
 without restriction, including without limitation the rights to use, copy, modify, merge,
 publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
 to whom the Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
 INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
 PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
 FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
 OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
 DEALINGS IN THE SOFTWARE.

Files: usr/lib/mkb-vpn/libsodium.so
Copyright: 2013-2025 Frank Denis <j at pureftpd dot org>
License: ISC
 Permission to use, copy, modify, and/or distribute this software for any purpose with or
 without fee is hereby granted, provided that the above copyright notice and this permission
 notice appear in all copies.
 .
 THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO THIS
 SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL
 THE AUTHOR BE LIABLE FOR ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY
 DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF
 CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE OR
 PERFORMANCE OF THIS SOFTWARE.

Files: usr/lib/mkb-vpn/libe_sqlite3.so
Copyright: none (SQLite is in the public domain)
License: public-domain
 The author disclaims copyright to this source code.
COPYRIGHT
chmod 0644 "$doc/copyright"
{
  printf 'mkb-vpn (%s) unstable; urgency=medium\n\n' "$version"
  printf '  * Built from %s.\n\n' "$(git rev-parse HEAD 2>/dev/null || echo 'a source tree without git')"
  printf ' -- %s  %s\n' "$maintainer" \
    "$(date -R -u -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")"
} | gzip -9n > "$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
# NativeAOT links the runtime's compression native code (zlib-ng) into the executable.
install -d -m 0755 "$root/usr/share/lintian/overrides"
printf 'mkb-vpn: embedded-library zlib [usr/lib/mkb-vpn/mkb-vpn]\n' > "$root/usr/share/lintian/overrides/mkb-vpn"
chmod 0644 "$root/usr/share/lintian/overrides/mkb-vpn"

# Man pages: the --help texts, verbatim, in roff.
roff_text() { sed -e 's/\\/\\e/g' -e 's/^\([.'"'"']\)/\\\&\1/' -e 's/-/\\-/g'; }
manpage() {   # NAME SECTION SUMMARY DESCRIPTION-COMMAND FILE (the body comes from stdin)
  local name=$1 section=$2 summary=$3 file=$4
  {
    printf '.TH %s %s "%s" "mkb-vpn %s" "mkb-vpn"\n' "$(tr '[:lower:]' '[:upper:]' <<<"$name")" "$section" \
      "$(date -u -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)" +%Y-%m-%d)" "$version"
    printf '.SH NAME\n%s \\- %s\n' "$(roff_text <<<"$name")" "$summary"
    cat
  } | gzip -9n > "$file"
  chmod 0644 "$file"
}
bin="$lib/mkb-vpn"
verbs=$("$bin" --help | sed -n '/^Commands:/,$p' | sed -n 's/^  \([a-z][a-z-]*\)[ ,].*/\1/p')
[ -n "$verbs" ] || { echo "package.sh: could not read the verbs from 'mkb-vpn --help'" >&2; exit 1; }
{
  printf '.SH SYNOPSIS\n.B mkb\\-vpn\n.I command\n.RI [ options ]\n'
  printf '.SH DESCRIPTION\n.nf\n'; "$bin" --help | roff_text; printf '.fi\n'
  printf '.SH COMMANDS\n'
  for v in $verbs; do
    printf '.SS %s\n.nf\n' "$v"; "$bin" "$v" --help | roff_text; printf '.fi\n'
  done
  cat <<'MAN'
.SH FILES
.TP
.I /var/lib/mkb-vpn
The data directory (mode 0700): the store mkb\-vpn.db with all keys, and clients/NAME.conf.
Kept by \fBapt remove\fR, removed by \fBapt purge\fR.
.TP
.I /etc/default/mkb\-vpn
Settings the systemd units read (MKB_VPN_ENGINE).
.TP
.I /lib/systemd/system/mkb\-vpn.service
Runs \fBmkb\-vpn up \-\-foreground\fR. Not enabled by the package: run \fBmkb\-vpn init\fR first,
then \fBsystemctl enable \-\-now mkb\-vpn\fR.
.TP
.I /lib/systemd/system/mkb\-vpn\-web.service
Runs \fBmkb\-vpn serve\fR (the admin page and REST API on 127.0.0.1:51821).
.SH EXIT STATUS
0 success; 1 failure while applying; 2 invalid usage or input (nothing changed); 3 no such
client; 4 the client exists; 5 not initialised; 6 must run as root; 7 a required tool is
missing; 8 the database is locked or corrupt; 9 the address pool is full.
.SH SEE ALSO
.BR wg (8),
.BR add\-wireguard\-client.sh (8),
.BR remove\-client.sh (8),
.BR block\-client.sh (8),
.BR reenable\-client.sh (8),
/usr/share/doc/mkb\-vpn/README.md
MAN
} | manpage mkb-vpn 8 "the WireGuard VPN server of the mkb-stack" "$root/usr/share/man/man8/mkb-vpn.8.gz"
for s in "${stack_scripts[@]}"; do
  {
    printf '.SH SYNOPSIS\n.nf\n'
    MKB_VPN="$bin" "$share/scripts/$s" --help | roff_text
    printf '.fi\n.SH SEE ALSO\n.BR mkb\\-vpn (8)\n'
  } | manpage "$s" 8 "$(sed -n 's/^# [^:]*: //p' "scripts/$s" | head -1 | roff_text)" "$root/usr/share/man/man8/$s.8.gz"
done

# What the binaries take from the host: check every NEEDED library is libc6's, and the newest
# glibc symbol version they use. The executable also loads libssl.so.3 at run time (dlopen:
# SHA-256, PBKDF2 and TLS go through OpenSSL), which NEEDED does not show.
needed=$(for f in "$lib/mkb-vpn" "$lib/mkb-vpn-engine" "$lib"/*.so; do readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; done | sort -u)
for n in $needed; do
  case $n in
    libc.so.6|libm.so.6|libdl.so.2|libpthread.so.0|librt.so.1|ld-linux-x86-64.so.2) ;;
    *) echo "package.sh: the binaries need $n, which is not in libc6: add its package to Depends" >&2; exit 1 ;;
  esac
done
glibc=$(for f in "$lib/mkb-vpn" "$lib/mkb-vpn-engine" "$lib"/*.so; do objdump -T "$f" | grep -o 'GLIBC_[0-9.]*'; done | sed 's/GLIBC_//' | sort -uV | tail -1)
depends="libc6 (>= $glibc), libssl3, iproute2, nftables"
strings "$lib/mkb-vpn" | grep -c '^libssl\.so\.3$' >/dev/null || { echo "package.sh: the executable no longer names libssl.so.3: check its Depends" >&2; exit 1; }

installed_size=$(du -sk --apparent-size "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: mkb-vpn
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Recommends: wireguard-tools
Suggests: wireguard-go
Section: net
Priority: optional
Description: WireGuard VPN server of the mkb-stack
 mkb-vpn makes the office host a WireGuard VPN server, so that staff on a
 laptop or phone reach the internal services on the host's private bridge.
 Users are managed with four verbs (add, remove, block, reenable), each
 applied live as a per-peer difference; the store (SQLite) is the single
 source of truth, config files and QR codes are renderings of it. It runs
 kernel WireGuard where the module exists and its own userspace engine
 elsewhere. Includes an admin web page with a REST API.
 .
 One native executable (NativeAOT); no .NET runtime is needed. Nothing is
 started on installation: run 'mkb-vpn init --endpoint HOST', then
 'systemctl enable --now mkb-vpn'.
CONTROL
echo /etc/default/mkb-vpn > "$root/DEBIAN/conffiles"

units="mkb-vpn-web.service mkb-vpn.service"
cat > "$root/DEBIAN/postinst" <<POSTINST
#!/bin/sh
# Starts nothing on a fresh install: the server needs 'mkb-vpn init' first.
set -e
if [ "\$1" = configure ] || [ "\$1" = abort-upgrade ] || [ "\$1" = abort-deconfigure ] || [ "\$1" = abort-remove ]; then
  for unit in $units; do
    # Not enabled: only record the admin's own enabling, so that purge can undo it.
    deb-systemd-helper unmask "\$unit" >/dev/null || true
    deb-systemd-helper update-state "\$unit" >/dev/null || true
  done
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    # An upgrade restarts what runs (the new program); try-restart starts nothing that is stopped.
    if [ -n "\$2" ]; then
      deb-systemd-invoke try-restart $units >/dev/null || true
    fi
  fi
fi
exit 0
POSTINST
cat > "$root/DEBIAN/prerm" <<PRERM
#!/bin/sh
# Removal stops the services (stopping mkb-vpn takes the interface down; users are kept).
set -e
if [ -z "\${DPKG_ROOT:-}" ] && [ "\$1" = remove ] && [ -d /run/systemd/system ]; then
  deb-systemd-invoke stop $units >/dev/null || true
fi
exit 0
PRERM
cat > "$root/DEBIAN/postrm" <<POSTRM
#!/bin/sh
# remove keeps /var/lib/mkb-vpn (the users' keys); purge deletes it, without asking.
set -e
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
if [ "\$1" = remove ] && command -v deb-systemd-helper >/dev/null; then
  for unit in $units; do deb-systemd-helper mask "\$unit" >/dev/null || true; done
fi
if [ "\$1" = purge ]; then
  if command -v deb-systemd-helper >/dev/null; then
    for unit in $units; do
      deb-systemd-helper purge "\$unit" >/dev/null || true
      deb-systemd-helper unmask "\$unit" >/dev/null || true
    done
  fi
  rm -rf /var/lib/mkb-vpn
fi
exit 0
POSTRM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f ! -path ./etc/\* -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"

dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
