#!/usr/bin/env bash
# Builds the Prosody test servers that Debian 12 does not ship, from the source
# tarballs in ../shared/prosody-src (beside the repo; V6M_PROSODY_SRC overrides),
# each into its own prefix under /opt (run as root):
#
#   /opt/v6mesh-prosody-0.12-lua5.1   0.12.3+deb12u1 on PUC Lua 5.1
#   /opt/v6mesh-prosody-0.12-luajit   0.12.3+deb12u1 on LuaJIT
#   /opt/v6mesh-prosody-trunk         trunk f14f1b331f0f on Lua 5.4
#
# Each prefix holds a stamp (.v6mesh-build) with the tarball's sha256 and the
# configure flags; a build whose stamp matches is skipped, so a second run takes
# well under a second. The binaries are PREFIX/bin/prosody and PREFIX/bin/prosodyctl;
# they use only PREFIX (never /etc/prosody or /usr/lib/prosody).
#
# Needs (installed by scripts/install-deps.sh): build-essential libicu-dev
# libidn2-dev libssl-dev, lua5.1 liblua5.1-0-dev, luajit libluajit-5.1-dev,
# lua5.4 liblua5.4-dev, and the Lua libraries lua-socket lua-expat
# lua-filesystem lua-sec lua-unbound lua-bitop.
#
# Usage: scripts/build-prosody.sh [NAME...]   NAME: 0.12-lua5.1 0.12-luajit trunk
#   (default: all). V6M_PROSODY_REBUILD=1 rebuilds even when the stamp matches.
# A missing source tarball is reported and that build skipped (exit 0): the other
# test servers do not need it. A failed build exits non-zero.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src_dir=${V6M_PROSODY_SRC:-$root/../shared/prosody-src}
opt=/opt

# name | tarball | prefix | lua-version | lua-suffix | runwith | lua include dir
builds=(
  "0.12-lua5.1|prosody-0.12.3+deb12u1.tar.gz|$opt/v6mesh-prosody-0.12-lua5.1|5.1|5.1|lua5.1|/usr/include/lua5.1"
  "0.12-luajit|prosody-0.12.3+deb12u1.tar.gz|$opt/v6mesh-prosody-0.12-luajit|5.1|5.1|luajit|/usr/include/luajit-2.1"
  "trunk|prosody-trunk-f14f1b331f0f.tar.gz|$opt/v6mesh-prosody-trunk|5.4|5.4|lua5.4|/usr/include/lua5.4"
)

say() { printf 'build-prosody: %s\n' "$*"; }
die() { printf 'build-prosody: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (installs under $opt)"

tmp=
cleanup() { if [[ -n $tmp ]]; then rm -rf "$tmp"; fi; }
trap cleanup EXIT

# The Lua libraries Prosody needs, checked with the interpreter it will run on.
check_lua_libs() { # runwith
  local lua=$1 mods="socket lxp lfs ssl lunbound" m
  [[ $lua == lua5.4 ]] || mods+=" bit"
  command -v "$lua" >/dev/null || die "$lua not found (run scripts/install-deps.sh)"
  for m in $mods; do
    "$lua" -e "require'$m'" >/dev/null 2>&1 ||
      die "$lua cannot require '$m' (run scripts/install-deps.sh)"
  done
}

# Does PREFIX's prosodyctl run from PREFIX and name the expected version and Lua?
check_about() { # prefix expected-version-ERE expected-lua-ERE runwith
  local prefix=$1 ver=$2 lua=$3 runwith=$4 cfg out bin
  cfg=$tmp/check.cfg.lua
  mkdir -p "$tmp/certs"
  printf 'pidfile = "%s/check.pid"\ndata_path = "%s"\nlog = { }\n' "$tmp" "$tmp" >"$cfg"
  chmod 644 "$cfg"
  out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$tmp" PROSODYCTL_LOG_LEVEL=error \
    "$prefix/bin/prosodyctl" --config "$cfg" about 2>&1) ||
    die "$prefix/bin/prosodyctl about failed: $out"
  grep -Eq "^Prosody $ver\$" <<<"$out" || die "$prefix: expected Prosody $ver, got: $(grep -m1 '^Prosody ' <<<"$out")"
  grep -Eq "^Lua version:[[:space:]]+$lua" <<<"$out" || die "$prefix: expected Lua $lua, got: $(grep -m1 '^Lua version' <<<"$out")"
  grep -Eq "^Source directory:[[:space:]]+$prefix/lib/prosody\$" <<<"$out" ||
    die "$prefix: the code directory is not under the prefix: $(grep -m1 '^Source directory' <<<"$out")"
  # 0.12's "about" says "Lua 5.1" on LuaJIT too: check the interpreter itself.
  for bin in prosody prosodyctl; do
    [[ $(head -n1 "$prefix/bin/$bin") == "#!/usr/bin/env $runwith" ]] ||
      die "$prefix/bin/$bin does not run with $runwith: $(head -n1 "$prefix/bin/$bin")"
  done
}

want=("$@")
wanted() { # name
  ((${#want[@]} == 0)) && return 0
  local w
  for w in "${want[@]}"; do [[ $w == "$1" ]] && return 0; done
  return 1
}

for b in "${builds[@]}"; do
  IFS='|' read -r name tarball prefix luaver luasuffix runwith luainc <<<"$b"
  wanted "$name" || continue
  tarpath=$src_dir/$tarball
  if [[ ! -f $tarpath ]]; then
    printf 'build-prosody: %s: SKIPPED, no source tarball %s (set V6M_PROSODY_SRC)\n' "$name" "$tarpath" >&2
    continue
  fi
  flags=(--ostype=debian "--prefix=$prefix" "--lua-version=$luaver" "--lua-suffix=$luasuffix"
    "--runwith=$runwith" "--with-lua-include=$luainc" --idn-library=icu --no-example-certs)
  sum=$(sha256sum "$tarpath" | cut -d' ' -f1)
  stamp_text="$sum $tarball ${flags[*]}"
  stamp=$prefix/.v6mesh-build
  if [[ ${V6M_PROSODY_REBUILD:-0} != 1 && -f $stamp && $(cat "$stamp") == "$stamp_text" &&
    -x $prefix/bin/prosody && -x $prefix/bin/prosodyctl ]]; then
    continue
  fi

  start=$(date +%s%N)
  check_lua_libs "$runwith"
  [[ -f $luainc/lua.h ]] || die "$name: no $luainc/lua.h (run scripts/install-deps.sh)"
  tmp=$(mktemp -d /tmp/v6mesh-build-prosody.XXXXXX)
  chmod 755 "$tmp" # prosodyctl checks that user prosody can read the check config
  tar -xzf "$tarpath" -C "$tmp"
  srcdir=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n1)
  [[ -n $srcdir && -x $srcdir/configure ]] || die "$name: no configure in $tarball"
  log=$tmp/build.log
  if ! (cd "$srcdir" && ./configure "${flags[@]}" && make -j2) >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "$name: configure/make failed (flags: ${flags[*]})"
  fi
  # A dedicated prefix: start clean, so no file of an older build is left.
  rm -rf "$prefix"
  if ! (cd "$srcdir" && make install) >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "$name: make install failed"
  fi
  mkdir -p "$prefix/etc/prosody/conf.d" "$prefix/etc/prosody/certs" "$prefix/var/lib/prosody"
  if id prosody >/dev/null 2>&1; then
    chown prosody:prosody "$prefix/var/lib/prosody"
    chmod 750 "$prefix/var/lib/prosody"
  fi
  release=$(head -n1 "$srcdir/prosody.release" 2>/dev/null || echo '')
  [[ -n $release ]] || release=".*"
  check_about "$prefix" "${release//[.+()]/.}" "Lua ${luaver//./\\.}" "$runwith"
  echo "$stamp_text" >"$stamp"
  rm -rf "$tmp"
  tmp=
  ms=$((($(date +%s%N) - start) / 1000000))
  say "$name: built $tarball into $prefix in $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s"
done
