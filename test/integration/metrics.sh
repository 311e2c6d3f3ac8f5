#!/usr/bin/env bash
# What an operator sees of the module: its metrics in Prosody's own
# statistics (mod_http_openmetrics) and `prosodyctl shell v6alt status`.
#
#   sudo bash test/integration/metrics.sh [VERSION]   (13, 0.12, ...; default 13)
#
# A (VERSION, statistics = "internal", mod_http_openmetrics, the DNS listener
# on [A]:5390) and B (the same version). A second address on A's interface
# has no host. Each step scrapes /metrics before and after and checks what
# moved, and by how much:
#   1. a routed chat A -> B: connections{outcome="connecting"} +1 and
#      trusted{direction="outgoing"} +1 (B's certificate by its address);
#   2. refused destinations: a loopback name (+1 special-purpose), a
#      malformed name (+1 malformed), both bouncing;
#   3. DNS: a good name (+1 noerror), a malformed one (+1 nxdomain), a
#      name outside .v6.alt (+1 refused);
#   4. `v6alt status` on A: open, each address of A with its name and the
#      host that sends from it, the DNS listener, the refusals of step 2.
set -uo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

version=${1:-13}
v6m_setup "metrics-$version"
SECONDS=0

ip_a=$V6M_PREFIX::a
ip_a2=$V6M_PREFIX::a2 # on A, no host
ip_b=$V6M_PREFIX::b
dom_a=$(v6alt_name "$ip_a") && dom_b=$(v6alt_name "$ip_b") && dom_a2=$(v6alt_name "$ip_a2") || v6m_die "v6alt_name"
mesh_create
v6m_use_rock
prosody_create --modules "http_openmetrics" a "$version" "$dom_a" "$ip_a" "statistics = \"internal\"
statistics_interval = \"manual\"
http_ports = { 5280 }
http_interfaces = { \"::1\" }
s2s_v6mesh_dns_listen = { \"[$ip_a]:5390\" }
s2s_v6mesh_dns_allow = { \"$ip_b/128\" }"
node_addr_add a "$ip_a2"
prosody_create b "$version" "$dom_b" "$ip_b"
prosody_install_start a b
prosody_adduser a alice pw-alice >/dev/null || v6m_die "adduser alice"
prosody_adduser b bob pw-bob >/dev/null || v6m_die "adduser bob"

# scrape — A's /metrics (from inside A: mod_http_openmetrics answers loopback)
scrape() { node_exec a curl -s --max-time 10 "http://[::1]:5280/metrics"; }
# metric TEXT NAME LABEL_MATCH — the value of the one sample of NAME whose
# labels contain LABEL_MATCH (e.g. 'reason="malformed"'), 0 if none
metric() {
  awk -v name="$2" -v want="$3" 'index($0, name "{") == 1 && index($0, want) { v = $NF } END { print v + 0 }' <<<"$1"
}
# moved DESC NAME LABEL_MATCH BEFORE AFTER DELTA
moved() {
  local was now
  was=$(metric "$4" "$2" "$3")
  now=$(metric "$5" "$2" "$3")
  v6m_check_eq "$1: $2{$3} rose by $6 ($was -> $now)" "$6" "$((now - was))"
}

say "0. the scrape"
m0=$(scrape)
if grep -q '^prosody_mod_s2s_v6mesh__' <<<"$m0" || grep -q '^# TYPE prosody_mod_s2s_v6mesh__' <<<"$m0"; then
  v6m_ok "A's /metrics lists the module's families ($(grep -c '^# TYPE prosody_mod_s2s_v6mesh__' <<<"$m0") of them)"
else
  v6m_not_ok "A's /metrics lists the module's families" "$(head -c 300 <<<"$m0")"
fi
grep '^# HELP prosody_mod_s2s_v6mesh__' <<<"$m0" | sed 's/^/#     /'

say "1. a routed chat"
chat_check a alice pw-alice b bob pw-bob "metrics-a-to-b"
m1=$(scrape)
moved "the chat to B" prosody_mod_s2s_v6mesh__connections_total 'outcome="connecting"' "$m0" "$m1" 1
moved "the chat to B" prosody_mod_s2s_v6mesh__trusted_total 'direction="outgoing"' "$m0" "$m1" 1

say "2. refused destinations"
send_probe a alice pw-alice "x@a-e.v6.alt" 10
v6m_check_eq "a chat to a-e.v6.alt bounces" "policy-violation" "$P_COND"
send_probe a alice pw-alice "x@bad1-e.v6.alt" 10
v6m_check_eq "a chat to a malformed name bounces" "remote-server-not-found" "$P_COND"
m2=$(scrape)
moved "the loopback name" prosody_mod_s2s_v6mesh__refusals_total 'reason="special-purpose"' "$m1" "$m2" 1
moved "the malformed name" prosody_mod_s2s_v6mesh__refusals_total 'reason="malformed"' "$m1" "$m2" 1
moved "nothing connected for them" prosody_mod_s2s_v6mesh__connections_total 'outcome="connecting"' "$m1" "$m2" 0
grep '^prosody_mod_s2s_v6mesh__refusals_total' <<<"$m2" | sed 's/^/#     /'

say "3. DNS"
ask() { node_exec b dig +time=2 +tries=1 -p 5390 "@$ip_a" "$@" 2>&1 | grep -oE 'status: [A-Z]+' | cut -d' ' -f2; }
v6m_check_eq "AAAA $dom_b from B" NOERROR "$(ask AAAA "$dom_b")"
v6m_check_eq "AAAA of a malformed name" NXDOMAIN "$(ask AAAA bad1-e.v6.alt)"
v6m_check_eq "AAAA of a name outside .v6.alt" REFUSED "$(ask AAAA example.org)"
m3=$(scrape)
for r in noerror nxdomain refused; do
  moved "one query" prosody_mod_s2s_v6mesh__dns_queries_total "rcode=\"$r\"" "$m2" "$m3" 1
done

say "4. v6alt status"
if prosody_shell a v6alt status; then
  v6m_ok "v6alt status on A answers ($(tail -n 1 <<<"$V6M_OUT"))"
else
  v6m_not_ok "v6alt status on A answers" "$V6M_OUT $V6M_ERR"
fi
sed 's/^/#     | /' <<<"$V6M_OUT"
for want in ".v6.alt federation: open" \
  "address [$ip_a] = $dom_a: host $dom_a, sending from this address" \
  "address [$ip_a2] = $dom_a2: no host" \
  "DNS listener: [$ip_a]:5390" \
  "refused (malformed): 1" \
  "refused (special-purpose): 1"; do
  if grep -qxF -- "$want" <<<"$V6M_OUT"; then v6m_ok "status says: $want"; else v6m_not_ok "status says: $want" "not among its lines"; fi
done

no_lua_errors a 0 "A: no Lua error"
dns_canary a
check_dns_zero "the whole run"
note "took $SECONDS s"
v6m_finish
