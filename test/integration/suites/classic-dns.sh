#!/usr/bin/env bash
# The module leaves classic DNS federation to Prosody (SPEC §3 "Other
# federation is untouched").
#
#   sudo bash test/integration/suites/classic-dns.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# Three servers, all with the module:
#   A  VERSION_A, named by .v6.alt (its address in $V6M_PREFIX::/64)
#   B  VERSION_B, named by .v6.alt
#   D  VERSION_B, named classically: classic.example (RFC 2606 reserved; not
#      .test, which libunbound answers itself), found through DNS.
# A DNS server on the mesh: dnsmasq in the hub namespace on the hub's address
# ($V6M_HUB_IP, the nameserver every node's resolv.conf already names),
# authoritative for example. with _xmpp-server._tcp.classic.example SRV ->
# classic.example:5269 and classic.example AAAA -> D's address. The harness's
# DNS trap keeps recording every DNS packet on the bridge.
#
# D's certificate is self-signed and nothing vouches for it (the module only
# vouches for .v6.alt names), so A must be told to accept it. The least
# weakening that does it: s2s_insecure_domains = { "classic.example" } on A
# only. A still requires TLS with every peer (s2s_require_encryption) and valid
# certificates from every other domain (s2s_secure_auth); D proves its name to
# A by dialback, which goes through DNS to D's address; D changes nothing (it
# trusts A's certificate through the module: A connects from the address its
# name encodes). `s2s_secure_auth = false` on both would instead drop the
# certificate requirement for every peer of both servers.
#
# Checks: chats A->D, D->A, A->B, B->A delivered; D authenticated to A by
# dialback after DNS, A to D by SASL EXTERNAL; the DNS server and the trap saw
# the SRV and AAAA queries for classic.example from A; no DNS query anywhere
# names a .v6.alt domain and no server's resolver was asked for one.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "classic-dns-$va-$vb"

v6m_use_rock
command -v dnsmasq >/dev/null || v6m_die "missing tool: dnsmasq (run scripts/install-deps.sh)"

ip_a=$V6M_PREFIX::c:a
ip_b=$V6M_PREFIX::c:b
ip_d=$V6M_PREFIX::c:d
dom_a=$(v6alt_name "$ip_a") || v6m_die "v6alt_name $ip_a"
dom_b=$(v6alt_name "$ip_b") || v6m_die "v6alt_name $ip_b"
dom_d=classic.example
srv_d=_xmpp-server._tcp.$dom_d

mesh_create

# dnsmasq on the hub's address, inside the hub namespace, in the foreground
# (tracked, so cleanup ends it). Authoritative for example.: never forwards.
dns_log=$V6M_TMP/dnsmasq.log
ip netns exec "$V6M_HUB_NS" dnsmasq --keep-in-foreground --conf-file=/dev/null \
  --no-resolv --no-hosts --no-poll --bind-interfaces --listen-address="$V6M_HUB_IP" \
  --port=53 --user=root --group=root --pid-file="$V6M_TMP/dnsmasq.pid" \
  --local=/example/ --srv-host="$srv_d,$dom_d,5269,0,0" --host-record="$dom_d,$ip_d" \
  --log-queries --log-facility="$dns_log" 2>"$V6M_TMP/dnsmasq.err" &
dnsmasq_pid=$!
v6m__track_pid "$dnsmasq_pid"
for ((i = 0; i < 50; i++)); do
  ip netns exec "$V6M_HUB_NS" ss -Hlun "sport = :53" 2>/dev/null | grep -qF "$V6M_HUB_IP" && break
  sleep 0.1
done
if ! kill -0 "$dnsmasq_pid" 2>/dev/null; then
  v6m_not_ok "dnsmasq runs on [$V6M_HUB_IP]:53 in the hub" "$(cat "$V6M_TMP/dnsmasq.err")"
  exit 1
fi
v6m_ok "dnsmasq runs on [$V6M_HUB_IP]:53 in the hub"

insecure="s2s_insecure_domains = { \"$dom_d\" }"
prosody_create a "$va" "$dom_a" "$ip_a" "$insecure"
prosody_create b "$vb" "$dom_b" "$ip_b"
prosody_create d "$vb" "$dom_d" "$ip_d"
for n in a b d; do
  v6m_check "$n: resolv.conf names the mesh DNS server" grep -qx "nameserver $V6M_HUB_IP" "/etc/netns/$V6M_ID-$n/resolv.conf"
done
# The mesh DNS answers classic.example (glibc's resolver in A's namespace).
got=$(node_exec a getent ahostsv6 "$dom_d" | awk 'NR == 1 {print $1}')
v6m_check_eq "a: getent ahostsv6 $dom_d (DNS on the mesh) -> $ip_d" "$ip_d" "$got"
base=$(dns_count)

for n in a b d; do
  if ! prosody_install_rock "$n" "$rock"; then
    v6m_not_ok "$n: prosodyctl install" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
  fi
  v6m_check "$n: starts (Prosody $(prosody_version "$n")) as $(prosody_domain "$n")" prosody_start "$n" || exit 1
  v6m_check "$n: s2s_v6mesh is loaded" prosody_module_loaded "$n" s2s_v6mesh
done
v6m_check "adduser alice on a" prosody_adduser a alice pw-alice
v6m_check "adduser bob on b" prosody_adduser b bob pw-bob
v6m_check "adduser dave on d" prosody_adduser d dave pw-dave

chat_check a alice pw-alice d dave pw-dave "from v6alt a to classic d" 30
chat_check d dave pw-dave a alice pw-alice "from classic d to v6alt a" 30
chat_check a alice pw-alice b bob pw-bob "from v6alt a to v6alt b" 30
chat_check b bob pw-bob a alice pw-alice "from v6alt b to v6alt a" 30

# --- DNS: the classic name went through DNS, the .v6.alt names never did.
total=$(dns_count)
queries=$(dns_queries)
# The packets since the servers started (the getent probe came before).
server_queries=$(tail -n +$((base + 1)) <<<"$queries")
if ((total > base)); then
  v6m_ok "the trap counted $((total - base)) DNS packets of classic federation"
else
  v6m_not_ok "the trap counted DNS packets of classic federation" "$total packets, $base before the servers started"
fi
for q in "SRV? $srv_d." "AAAA? $dom_d."; do
  if grep -F "$ip_a." <<<"$server_queries" | grep -qF "$q"; then
    v6m_ok "trap: a's server asked DNS '$q'"
  else
    v6m_not_ok "trap: a's server asked DNS '$q'" "$(grep -oE '[A-Z]+\? [^ ]+' <<<"$server_queries" | sort -u | tr '\n' ' ')"
  fi
done
if grep -qE "query\[SRV\] $(sed 's/[.]/\\./g' <<<"$srv_d") from $ip_a" "$dns_log" &&
  grep -qE "config $(sed 's/[.]/\\./g' <<<"$srv_d") is <SRV>" "$dns_log"; then
  v6m_ok "dnsmasq answered a's SRV query for $srv_d"
else
  v6m_not_ok "dnsmasq answered a's SRV query for $srv_d" "$(grep -m 4 query "$dns_log" | tr '\n' ' ')"
fi
if grep -qiF "v6.alt" <<<"$queries"; then
  v6m_not_ok "no DNS query names a .v6.alt domain" "$(grep -iF 'v6.alt' <<<"$queries" | head -n 3 | tr '\n' ' ')"
else
  v6m_ok "no DNS query names a .v6.alt domain ($(grep -oE '[A-Z]+\? [^ ]+' <<<"$queries" | sort -u | tr '\n' ' '))"
fi
if grep -qiF "v6.alt" "$dns_log"; then
  v6m_not_ok "dnsmasq was never asked for a .v6.alt name" "$(grep -iF -m 2 'v6.alt' "$dns_log" | tr '\n' ' ')"
else
  v6m_ok "dnsmasq was never asked for a .v6.alt name"
fi
others=$(grep -oE '[A-Z]+\? [^ ]+' <<<"$queries" | grep -vF "$dom_d." | sort -u | tr '\n' ' ')
if [[ -z $others ]]; then
  v6m_ok "every DNS query was for $dom_d"
else
  v6m_not_ok "every DNS query was for $dom_d" "also: $others"
fi
# The resolver logs every lookup it starts, even those answered without a packet.
logs_lack "its resolver never looked up a .v6.alt name" '[Rr]esolv[a-z]* [^ ]*v6\.alt' a b d

# --- How each side authenticated the other.
log_has() { # NAME DESC ERE
  if prosody_log_grep "$1" "$3"; then v6m_ok "$1: log: $2"; else v6m_not_ok "$1: log: $2" "no line matches /$3/"; fi
}
log_lacks() {
  if prosody_log_grep "$1" "$3"; then
    v6m_not_ok "$1: log: $2" "$(grep -E -m 2 -- "$3" "$(prosody_log "$1")" | tr '\n' ' ')"
  else
    v6m_ok "$1: log: $2"
  fi
}
log_has a "resolved $dom_d through DNS: SRV" "Resolve $(ere "$srv_d") IN SRV"
log_has a "resolved $dom_d through DNS: AAAA" "Resolve $(ere "$dom_d") IN AAAA"
log_lacks a "the module never vouched for $dom_d" "Trusting $(ere "$dom_d")"
log_lacks a "never refused $dom_d" "Forbidding insecure connection to/from $(ere "$dom_d")|Refusing s2s stream"
log_has a "asked $dom_d to verify its dialback key" "s2sin[0-9a-f]+[[:space:]]+debug[[:space:]]+asking $(ere "$dom_d") if key [0-9a-f]+ belongs to them"
log_has a "incoming stream from $dom_d authenticated (by dialback)" "s2sin[0-9a-f]+[[:space:]]+debug[[:space:]]+connection $(ere "$dom_d")->$(ere "$dom_a") is now authenticated for $(ere "$dom_d")"
log_lacks a "no SASL EXTERNAL for $dom_d (its certificate is not valid)" "Accepting SASL EXTERNAL identity from $(ere "$dom_d")"
log_has d "trusted $dom_a by its address (outgoing and incoming)" "Trusting $(ere "$dom_a"): it is at \[$(ere "$ip_a")\]"
log_has d "accepted SASL EXTERNAL from $dom_a" "Accepting SASL EXTERNAL identity from $(ere "$dom_a")"
log_has a "trusted $dom_b by its address" "Trusting $(ere "$dom_b"): it is at \[$(ere "$ip_b")\]"
for n in a b d; do
  log_lacks "$n" "no Lua traceback" "stack traceback"
done
v6m_finish
