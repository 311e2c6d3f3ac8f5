#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need on a fresh Debian 12
# machine (run as root). Idempotent: a second run only checks.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
stamp=/var/lib/mod_s2s_v6mesh-deps.v1

apt_packages=(
  lua5.1 lua5.2 lua5.3 lua5.4 luajit lua-busted lua-check luarocks liblua5.4-dev
  iproute2 dnsmasq tcpdump openssl python3 procps util-linux
  iputils-ping
  # Building the test servers Debian does not ship (scripts/build-prosody.sh)
  # and the Lua libraries they run with, on Lua 5.1, LuaJIT and Lua 5.4.
  build-essential libicu-dev libidn2-dev libssl-dev liblua5.1-0-dev libluajit-5.1-dev
  lua-socket lua-expat lua-filesystem lua-sec lua-unbound lua-bitop
  # Clients and a server without the module, for resolver-peers.sh (SPEC §6).
  go-sendxmpp python3-slixmpp python3-aiodns ejabberd
  # dig and a second resolver in front of v6alt-dnsd, for dns-resolver.sh (SPEC §6).
  dnsutils unbound
  # Load generator for the DNS section of scripts/bench.sh (SPEC §6).
  dnsperf
)

add_backports() {
  # Reuse the mirror this machine already uses for bookworm; never hard-code one.
  local sources=/etc/apt/sources.list.d/debian.sources
  local list=/etc/apt/sources.list.d/v6mesh-backports.sources
  [[ -f $list ]] && return 0
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' "$sources" 2>/dev/null || true)
  if [[ -z $uri ]]; then
    uri=$(awk '$1=="deb" && $3 ~ /^bookworm/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  fi
  [[ -n $uri ]] || { echo "install-deps: cannot find the Debian mirror in $sources" >&2; exit 1; }
  cat >"$list" <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
}

missing_packages() { # the apt_packages not installed (so additions reach old machines)
  local p
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || echo "$p"
  done
}

yggdrasil_05() { # Yggdrasil 0.5 installed (the test needs its 0.5 config and addresses)
  command -v yggdrasil >/dev/null && dpkg-query -W -f='${Version}' yggdrasil 2>/dev/null | grep -q '^0\.5\.'
}

if [[ ! -f $stamp ]] || [[ -n $(missing_packages) ]] ||
  ! command -v prosodyctl >/dev/null || ! command -v busted >/dev/null ||
  ! yggdrasil_05; then
  add_backports
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
  # Prosody 13 from backports; keep the system service from running on the
  # machine's own ports: tests run their own servers with their own configs.
  if ! dpkg-query -W -f='${Version}' prosody 2>/dev/null | grep -q '^13\.'; then
    apt-get install -y -qq -t bookworm-backports prosody lua-unbound >/dev/null
  fi
  systemctl disable --now prosody >/dev/null 2>&1 || service prosody stop >/dev/null 2>&1 || true
  # Yggdrasil 0.5 from backports (bookworm itself has 0.4), for
  # test/integration/yggdrasil.sh: a real overlay between namespaces.
  if ! yggdrasil_05; then
    apt-get install -y -qq -t bookworm-backports yggdrasil >/dev/null
  fi
  # The same for ejabberd, unbound and yggdrasil: the tests run their own, with
  # their own config files, inside their namespaces.
  for service in ejabberd unbound yggdrasil; do
    systemctl disable --now "$service" >/dev/null 2>&1 || service "$service" stop >/dev/null 2>&1 || true
  done
  touch "$stamp"
fi

# Prosody 0.12.3 from plain bookworm, unpacked beside 13 (never installed over it).
old_root=/opt/v6mesh-prosody-0.12
if [[ ! -x $old_root/usr/bin/prosodyctl ]]; then
  tmp=$(mktemp -d)
  ( cd "$tmp" && apt-get download -qq prosody/bookworm >/dev/null )
  mkdir -p "$old_root"
  dpkg -x "$tmp"/prosody_0.12*.deb "$old_root"
  rm -rf "$tmp"
fi
# The unpacked binaries hard-code the system library and plugin directories
# (those of Prosody 13): point them at the unpacked copy so both versions run
# side by side. Only the exact original value is replaced, so this is idempotent.
for bin in prosody prosodyctl prosody-migrator; do
  f=$old_root/usr/bin/$bin
  [[ -f $f ]] || continue
  grep -qE "^CFG_(SOURCE|PLUGIN)DIR='/usr/lib/prosody" "$f" || continue
  sed -i \
    -e "s|^CFG_SOURCEDIR='/usr/lib/prosody';|CFG_SOURCEDIR='$old_root/usr/lib/prosody';|" \
    -e "s|^CFG_PLUGINDIR='/usr/lib/prosody/modules/';|CFG_PLUGINDIR='$old_root/usr/lib/prosody/modules/';|" \
    "$f"
done

# Prosody 0.12.3 on Lua 5.1 and on LuaJIT, and trunk on Lua 5.4, built from the
# tarballs in ../shared/prosody-src (V6M_PROSODY_SRC); skipped when already built.
bash "$here/scripts/build-prosody.sh"

if [[ ! -d $here/node_modules/typescript-to-lua ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
