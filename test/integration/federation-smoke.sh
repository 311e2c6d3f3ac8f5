#!/usr/bin/env bash
# Federation over .v6.alt names with the module, no DNS anywhere.
#
#   sudo bash test/integration/federation-smoke.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# Two servers on their own ULA addresses in the mesh, each named by the
# .v6.alt name of its address (computed by the shipped dist/ Lua), the module
# installed from build/rocks/ (V6M_ROCK overrides), s2s_require_encryption and
# s2s_secure_auth on (self-signed certificates: the module must vouch for them).
# A chat each way must be delivered, and the DNS trap must count 0 packets.
set -uo pipefail
# shellcheck source=test/integration/lib.sh
source "$(dirname "$0")/lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "integration-federation-smoke-$va-$vb"

ip_a=$V6M_PREFIX::a
ip_b=$V6M_PREFIX::b
if ! dom_a=$(v6alt_name "$ip_a" 2>&1) || ! dom_b=$(v6alt_name "$ip_b" 2>&1); then
  v6m_not_ok "names from dist/mod_s2s_v6mesh/v6alt.lua" "${dom_a:-} ${dom_b:-} (run npm run build)"
  exit 1
fi
v6m_ok "names: $ip_a = $dom_a, $ip_b = $dom_b"

v6m_use_rock

mesh_create
prosody_create a "$va" "$dom_a" "$ip_a"
prosody_create b "$vb" "$dom_b" "$ip_b"
v6m_check "mesh: a reaches b" node_ping a "$ip_b"

for n in a b; do
  if prosody_install_rock "$n" "$rock"; then
    v6m_ok "$n: prosodyctl install $(basename "$rock") (Prosody $(prosody_version "$n"))"
  else
    v6m_not_ok "$n: prosodyctl install $(basename "$rock")" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
  fi
  v6m_check "$n: starts (Prosody $(prosody_version "$n"), $(prosody_domain "$n"))" prosody_start "$n" || exit 1
  v6m_check "$n: s2s_v6mesh is loaded" prosody_module_loaded "$n" s2s_v6mesh
done
v6m_check "adduser alice on a" prosody_adduser a alice pw-alice
v6m_check "adduser bob on b" prosody_adduser b bob pw-bob

chat_check a alice pw-alice b bob pw-bob "hello from a over v6alt" 30
chat_check b bob pw-bob a alice pw-alice "hello from b over v6alt" 30

n=$(dns_count)
if ((n == 0)); then
  v6m_ok "0 DNS packets on the mesh"
else
  v6m_not_ok "0 DNS packets on the mesh" "$n counted: $(dns_queries | grep -oE '(A|AAAA|SRV)\? [^ ]+' | sort -u | head -n 5 | tr '\n' ' ')"
fi
# Even a lookup libunbound answers itself (no packet) is a DNS query.
logs_lack "no DNS lookup of a .v6.alt name in its log" 'Resolve [^ ]*v6\.alt' a b
logs_lack "no Lua traceback in its log" 'stack traceback' a b
v6m_finish
