#!/usr/bin/env bash
# The module's admin-shell commands, on one Prosody build (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk).
#
#   sudo bash test/integration/shell.sh [VERSION]        (default 13)
#
# Takes the rock from build/rocks/ (npm run rock); V6M_ROCK=path.rock and
# V6M_ROCKS_SERVER=dir override. Two servers share one namespace: server
# "one" gets `prosodyctl install <rockfile>`, server "two" gets
# `prosodyctl install --server=<rocks dir> mod_s2s_v6mesh`; both start and must
# answer the v6alt shell commands exactly as SPEC.md §3 says.
set -uo pipefail
# shellcheck source=test/integration/lib.sh
source "$(dirname "$0")/lib.sh"

version=${1:-13}
v6m_setup "integration-shell-$version"

rock=$(v6m_find_rock)
rocks_server=$(v6m_find_rocks_server)
if [[ -z $rock ]]; then
  v6m_not_ok "rock exists" "no build/rocks/mod_s2s_v6mesh-*.rock: run npm run rock"
  exit 1
fi
v6m_log "rock: $rock"
v6m_log "rocks server: ${rocks_server:-none}"

mesh_create
node_add s "$V6M_PREFIX::5:1"
prosody_create --node s one "$version" one.v6mesh-shell "$V6M_PREFIX::5:1"
prosody_create --node s two "$version" two.v6mesh-shell "$V6M_PREFIX::5:2"

installed_file() { # NAME: the module file the installer put into the plugin tree
  find "$(v6m__srv "$1")/data/custom_plugins/share/lua" -name 'mod_s2s_v6mesh.lua' 2>/dev/null | head -n 1
}

check_install() { # NAME HOW
  local name=$1 how=$2 f owner
  f=$(installed_file "$name")
  if [[ -z $f ]]; then
    v6m_not_ok "$how: mod_s2s_v6mesh.lua is in $name's installer_plugin_path" "not found; output: $V6M_OUT $V6M_ERR"
    return 1
  fi
  owner=$(find "$(v6m__srv "$name")/data/custom_plugins" ! -user prosody -print -quit)
  if [[ -n $owner ]]; then
    v6m_not_ok "$how: installed files belong to prosody" "$owner"
  else
    v6m_ok "$how: installed into $name's installer_plugin_path, owned by prosody"
  fi
}

# 1. prosodyctl install <rockfile>
if prosody_install_rock one "$rock"; then
  v6m_ok "prosodyctl install $(basename "$rock") (Prosody $version)"
  check_install one "install <rockfile>"
else
  v6m_not_ok "prosodyctl install $(basename "$rock") (Prosody $version)" "exit $?: $(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
fi

# 2. prosodyctl install --server=<rocks dir> mod_s2s_v6mesh
if [[ -z $rocks_server ]]; then
  v6m_not_ok "prosodyctl install --server=build/rocks mod_s2s_v6mesh" "no manifest in build/rocks"
elif prosody_install_rock two "$rocks_server"; then
  v6m_ok "prosodyctl install --server=$rocks_server mod_s2s_v6mesh (Prosody $version)"
  check_install two "install --server"
else
  v6m_not_ok "prosodyctl install --server=$rocks_server mod_s2s_v6mesh (Prosody $version)" "exit $?: $(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
fi
v6m_check_eq "installing made no DNS queries" 0 "$(dns_count)"

# Exactly this stdout, exit 0.
shell_ok() { # NAME EXPECTED ARGS...
  local name=$1 expected=$2 rc=0
  shift 2
  prosody_shell "$name" "$@" || rc=$?
  if ((rc == 0)) && [[ $V6M_OUT == "$expected" ]]; then
    v6m_ok "$name: shell $* -> $expected"
  else
    v6m_not_ok "$name: shell $* -> $expected" "exit $rc, stdout '$V6M_OUT', stderr '$V6M_ERR'"
  fi
}

# One line of error (stdout and stderr together), non-zero exit.
shell_err() { # NAME ARGS...
  local name=$1 rc=0 all lines
  shift
  prosody_shell "$name" "$@" || rc=$?
  all=$(printf '%s\n%s\n' "$V6M_OUT" "$V6M_ERR" | sed '/^[[:space:]]*$/d')
  lines=$(wc -l <<<"$all")
  [[ -z $all ]] && lines=0
  if ((rc != 0)) && ((lines == 1)); then
    v6m_ok "$name: shell $* -> one error line, exit $rc: $all"
  else
    v6m_not_ok "$name: shell $* -> one error line and non-zero exit" "exit $rc, $lines lines: $(tr '\n' '|' <<<"$all")"
  fi
}

# The last gate (SPEC 3.2): Prosody's own resolvers and its DNS API, called
# directly as a path nobody thought of would, never ask DNS for a name under
# v6.alt; a canary name right after it must reach the capture.
GATE_LUA='>local function lib(n) local ok, l = pcall(require, "prosody." .. n); if ok then return l end; l = require(n); return l end
local out = {}
local r = lib("net.resolvers.service").new("muc.a-e.V6.ALT.", "xmpp-server", "tcp", {})
r:next(function(...) out[#out + 1] = "service:" .. select("#", ...) end)
local b = lib("net.resolvers.basic").new("x.v6.alt", 5269, "tcp", {})
b:next(function(...) out[#out + 1] = "basic:" .. select("#", ...) end)
lib("net.adns").resolver():lookup(function(a, e) out[#out + 1] = "adns:" .. tostring(a) .. ":" .. tostring(e) end, "_xmpp-server._tcp.a-e.v6.alt", "SRV", "IN")
lib("net.adns").resolver():lookup(function() end, "canary-NAME.example", "AAAA", "IN")
return table.concat(out, " ")'
gate_check() { # NAME
  local name=$1 rc=0 want
  want="Result: service:0 basic:0 adns:nil:mod_s2s_v6mesh: _xmpp-server._tcp.a-e.v6.alt is a .v6.alt name, which is never looked up in DNS"
  prosody_shell "$name" "$(tr '\n' ' ' <<<"${GATE_LUA//NAME/$name}")" || rc=$?
  if ((rc == 0)) && [[ $V6M_OUT == "$want" ]]; then
    v6m_ok "$name: Prosody's service and address resolvers and its DNS API give nothing for .v6.alt names"
  else
    v6m_not_ok "$name: Prosody's service and address resolvers and its DNS API give nothing for .v6.alt names" "exit $rc, stdout '$V6M_OUT', stderr '$V6M_ERR'"
  fi
  prosody_log_wait "$name" "Refused the DNS lookup for _xmpp-server\._tcp\.a-e\.v6\.alt: " 5 >/dev/null &&
    prosody_log_grep "$name" "Refused the address resolver for x\\.v6\\.alt: "
  v6m_check "$name: the gate logs each refusal" test $? -eq 0
}

for name in one two; do
  if ! prosody_start "$name"; then
    v6m_not_ok "$name: starts with the module (Prosody $version)" "see log tail above"
    continue
  fi
  if ! prosody_module_loaded "$name" s2s_v6mesh; then
    v6m_not_ok "$name: s2s_v6mesh is loaded (module:list)" "$(grep -E -m 3 "Unable to load module|Error initializing module" "$(prosody_log "$name")" | tr '\n' ' ')"
  elif prosody_log_grep "$name" "Unable to load module|Error initializing module|stack traceback"; then
    v6m_not_ok "$name: module loads without errors" "$(grep -E -m 3 "Unable to load module|Error initializing module|stack traceback" "$(prosody_log "$name")" | tr '\n' ' ')"
  else
    v6m_ok "$name: starts and loads mod_s2s_v6mesh without errors (Prosody $version)"
  fi

  shell_ok "$name" "OK: Encoded hostname: fiabbgadu-e.v6.alt" v6alt get_domain 2a00:1098:3a0::1
  shell_ok "$name" "OK: IP address: 2a00:1098:3a0::1" v6alt get_ip fiabbgadu-e.v6.alt
  shell_ok "$name" "OK: Encoded hostname: a-e.v6.alt" 'v6alt:get_domain("::1")'
  shell_err "$name" v6alt get_domain nonsense
  shell_ok "$name" "OK: IP address: 2a00:1098:3a0::1 (FIABBGADU-E.v6.alt. is read as fiabbgadu-e.v6.alt)" v6alt get_ip FIABBGADU-E.v6.alt.
  shell_err "$name" v6alt get_ip fiabbgaduaaaaaaaaaaaaaaaae.v6.alt
  shell_err "$name" v6alt get_ip $'a-0\xe3\x80\x82v6.alt'   # U+3002 as the first dot
  gate_check "$name"
done

# Only the canaries went to DNS.
queries=$(dns_queries)
if grep -q "canary-one" <<<"$queries" && grep -q "canary-two" <<<"$queries"; then
  v6m_ok "the DNS capture saw both servers' canary queries"
else
  v6m_not_ok "the DNS capture saw both servers' canary queries" "$(head -n 5 <<<"$queries")"
fi
v6m_check_eq "no DNS packets other than the canaries" 0 "$(grep -vc canary- <<<"$queries")"
for name in one two; do
  prosody_stop "$name"
  if prosody_running "$name"; then
    v6m_not_ok "$name stops"
  else
    v6m_ok "$name stops"
  fi
done
v6m_finish
