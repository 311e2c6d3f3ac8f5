#!/usr/bin/env bash
# Proves the harness itself, without the module: two plain Prosody servers
# (VERSION_A, VERSION_B: 13 or 0.12; default 13 13) with ordinary names mapped
# through /etc/netns/<ns>/hosts, dialback over TLS (self-signed certs, so
# s2s_secure_auth = false here), users on both, a chat each way, and the DNS
# trap must have counted the SRV lookups Prosody makes for ordinary names.
#
#   sudo bash test/integration/harness-selftest.sh [VERSION_A [VERSION_B]]
set -uo pipefail
# shellcheck source=test/integration/lib.sh
source "$(dirname "$0")/lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "integration-harness-$va-$vb"

ip_a=$V6M_PREFIX::a
ip_b=$V6M_PREFIX::b
# Not under .test: libunbound answers .test itself (RFC 6761 local zone).
dom_a=alpha.v6mesh-selftest
dom_b=beta.v6mesh-selftest

mesh_create
node_add a "$ip_a"
node_add b "$ip_b"
for n in a b; do
  node_hosts_add "$n" "$ip_a" "$dom_a"
  node_hosts_add "$n" "$ip_b" "$dom_b"
done
v6m_check "mesh: a reaches b over the bridge" node_ping a "$ip_b"
v6m_check "mesh: b reaches a over the bridge" node_ping b "$ip_a"
v6m_check_eq "DNS trap starts at 0" 0 "$(dns_count)"
# The trap must see DNS to the hub, to another node and to anywhere else (the
# default route leads to the hub, which forwards nothing).
probe=0
for dst in "$V6M_HUB_IP" "$ip_b" 2001:db8::53; do
  node_exec a bash -c "echo probe >/dev/udp/$dst/53" 2>/dev/null
  probe=$((probe + 1))
  sleep 0.3
  v6m_check_eq "DNS trap counts a UDP/53 packet from a to $dst" "$probe" "$(dns_count)"
done

# Prosody's libunbound ignores /etc/hosts unless told (hoststxt = false by
# default), and waits long for the (silent) DNS server: cap its timeout.
plain='s2s_secure_auth = false
unbound = { hoststxt = true; options = { ["infra-cache-max-rtt:"] = "300" } }'
prosody_create --no-module a "$va" "$dom_a" "$ip_a" "$plain"
prosody_create --no-module b "$vb" "$dom_b" "$ip_b" "$plain"
v6m_check "start server a (Prosody $va)" prosody_start a || exit 1
v6m_check "start server b (Prosody $vb)" prosody_start b || exit 1

v6m_check "adduser alice on a" prosody_adduser a alice pw-alice
v6m_check "adduser bob on b" prosody_adduser b bob pw-bob

if prosody_shell a 'server:version()'; then
  v6m_ok "admin shell on a answers: $(head -n 1 <<<"$V6M_OUT")"
else
  v6m_not_ok "admin shell on a" "$V6M_OUT $V6M_ERR"
fi

# One chat each way, the receiver online first.
chat_check a alice pw-alice b bob pw-bob "hello from alpha"
chat_check b bob pw-bob a alice pw-alice "hello from beta"

n=$(($(dns_count) - probe))
if ((n > 0)); then
  v6m_ok "DNS trap counted the $n DNS packets of ordinary s2s (e.g. $(dns_queries | grep -oE 'SRV\? [^ ]+' | head -n 1))"
else
  v6m_not_ok "DNS trap counted DNS packets" "0 counted: the trap does not see DNS"
fi
v6m_check "no Lua traceback in a's log" bash -c "! grep -q 'stack traceback' '$(prosody_log a)'"
v6m_check "no Lua traceback in b's log" bash -c "! grep -q 'stack traceback' '$(prosody_log b)'"
v6m_finish
