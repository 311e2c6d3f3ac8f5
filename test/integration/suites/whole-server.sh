#!/usr/bin/env bash
# The whole server, not only the hosts that list the module (SPEC §3.1).
#
#   sudo bash test/integration/suites/whole-server.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# A (VERSION_A) and B (VERSION_B) load the module only through the global
# modules_enabled (the harness default) and each has a MUC component
# groups.<name>; components do not load the global modules_enabled. P is a
# raw s2s client (test/integration/raws2s.py) at its own mesh address, with
# a self-signed certificate for its genuine name.
#   1. MUC both ways: bob (B) joins a room on A's component while alice (A) is
#      in it, and alice a room on B's: self-presence, the other occupant's
#      presence and groupchat messages arrive both ways. 0 DNS packets, no
#      'Resolve' of a .v6.alt name in either log.
#   2. From the component: mediated invites and declines (the room sends a
#      message to the JID) aimed at ::1, ::ffff:127.0.0.1, ::, A's own address
#      (a subdomain of A's name), a second address of A's machine, an
#      uncompressed name and a misplaced hyphen: A logs "Not sending ..." for
#      each. Then dialback db:result / db:verify probes from P to the
#      component on an unauthenticated stream, claiming each forbidden name:
#      the stream is refused or the db:verify is not routed. No SYN to port
#      5269 leaves A's namespace (tcpdump on every interface there), 0 DNS.
#   3. Per-host trust: A's VirtualHost has s2s_v6mesh_trust_all_certs = false,
#      its component the default. P authenticates (SASL EXTERNAL) to the
#      component; a chat it sends on that stream to alice@<A's VirtualHost>
#      is not delivered, while its join of a room on the component is (the
#      control). A chat from B's bob to alice is not delivered either.
#   4. allow = false for B's address on A: A's chats to B and to B's component
#      bounce with policy-violation; B's chat to alice and bob's join of a room
#      on A fail (A's log names B's address); C, not blocked, still federates.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "integration-whole-server-$va-$vb"
SECONDS=0


# ------------------------------------------------------------------ helpers

# no_resolve SRV FROM_LINE DESC: the log shows no DNS lookup of a .v6.alt name.
no_resolve() {
  local bad
  bad=$(log_since "$1" "$2" | grep -E $'\tResolve [^ ]*v6\\.alt' | head -n 2 | cut -f2- | tr '\n\t' '  ')
  if [[ -z $bad ]]; then v6m_ok "$3"; else v6m_not_ok "$3" "$bad"; fi
}
# muc_start NODE_SRV USER PASS ROOM/NICK OUTFILE ARGS...: a background muc client.
muc_start() {
  local srv=$1 user=$2 pass=$3 room=$4 out=$5
  local -a args
  shift 5
  mapfile -t args < <(client_args "$srv" "$user" "$pass")
  client_start "$(v6m__srv_get "$srv" node)" "$out" muc "${args[@]}" --room "$room" "$@"
}
# The raw client's address-to-name mapping for SYN lines: which SYNs A opened.
# A SYN whose source is an address of another node is an incoming connection.
# The raw probes that run inside A's namespace are left out by source port.
remote_srcs=()
probe_ports=()
outgoing_syns() { # lines of syn_list a after line N whose source is A itself
  local from=$1 ere pere='^$'
  ere="^($(IFS='|'; echo "${remote_srcs[*]}")) "
  ((${#probe_ports[@]})) && pere=" ($(IFS='|'; echo "${probe_ports[*]}"))\$"
  syn_list a | tail -n +"$((from + 1))" | grep -vE -- "$ere" | grep -vE -- "$pere"
}
# a_cfg_phase N: rewrite A's configuration for check N and restart A.
a_cfg_phase() {
  local cfg
  cfg=$(dirname "$(prosody_log a)")/prosody.cfg.lua
  sed -i -e '/^s2s_v6mesh_trust_all_certs = false$/d' -e '/^s2s_v6mesh_ranges = /d' "$cfg"
  case $1 in
    3) sed -i "/^VirtualHost /a s2s_v6mesh_trust_all_certs = false" "$cfg" ;;
    4) sed -i "/^VirtualHost /i s2s_v6mesh_ranges = { [\"$ip_b/128\"] = { allow = false } }" "$cfg" ;;
  esac
  prosody_stop a
  prosody_start a
}

# ------------------------------------------------------------------ setup

ip_a=${V6M_PREFIX}::a1
ip_a2=${V6M_PREFIX}::a2 # a second address of A's machine
ip_b=${V6M_PREFIX}::b1
ip_c=${V6M_PREFIX}::c1
ip_p=${V6M_PREFIX}::e1 # the raw peer P
dom_a=$(v6alt_name "$ip_a") && dom_a2=$(v6alt_name "$ip_a2") && dom_b=$(v6alt_name "$ip_b") &&
  dom_c=$(v6alt_name "$ip_c") && dom_p=$(v6alt_name "$ip_p") && dom_mapped=$(v6alt_name ::ffff:127.0.0.1) &&
  dom_loop=$(v6alt_name ::1) && dom_unspec=$(v6alt_name ::) ||
  { v6m_not_ok "names from dist/ (v6alt_name)" "run npm run build"; exit 1; }
v6m_use_rock
svc_a=groups.$dom_a
svc_b=groups.$dom_b
label_b=${dom_b%.v6.alt}
[[ $label_b == *-* ]] || v6m_die "B's label $label_b has no hyphen; pick another address"
note "A: Prosody $va [$ip_a] (and [$ip_a2]) = $dom_a + $svc_a"
note "B: Prosody $vb [$ip_b] = $dom_b + $svc_b; C: Prosody $vb [$ip_c] = $dom_c; P (raw): [$ip_p] = $dom_p"

# Forbidden destinations: DESCRIPTION|NAME|ADDRESS A would connect to
forbidden=(
  "::1, loopback|$dom_loop|::1"
  "::ffff:127.0.0.1, IPv4-mapped|$dom_mapped|127.0.0.1"
  ":: unspecified|$dom_unspec|::"
  "A's own address (a subdomain of A's name)|sub.$dom_a|$ip_a"
  "a second address of A's machine|$dom_a2|$ip_a2"
  "uncompressed (::, 26 characters)|aaaaaaaaaaaaaaaaaaaaaaaaaa.v6.alt|::"
  "misplaced hyphen (alias of B's name)|${label_b/-/a-}.v6.alt|$ip_b"
)

mesh_create
prosody_create --tail "Component \"$svc_a\" \"muc\"" a "$va" "$dom_a" "$ip_a"
prosody_create --tail "Component \"$svc_b\" \"muc\"" b "$vb" "$dom_b" "$ip_b"
node_addr_add a "$ip_a2"
# Deprecated (preferred_lft 0): still an address of the machine, but the kernel
# never picks it as the source of A's outgoing connections (peers would see
# them come from an address that A's names do not encode, and refuse them).
node_exec a ip -6 addr change "$ip_a2/128" dev eth0 nodad preferred_lft 0 ||
  v6m_die "cannot deprecate $ip_a2"
node_add p "$ip_p"
remote_srcs=("$ip_b" "$ip_c" "$ip_p")
syn_count_start a
prosody_install_start a b
prosody_adduser a alice pw-alice >/dev/null || v6m_die "adduser alice"
prosody_adduser b bob pw-bob >/dev/null || v6m_die "adduser bob"
for n in a b; do
  if prosody_module_loaded "$n" s2s_v6mesh; then
    v6m_ok "$n: s2s_v6mesh loaded (global modules_enabled only)"
  else
    v6m_not_ok "$n: s2s_v6mesh loaded (global modules_enabled only)"
  fi
done

# ------------------------------------------------------------------ 1
say "1. MUC both ways"
lines_a1=$(log_lines a)
lines_b1=$(log_lines b)

# muc_both SERVICE_SRV: the local user hosts the room, the remote one joins.
muc_both() {
  local svc_srv=$1 svc room lu lp ru rp rsrv lsrv out_l out_r pid_l pid_r
  if [[ $svc_srv == a ]]; then
    svc=$svc_a lsrv=a lu=alice lp=pw-alice rsrv=b ru=bob rp=pw-bob
  else
    svc=$svc_b lsrv=b lu=bob lp=pw-bob rsrv=a ru=alice rp=pw-alice
  fi
  room=talk$svc_srv@$svc
  out_l=$V6M_TMP/muc1-$svc_srv-$lu.out
  out_r=$V6M_TMP/muc1-$svc_srv-$ru.out
  muc_start "$lsrv" "$lu" "$lp" "$room/$lu" "$out_l" --stay 40 --say "hello from $lu, local to $svc" --say-when "$ru"
  pid_l=$V6M_CLIENT_PID
  if ! client_wait_for "$out_l" '"event":"joined"' 15; then
    v6m_not_ok "$lu@$(prosody_domain "$lsrv") creates and joins $room (local)" "$(cat "$out_l" "$out_l.err" | tr '\n' ' ' | cut -c1-300)"
    v6m__kill_pid "$pid_l"
    return 1
  fi
  muc_start "$rsrv" "$ru" "$rp" "$room/$ru" "$out_r" --stay 40 --say "hello from $ru, remote to $svc"
  pid_r=$V6M_CLIENT_PID
  # Everything below has arrived once the remote user got the local one's message.
  client_wait_for "$out_r" "\"event\":\"groupchat\",\"from\":\"$room/$lu\"" 20
  client_wait_for "$out_r" "\"event\":\"groupchat\",\"from\":\"$room/$ru\"" 3
  client_wait_for "$out_l" "\"event\":\"groupchat\",\"from\":\"$room/$ru\"" 3
  local who
  who="$ru@$(prosody_domain "$rsrv")"
  client_expect "$who joins $room (self-presence with status 110)" "$out_r" '"event":"joined"'
  client_expect "$who receives $lu's presence from $room" "$out_r" "\"event\":\"muc-presence\",\"from\":\"$room/$lu\",\"type\":\"available\""
  client_expect "$who receives $lu's groupchat message" "$out_r" "\"event\":\"groupchat\",\"from\":\"$room/$lu\",\"body\":\"hello from $lu"
  client_expect "$who receives its own groupchat message back from the room" "$out_r" "\"event\":\"groupchat\",\"from\":\"$room/$ru\",\"body\":\"hello from $ru"
  client_expect "$lu (local) receives $who's join presence" "$out_l" "\"event\":\"muc-presence\",\"from\":\"$room/$ru\",\"type\":\"available\""
  client_expect "$lu (local) receives $who's groupchat message" "$out_l" "\"event\":\"groupchat\",\"from\":\"$room/$ru\",\"body\":\"hello from $ru"
  v6m__kill_pid "$pid_r"
  v6m__kill_pid "$pid_l"
}
muc_both a
muc_both b
# The instrument of check 2: the capture in A's namespace saw A connect to B.
if syn_list a | grep -q -F "$ip_a $ip_b "; then
  v6m_ok "instrument: the SYN capture in A's namespace saw A's connections to B ($(syn_count a) SYNs so far)"
else
  v6m_not_ok "instrument: the SYN capture in A's namespace saw A's connections to B" "$(syn_list a | tr '\n' ';')"
fi
check_dns_zero "after check 1"
no_resolve a "$lines_a1" "check 1: A's log has no 'Resolve' of a .v6.alt name"
no_resolve b "$lines_b1" "check 1: B's log has no 'Resolve' of a .v6.alt name"

# ------------------------------------------------------------------ 2
say "2. the component aimed at forbidden destinations"
lines_a2=$(log_lines a)
dns_base2=$(dns_count)
syn_base2=$(syn_list a | grep -c .)
room3=probe@$svc_a
jids=""
for entry in "${forbidden[@]}"; do
  IFS='|' read -r desc name addr <<<"$entry"
  jids+="${jids:+,}x@$name"
done
out=$V6M_TMP/muc2-alice.out
muc_start a alice pw-alice "$room3/alice" "$out" --stay 30 --invite "$jids" --decline "$jids"
pid=$V6M_CLIENT_PID
last_name=$(cut -d'|' -f2 <<<"${forbidden[-1]}")
client_wait_for "$out" "\"event\":\"declined\",\"to\":\"x@$last_name\"" 15 ||
  v6m_not_ok "alice joins $room3 and sends the invites and declines" "$(cat "$out" "$out.err" | tr '\n' ' ' | cut -c1-300)"
# The refusals are logged at once; give a slow path (a connection attempt) 3 s.
prosody_log_wait a "Not sending message from $room3 to $last_name: .*" 3 >/dev/null
sleep 1
for entry in "${forbidden[@]}"; do
  IFS='|' read -r desc name addr <<<"$entry"
  n=$(log_since a "$lines_a2" | grep -cF "Not sending message from $room3 to $name: ")
  why=$(log_since a "$lines_a2" | grep -F "Not sending message from $room3 to $name: " | head -n 1 | sed 's/.*: //')
  if ((n >= 2)); then
    v6m_ok "$desc: the room's invite and decline to x@$name are refused (A: 'Not sending message from $room3 to $name: $why')"
  else
    v6m_not_ok "$desc: the room's invite and decline to x@$name are refused" \
      "$n 'Not sending message from $room3 to $name' lines; A logged: $(log_since a "$lines_a2" | grep -F "$name" | grep -vE 'c2s|muc' | cut -f2- | head -n 2 | tr '\n\t' '  ' | cut -c1-300)"
  fi
done
# Log volume: the first refusal of a destination is logged at info, the
# repeats (here the decline after the invite) at debug.
levels=$(log_since a "$lines_a2" | grep -F "Not sending message from $room3 to $last_name: " | cut -f2 | tr '\n' ' ')
v6m_check_eq "refusals of one destination: the first at info, the repeat at debug" "info debug " "$levels"
errs=$(grep -c '"event":"error-reply"' "$out")
note "alice (the inviter) got $errs error replies through the room: $(grep '"event":"error-reply"' "$out" | head -n 2 | tr '\n' ' ' | cut -c1-300)"
v6m__kill_pid "$pid"
mapfile -t out_syns < <(outgoing_syns "$syn_base2")
if ((${#out_syns[@]} == 0)); then
  v6m_ok "component: no connection attempt from A's namespace (0 SYNs to port 5269, B's address included)"
else
  v6m_not_ok "component: no connection attempt from A's namespace" "SYNs (src dst): $(printf '%s; ' "${out_syns[@]}")"
fi
dns_now=$(dns_count)
v6m_check_eq "component: 0 DNS packets" "$dns_base2" "$dns_now" ||
  note "DNS: $(dns_queries | grep -oE '(A|AAAA|SRV)\? [^ ]+' | sort -u | head -n 8 | tr '\n' ' ')"
no_resolve a "$lines_a2" "component: A's log has no 'Resolve' of a .v6.alt name"

say "2b. dialback probes to the component, unauthenticated streams"
# A fresh A: nothing of 2a left in its resolver's cache, so a lookup of the
# same names would show up again (as DNS packets and 'Resolve' lines).
lines_a2b=$(log_lines a)
v6m_check "A restarted (empty resolver cache)" prosody_restart a
syn_base2b=$(syn_list a | grep -c .)
dns_base2b=$(dns_count)
key=0123456789abcdef0123456789abcdef
# DESCRIPTION|NAME|ADDRESS|NODE|SRC|DST|HEADER_FROM: from P with the name in
# the stream header, the claim is from the wrong address; from P with no
# 'from' in the header, the name first appears in the db:result (mod_dialback
# then takes it as the stream's peer and routes a db:verify to it from the
# component); from inside A's namespace, the claim matches the source address,
# so only the policy can stop it.
probes=()
for entry in "sub of A's name|x.$dom_a|$ip_a" "${forbidden[@]}"; do
  probes+=("$entry|p|$ip_p|$ip_a|claim" "$entry, no 'from' in the header|p|$ip_p|$ip_a|-")
done
probes+=("from A's own address|x.$dom_a|$ip_a|a|$ip_a|$ip_a|claim"
  "from ::1, A's loopback|$dom_loop|::1|a|::1|::1|claim"
  "from A's second address|$dom_a2|$ip_a2|a|$ip_a2|$ip_a|claim")
declare -A probe_pid=()
i=0
for entry in "${probes[@]}"; do
  IFS='|' read -r desc name addr pnode psrc pdst hfrom <<<"$entry"
  i=$((i + 1))
  [[ $hfrom == claim ]] && hfrom=$name
  node_exec "$pnode" python3 "$V6M_LIB_DIR/raws2s.py" "$psrc" "$pdst" \
    header "$hfrom" "$svc_a" wait features '</stream:features>|</stream:stream>' 3 \
    send "<db:result from='$name' to='$svc_a'>$key</db:result>" \
    wait dialback '<db:result[^>]*?(/>|>.*?</db:result>)|</stream:stream>' 3 \
    send "<db:verify from='$svc_a' to='$name' id='probe$i'>$key</db:verify>" \
    wait verify '<db:verify[^>]*?(/>|>.*?</db:verify>)|</stream:stream>' 2 \
    >"$V6M_TMP/probe$i.out" 2>&1 &
  probe_pid[$i]=$!
  v6m__track_pid "${probe_pid[$i]}"
done
for ((j = 1; j <= i; j++)); do
  client_wait "${probe_pid[$j]}" 20 >/dev/null
  probe_ports+=("$(sed -n 's/^connected: [^ ]* \([0-9]*\) -> .*/\1/p' "$V6M_TMP/probe$j.out")")
done
sleep 1
mapfile -t out_syns < <(outgoing_syns "$syn_base2b")
dnsq=$(dns_queries | tail -n +"$((dns_base2b + 1))")
i=0
for entry in "${probes[@]}"; do
  IFS='|' read -r desc name addr pnode psrc pdst hfrom <<<"$entry"
  i=$((i + 1))
  res=$(cat "$V6M_TMP/probe$i.out")
  refused=$(log_since a "$lines_a2b" | grep -F "Refusing s2s stream from [$psrc] claiming to be $name: " | head -n 1 | cut -f3-)
  routed=$(log_since a "$lines_a2b" | grep -F "Not sending db:verify from $svc_a to $name: " | head -n 1 | cut -f3-)
  if [[ -n $refused ]]; then how="stream refused: $refused"
  elif [[ -n $routed ]]; then how="db:verify not routed: $routed"
  else how="neither refused nor bounced; P saw: $(grep -E '^(dialback|verify|closed):' <<<"$res" | cut -c1-160 | tr '\n' ' ')"
  fi
  bad_syn=$(printf '%s\n' "${out_syns[@]}" | awk -v a="$addr" '$2 == a' | head -n 1)
  bad_dns=$(grep -F "$name" <<<"$dnsq" | head -n 1)
  bad_log=$(log_since a "$lines_a2b" | grep -E $'\tResolve ' | grep -F "$name" | head -n 1 | cut -f2-)
  if [[ -z $bad_syn && -z $bad_dns && -z $bad_log ]]; then
    v6m_ok "dialback as $name ($desc) from [$psrc] to $svc_a: no connection, no DNS ($(cut -c1-200 <<<"$how"))"
  else
    v6m_not_ok "dialback as $name ($desc) from [$psrc] to $svc_a: no connection, no DNS" \
      "${bad_syn:+SYN $bad_syn; }${bad_dns:+DNS $(grep -oE '(A|AAAA|SRV)\? [^ ]+' <<<"$bad_dns"); }${bad_log:+log: $bad_log; }$how"
  fi
done
if ((${#out_syns[@]} == 0)); then
  v6m_ok "dialback probes: no connection attempt from A's namespace"
else
  v6m_not_ok "dialback probes: no connection attempt from A's namespace" "SYNs (src dst): $(printf '%s; ' "${out_syns[@]}")"
fi
dns_now=$(dns_count)
v6m_check_eq "dialback probes: 0 DNS packets" "$dns_base2b" "$dns_now" ||
  note "DNS: $(grep -oE '(A|AAAA|SRV)\? [^ ]+' <<<"$dnsq" | sort -u | head -n 8 | tr '\n' ' ')"
no_resolve a "$lines_a2b" "dialback probes: A's log has no 'Resolve' of a .v6.alt name"
no_lua_errors a "$lines_a2" "check 2: no Lua error or traceback on A"

# ------------------------------------------------------------------ 3
say "3. per-host trust: $dom_a does not trust all certificates, $svc_a does"
pdir=$V6M_TMP/p
mkdir -p "$pdir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=$dom_p" -addext "subjectAltName=DNS:$dom_p,DNS:*.$dom_p" \
  -keyout "$pdir/p.key" -out "$pdir/p.crt" >/dev/null 2>&1 || v6m_die "openssl for P"
lines_a3=$(log_lines a)
if a_cfg_phase 3; then
  v6m_ok "A restarted with s2s_v6mesh_trust_all_certs = false on $dom_a only"
else
  v6m_not_ok "A restarted with s2s_v6mesh_trust_all_certs = false on $dom_a only"
  exit 1
fi
dns_base3=$(dns_count)
out_r=$V6M_TMP/alice3-recv.out
out_m=$V6M_TMP/alice3-muc.out
out_bs=$V6M_TMP/bob3-send.out
mapfile -t rargs < <(client_args a alice pw-alice)
mapfile -t sargs < <(client_args b bob pw-bob)
# alice has ~9 s to receive either forbidden chat; both are sent at once.
client_start a "$out_r" recv "${rargs[@]}" --count 2 --timeout 9
pid_r=$V6M_CLIENT_PID
muc_start a alice pw-alice "trust@$svc_a/alice" "$out_m" --stay 20
pid_m=$V6M_CLIENT_PID
if ! { client_wait_for "$out_r" '"presence-sent"' 10 && client_wait_for "$out_m" '"event":"joined"' 10; }; then
  v6m_not_ok "alice online and in trust@$svc_a" "$(cat "$out_r" "$out_m" | tr '\n' ' ' | cut -c1-300)"
fi
# B's bob (a real Prosody, self-signed) to alice@X, which does not trust him.
client_start b "$out_bs" send "${sargs[@]}" --to "alice@$dom_a" --body "bob to a host that does not trust him" \
  --expect-error --timeout 8
pid_bs=$V6M_CLIENT_PID
res=$(node_exec p python3 "$V6M_LIB_DIR/raws2s.py" "$ip_p" "$ip_a" \
  header "$dom_p" "$svc_a" features features starttls "$pdir/p.crt" "$pdir/p.key" \
  header "$dom_p" "$svc_a" features features-tls external "$dom_p" \
  header "$dom_p" "$svc_a" wait features-authed '</stream:features>' 5 \
  send "<presence from='peer@$dom_p/raw' to='trust@$svc_a/peer'><x xmlns='http://jabber.org/protocol/muc'/></presence>" \
  send "<message from='peer@$dom_p/raw' to='alice@$dom_a' type='chat' id='t1'><body>per-host trust probe from $dom_p</body></message>" \
  drain after 2 2>&1)
sed 's/^/#       /' <<<"$res" | grep -E '^#       (sasl|starttls|after|closed)' | cut -c1-300
if grep -q '^sasl: <success' <<<"$res"; then
  v6m_ok "P ($dom_p, self-signed) authenticates to $svc_a with SASL EXTERNAL"
else
  v6m_not_ok "P ($dom_p, self-signed) authenticates to $svc_a with SASL EXTERNAL" "$(grep -E '^(starttls|sasl|closed|features-tls):' <<<"$res" | cut -c1-200 | tr '\n' ' ')"
fi
client_wait_for "$out_m" "\"from\":\"trust@$svc_a/peer\"" 5
client_expect "control: P's join of trust@$svc_a on that stream is accepted (alice sees its presence)" "$out_m" \
  "\"event\":\"muc-presence\",\"from\":\"trust@$svc_a/peer\",\"type\":\"available\""
rc=0
client_wait "$pid_r" 15 || rc=$?
client_wait "$pid_bs" 12 >/dev/null
if ! grep -q 'per-host trust probe' "$out_r" "$out_m"; then
  v6m_ok "P's chat on its $svc_a stream to alice@$dom_a is not delivered (recv exit $rc)"
else
  v6m_not_ok "P's chat on its $svc_a stream to alice@$dom_a is not delivered" "$(grep -h 'per-host trust probe' "$out_r" "$out_m" | head -n 1)"
fi
note "A logged: $(log_since a "$lines_a3" | grep -E $'\t(info|warn|error)\t' | grep -F "$dom_p" | grep -iE 'not deliver|refus|not send|trust' | cut -f2- | head -n 3 | tr '\n\t' '  ' | cut -c1-500)"
v6m__kill_pid "$pid_m"
sline=$(grep -E '"event":"(error-reply|timeout|unexpected-reply)"' "$out_bs" | tail -n 1)
if ! grep -q 'does not trust him' "$out_r"; then
  v6m_ok "bob@$dom_b (self-signed, real Prosody) to alice@$dom_a is not delivered (bob got: $(json_get "$sline" event) $(json_get "$sline" condition))"
else
  v6m_not_ok "bob@$dom_b to alice@$dom_a is not delivered" "alice received it; bob got: $sline"
fi
note "bob was told: $(json_get "$sline" condition): $(json_get "$sline" text)"
dns_now=$(dns_count)
v6m_check_eq "check 3: 0 DNS packets" "$dns_base3" "$dns_now"
no_lua_errors a "$lines_a3" "check 3: no Lua error or traceback on A"

# ------------------------------------------------------------------ 4
say "4. allow = false for B's address on A"
lines_a4=$(log_lines a)
if a_cfg_phase 4; then
  v6m_ok "A restarted with s2s_v6mesh_ranges = { [\"$ip_b/128\"] = { allow = false } }"
else
  v6m_not_ok "A restarted with s2s_v6mesh_ranges = { [\"$ip_b/128\"] = { allow = false } }"
  exit 1
fi
dns_base4=$(dns_count)
prosody_create c "$vb" "$dom_c" "$ip_c"
if prosody_install_rock c "$rock" && prosody_start c; then
  prosody_adduser c carol pw-carol >/dev/null || v6m_die "adduser carol"
else
  v6m_not_ok "c: Prosody $vb installed the rock and started" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
fi
if log_since a "$lines_a4" | grep -qE $'\terror\t'; then
  v6m_not_ok "A loads the configuration with allow = false without errors" "$(log_since a "$lines_a4" | grep -m1 -E $'\terror\t' | cut -f2- | cut -c1-300)"
else
  v6m_ok "A loads the configuration with allow = false without errors"
fi
# probe TO_JID: alice writes, expects policy-violation.
mapfile -t aargs < <(client_args a alice pw-alice)
for to in "bob@$dom_b" "x@$svc_b"; do
  client_run a send "${aargs[@]}" --to "$to" --body "to a blocked address" --expect-error --timeout 5
  line=$(grep -E '"event":"(error-reply|timeout|unexpected-reply|connect-error)"' <<<"$V6M_OUT" | tail -n 1)
  cond=$(json_get "$line" condition)
  if [[ $cond == policy-violation ]]; then
    v6m_ok "alice to $to bounces with policy-violation in $(json_get "$line" elapsed_ms) ms ($(json_get "$line" text))"
  else
    v6m_not_ok "alice to $to bounces with policy-violation" "got: ${line:-nothing}"
  fi
done
# B to A, both at once: a chat to alice, and bob joining a room on A's component.
out_r=$V6M_TMP/alice4-recv.out
out_host=$V6M_TMP/alice4-muc.out
out_m=$V6M_TMP/bob4-muc.out
client_start a "$out_r" recv "${rargs[@]}" --count 1 --timeout 9
pid_r=$V6M_CLIENT_PID
muc_start a alice pw-alice "blocked@$svc_a/alice" "$out_host" --stay 15
pid_h=$V6M_CLIENT_PID
client_wait_for "$out_r" '"presence-sent"' 10
client_wait_for "$out_host" '"event":"joined"' 10
muc_start b bob pw-bob "blocked@$svc_a/bob" "$out_m" --stay 8
pid_m=$V6M_CLIENT_PID
client_run b send "${sargs[@]}" --to "alice@$dom_a" --body "from a blocked address" --expect-error --timeout 7
sline=$(grep -E '"event":"(error-reply|timeout|unexpected-reply)"' <<<"$V6M_OUT" | tail -n 1)
rc=0
client_wait "$pid_r" 12 || rc=$?
if ! grep -q 'from a blocked address' "$out_r"; then
  v6m_ok "bob@$dom_b to alice@$dom_a is not delivered (bob got: $(json_get "$sline" event) $(json_get "$sline" condition))"
else
  v6m_not_ok "bob@$dom_b to alice@$dom_a is not delivered" "alice received it"
fi
client_wait "$pid_m" 15 >/dev/null
if client_printed "$out_m" '"event":"joined"' || client_printed "$out_host" "\"from\":\"blocked@$svc_a/bob\",\"type\":\"available\""; then
  v6m_not_ok "bob@$dom_b cannot join blocked@$svc_a" "$(grep -E 'joined|muc-presence' "$out_m" | head -n 2 | tr '\n' ' ')"
else
  v6m_ok "bob@$dom_b cannot join blocked@$svc_a ($(grep -oE '"type":"error"[^}]*' "$out_m" | head -n 1 || echo "no answer"))"
fi
v6m__kill_pid "$pid_h"
line=$(log_since a "$lines_a4" | grep -F "[$ip_b]" | grep -iE 'refus|block|allow' | head -n 1 | cut -f2-)
if [[ -n $line ]]; then
  v6m_ok "A's log names B's address when it refuses B's stream ($(tr '\t' ' ' <<<"$line" | cut -c1-200))"
else
  v6m_not_ok "A's log names B's address when it refuses B's stream" \
    "$(log_since a "$lines_a4" | grep -E $'\t(info|warn)\t' | grep -F "$dom_b" | cut -f2- | head -n 3 | tr '\n\t' '  ' | cut -c1-300)"
fi
chat_check a alice pw-alice c carol pw-carol "control: A to C (not blocked)" 20
chat_check c carol pw-carol a alice pw-alice "control: C to A (not blocked)" 20
dns_now=$(dns_count)
v6m_check_eq "check 4: 0 DNS packets" "$dns_base4" "$dns_now"
no_resolve a "$lines_a4" "check 4: A's log has no 'Resolve' of a .v6.alt name"

# ------------------------------------------------------------------ end
logs_lack "no Lua traceback in the whole log" 'stack traceback' $(for n in a b c; do [[ -f $(prosody_log "$n") ]] && echo "$n"; done)
n=$(dns_count)
v6m_check_eq "0 DNS packets on the mesh in the whole run" 0 "$n"
note "suite time: ${SECONDS} s"
v6m_finish
