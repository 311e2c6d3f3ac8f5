#!/usr/bin/env bash
# One server, several addresses: each host's s2s connections leave from the
# address its own name encodes (SPEC 3.3), whatever the kernel would pick.
#
#   sudo bash test/integration/suites/multihome.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# A (VERSION_A) has four addresses on one interface and four VirtualHosts:
#   H1 and H2, each named by an address of A that s2s listens on;
#   H3, named by an address that is not on the machine;
#   H4, named by an address on the machine that s2s does not listen on.
# B and D (VERSION_B) are peers, one address each.
#   1. the load-time diagnostics say which names are served where (H1, H2),
#      and why H3 and H4 cannot federate;
#   2. H1 and H2 federate both ways with B; every connection attempt B sees
#      from A comes from the address of the host it is for (tcpdump in B), and
#      B's incoming streams vouch for each host at its own address;
#   3. the kernel prefers another address (H1's is deprecated, as a stable
#      address next to a temporary one is): H1 still reaches D from H1's own
#      address, and D reaches H1;
#   4. H3's chat to B bounces at once, naming the missing address, and no
#      connection is attempted;
#   5. 0 DNS packets (with a canary that shows the trap records).
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "integration-multihome-$va-$vb"
SECONDS=0

ip1=${V6M_PREFIX}::1:1
ip2=${V6M_PREFIX}::1:2
ip3=${V6M_PREFIX}::1:3 # H3: never on the machine
ip4=${V6M_PREFIX}::1:4 # H4: on the machine, not listened on
ip_b=${V6M_PREFIX}::b
ip_d=${V6M_PREFIX}::d
for v in 1 2 3 4 _b _d; do
  ipv=ip$v
  printf -v "dom$v" '%s' "$(v6alt_name "${!ipv}")" || v6m_die "v6alt_name ${!ipv}"
done
# shellcheck disable=SC2154 # dom1 ... set by printf -v
v6m_log "H1 $dom1 [$ip1], H2 $dom2 [$ip2], H3 $dom3 [$ip3], H4 $dom4 [$ip4], B $dom_b, D $dom_d"

mesh_create
v6m_use_rock
prosody_create a "$va" "$dom1" "$ip1"
prosody_add_host a a2 "$dom2" "$ip2"
prosody_add_host a a3 "$dom3"
node_addr_add a "$ip4"
prosody_add_host a a4 "$dom4"
prosody_create b "$vb" "$dom_b" "$ip_b"
prosody_create d "$vb" "$dom_d" "$ip_d"
syn_count_start b
syn_count_start d
prosody_install_start a b d
for u in "a alice" "a2 carol" "a3 eve" "b bob" "d dave"; do
  read -r srv user <<<"$u"
  v6m_check "adduser $user on $(prosody_domain "$srv")" prosody_adduser "$srv" "$user" "pw-$user" || exit 1
done

# ------------------------------------------------------------------ 1
say "1. diagnostics"
log_check() { # DESC ERE
  if prosody_log_grep a "$2"; then v6m_ok "A logged: $1"; else v6m_not_ok "A logged: $1" "no line matches /$2/"; fi
}
log_check "$dom1 is served at [$ip1] and sends from there" "$(ere "$dom1") is served at \[$(ere "$ip1")\], and its s2s connections leave from there"
log_check "$dom2 is served at [$ip2] and sends from there" "$(ere "$dom2") is served at \[$(ere "$ip2")\], and its s2s connections leave from there"
log_check "$dom3: [$ip3] is not an address of this machine" "$(ere "$dom3") stands for \[$(ere "$ip3")\], which is not an address of this machine"
log_check "$dom4: s2s does not listen on [$ip4]" "$(ere "$dom4") stands for \[$(ere "$ip4")\], but s2s does not listen there"

# ------------------------------------------------------------------ 2
say "2. two hosts, two addresses, one peer"
kernel_src=$(node_exec a ip -6 route get "$ip_b" | grep -oE 'src [0-9a-f:]+' | cut -d' ' -f2)
note "the kernel's own choice from A to B: [$kernel_src]"
chat_check a alice pw-alice b bob pw-bob "h1-to-b"
chat_check a2 carol pw-carol b bob pw-bob "h2-to-b"
chat_check b bob pw-bob a alice pw-alice "b-to-h1"
chat_check b bob pw-bob a2 carol pw-carol "b-to-h2"
from_a=$(syn_list b | awk -v b="$ip_b" '$2 == b {print $1}' | sort -u | tr '\n' ' ')
note "connection attempts to B came from: $from_a"
if [[ " $from_a " == *" $ip1 "* && " $from_a " == *" $ip2 "* ]] &&
  [[ -z $(tr ' ' '\n' <<<"$from_a" | grep -vxF -e "$ip1" -e "$ip2" -e "") ]]; then
  v6m_ok "B saw connections from [$ip1] and [$ip2] only (the kernel alone would use [$kernel_src] for both)"
else
  v6m_not_ok "B saw connections from [$ip1] and [$ip2] only" "from: $from_a"
fi
for h in "$dom1 $ip1" "$dom2 $ip2"; do
  read -r dom ip <<<"$h"
  if prosody_log_grep b " s2sin[0-9a-f]+[[:space:]]+info[[:space:]]+Trusting $(ere "$dom"): it is at \[$(ere "$ip")\]"; then
    v6m_ok "B: the incoming stream for $dom came from [$ip]"
  else
    v6m_not_ok "B: the incoming stream for $dom came from [$ip]" "no such s2sin line"
  fi
done
if prosody_log_grep b "Refusing s2s stream"; then
  v6m_not_ok "B refused no stream" "$(grep -m2 'Refusing s2s stream' "$(prosody_log b)" | tr '\n' ' ')"
else
  v6m_ok "B refused no stream"
fi

# ------------------------------------------------------------------ 3
say "3. the kernel prefers another address"
node_exec a ip -6 addr change "$ip1/128" dev eth0 preferred_lft 0 nodad || v6m_die "cannot deprecate $ip1"
kernel_src=$(node_exec a ip -6 route get "$ip_d" | grep -oE 'src [0-9a-f:]+' | cut -d' ' -f2)
if [[ -n $kernel_src && $kernel_src != "$ip1" ]]; then
  v6m_ok "premise: with [$ip1] deprecated, the kernel sends from [$kernel_src] to D"
else
  v6m_not_ok "premise: with [$ip1] deprecated, the kernel sends from another address to D" "route get: [$kernel_src]"
fi
chat_check a alice pw-alice d dave pw-dave "h1-to-d"
chat_check d dave pw-dave a alice pw-alice "d-to-h1"
from_a=$(syn_list d | awk -v d="$ip_d" '$2 == d {print $1}' | sort -u | tr '\n' ' ')
v6m_check_eq "D saw connections from [$ip1] only" "$ip1 " "$from_a"
if prosody_log_grep d " s2sin[0-9a-f]+[[:space:]]+info[[:space:]]+Trusting $(ere "$dom1"): it is at \[$(ere "$ip1")\]"; then
  v6m_ok "D: the incoming stream for $dom1 came from [$ip1]"
else
  v6m_not_ok "D: the incoming stream for $dom1 came from [$ip1]" "no such s2sin line"
fi

# ------------------------------------------------------------------ 4
say "4. a host whose address is not on the machine"
syns_before=$(syn_count b)
send_probe a3 eve pw-eve "bob@$dom_b" 10
note "eve's error reply: $P_COND: $P_TEXT ($P_MS ms)"
if ((P_RC == 0)) && [[ -n $P_COND && $P_TEXT == *"[$ip3]"* && $P_TEXT == *"not an address of this machine"* ]] && ((P_MS >= 0 && P_MS < 2000)); then
  v6m_ok "H3's chat to B bounces at once ($P_COND in $P_MS ms), naming [$ip3]"
else
  v6m_not_ok "H3's chat to B bounces at once, naming [$ip3]" "exit $P_RC: $P_COND: $P_TEXT ($P_MS ms)"
fi
log_check "why H3 did not connect" "Not connecting from $(ere "$dom3") to $(ere "$dom_b"): $(ere "$dom3") sends from \[$(ere "$ip3")\], the address its name encodes, and that is not an address of this machine"
v6m_check_eq "no connection attempt for H3" "$syns_before" "$(syn_count b)"

# ------------------------------------------------------------------ 5
dns_canary a
check_dns_zero "the whole run"
logs_lack "no Lua error" "stack traceback|attempt to (index|call)" a b d
note "took $SECONDS s"
v6m_finish
