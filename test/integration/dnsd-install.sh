#!/usr/bin/env bash
# v6alt-dnsd on a machine without Prosody: the README's install steps, as root.
#
#   sudo bash test/integration/dnsd-install.sh
#
# Runs `luarocks install ./mod_s2s_v6mesh-....rock` (luarocks' default Lua)
# and `luarocks --lua-version 5.4 install ...` system-wide, each in a private
# mount namespace with an empty tmpfs over /usr/local (so this machine's
# /usr/local is never touched) and a private network namespace (loopback
# only). Then, as the README says to run it: `v6alt-dnsd --listen [::1]:5390`
# as nobody, asked with dig for a name (AAAA), its reverse (PTR) and a
# malformed name (NXDOMAIN). Checks the installed launcher, the Lua it says it
# runs on, and that nothing else was installed or needed (lua-socket).
set -uo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

v6m_setup "dnsd-install"
SECONDS=0
v6m_use_rock
command -v dig >/dev/null || v6m_die "missing tool: dig (run scripts/install-deps.sh)"

# install_and_ask LUAROCKS_ARGS... — one install in a fresh namespace; its
# checks come back as lines "ok|not ok|info|lua<TAB>DESC<TAB>WHY".
install_and_ask() {
  V6M_ROCKFILE=$rock V6M_TMPDIR=$V6M_TMP unshare --mount --net --propagation private bash -s -- "$@" <<'EOF'
set -u
report() { printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}"; }
mount -t tmpfs tmpfs /usr/local || { report "not ok" "tmpfs over /usr/local" "mount failed"; exit 0; }
mkdir -p "$V6M_TMPDIR/home" && export HOME=$V6M_TMPDIR/home
ip link set lo up
cd "$(dirname "$V6M_ROCKFILE")" || exit 0
if out=$(luarocks "$@" install "./$(basename "$V6M_ROCKFILE")" 2>&1); then
  report ok "luarocks${*:+ $*} install ./$(basename "$V6M_ROCKFILE")"
else
  report "not ok" "luarocks $* install" "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
  exit 0
fi
if [[ -x /usr/local/bin/v6alt-dnsd ]]; then report ok "installed /usr/local/bin/v6alt-dnsd"; else report "not ok" "installed /usr/local/bin/v6alt-dnsd" "$(ls /usr/local/bin)"; exit 0; fi
log=$V6M_TMPDIR/dnsd.$$.log
setpriv --reuid=nobody --regid=nogroup --clear-groups env -i PATH=/usr/local/bin:/usr/bin:/bin \
  v6alt-dnsd --listen "[::1]:5390" >"$log" 2>&1 &
pid=$!
for _ in $(seq 50); do [[ -n $(ss -Hlun 'sport = :5390') ]] && break; sleep 0.1; done
report info "v6alt-dnsd says: $(head -n 1 "$log")"
aaaa=$(dig +time=2 +tries=1 +short -p 5390 @::1 AAAA fiabbgadu-e.v6.alt 2>&1)
[[ $aaaa == 2a00:1098:3a0::1 ]] && report ok "as nobody: AAAA fiabbgadu-e.v6.alt = 2a00:1098:3a0::1" || report "not ok" "as nobody: AAAA fiabbgadu-e.v6.alt" "got '$aaaa'; log: $(tr '\n' ' ' <"$log")"
ptr=$(dig +time=2 +tries=1 +short -p 5390 @::1 -x 2a00:1098:3a0::1 2>&1)
[[ $ptr == fiabbgadu-e.v6.alt. ]] && report ok "PTR of 2a00:1098:3a0::1 = fiabbgadu-e.v6.alt." || report "not ok" "PTR of 2a00:1098:3a0::1" "got '$ptr'"
rcode=$(dig +time=2 +tries=1 -p 5390 @::1 AAAA fiabbgaduaaaaaaaaaaaaaaaae.v6.alt 2>&1 | grep -oE 'status: [A-Z]+')
[[ $rcode == "status: NXDOMAIN" ]] && report ok "a non-canonical name: NXDOMAIN" || report "not ok" "a non-canonical name: NXDOMAIN" "got '$rcode'"
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
report lua "$(grep -oE 'Lua [0-9.]+|LuaJIT [0-9.]+' "$log" | head -n 1)"
EOF
}

for variant in "default 5.1" "--lua-version=5.4 5.4"; do
  read -r args want <<<"$variant"
  [[ $args == default ]] && args=""
  say "luarocks ${args:+$args }install (as root, system-wide)"
  ran_on=""
  while IFS=$'\t' read -r status desc why; do
    case $status in
      ok) v6m_ok "$desc" ;;
      "not ok") v6m_not_ok "$desc" "$why" ;;
      info) note "$desc" ;;
      lua) ran_on=$desc ;;
    esac
  done < <(install_and_ask $args) # shellcheck disable=SC2086 # one word or none
  v6m_check_eq "v6alt-dnsd runs on Lua $want" "Lua $want" "$ran_on"
done
if [[ -z $(find /usr/local -newer "$rock" -name 'v6alt-dnsd' 2>/dev/null) ]]; then
  v6m_ok "this machine's /usr/local was not touched"
else
  v6m_not_ok "this machine's /usr/local was not touched" "$(find /usr/local -newer "$rock" -name 'v6alt-dnsd')"
fi
note "took $SECONDS s"
v6m_finish
