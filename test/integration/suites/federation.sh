#!/usr/bin/env bash
# Federation between two .v6.alt servers, with the strict defaults of
# prosody_create (s2s_require_encryption, s2s_secure_auth, self-signed certs).
#
#   sudo bash test/integration/suites/federation.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
#   1. a chat each way; from the logs: the s2s streams were TLS-encrypted and
#      authenticated with SASL EXTERNAL; 0 DNS packets.
#   2. a name whose address has no server: the sender gets an error reply
#      (timed, < 120 s); 0 DNS packets.
#   3. malformed / non-canonical names and special-purpose destinations: an
#      error reply within 1 s each (remote-server-not-found / policy-violation
#      with a reason), 0 DNS packets, no connection attempt (listeners on
#      [::1]:5269 and 127.0.0.1:5269 in A's namespace, tcpdump counting SYNs).
#      An uppercase name is lowercased by Prosody's nameprep before the module
#      sees it, so it must simply be delivered to B.
#   4. raw streams to B: no 'from'; a valid 'from' followed by garbage. B logs
#      no Lua error, and A still reaches B.
#   5. module reload on B, unload/load on A: federation works after each, the
#      unloaded module no longer intercepts (Prosody falls back to DNS), the
#      reloaded one handles each new session exactly once, shell commands work.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "integration-federation-$va-$vb"
SECONDS=0


# ------------------------------------------------------------------ helpers


# deliver DESC FROM FUSER FPASS TO TUSER TPASS TO_JID BODY [TIMEOUT]
#   like chat_check, but to an explicit JID (e.g. an uppercase domain).
deliver() {
  local desc=$1 from=$2 fuser=$3 fpass=$4 to=$5 tuser=$6 tpass=$7 tojid=$8 body=$9 timeout=${10:-20}
  local out pid rc=0 why
  local -a rargs sargs
  out=$V6M_TMP/deliver.$RANDOM.out
  mapfile -t rargs < <(client_args "$to" "$tuser" "$tpass")
  mapfile -t sargs < <(client_args "$from" "$fuser" "$fpass")
  client_start "$to" "$out" recv "${rargs[@]}" --count 1 --timeout "$timeout"
  pid=$V6M_CLIENT_PID
  if ! client_wait_for "$out" '"presence-sent"' 15; then
    v6m_not_ok "$desc" "receiver not online: $(cat "$out" "$out.err" | tr '\n' ' ')"
    v6m__kill_pid "$pid"
    return 1
  fi
  client_run "$from" send "${sargs[@]}" --to "$tojid" --body "$body" --timeout "$timeout" --linger-ms 300
  why=$(grep -E '"(error-reply|connect-error|client-error|timeout)"' <<<"$V6M_OUT" | head -n 1)
  client_wait "$pid" $((timeout + 5)) || rc=$?
  if ((rc == 0)) && grep -qF "\"body\":\"$body\"" "$out"; then
    v6m_ok "$desc"
    return 0
  fi
  v6m_not_ok "$desc" "receiver exit $rc; sender: ${why:-no error reply}"
  return 1
}




# once_per_session SRV FROM_LINE ERE DESC: at least one session logged a line
# matching ERE since FROM_LINE, and none logged it twice (a duplicate hook would).
once_per_session() {
  local srv=$1 from=$2 ere=$3 desc=$4 ids total uniq
  ids=$(log_since "$srv" "$from" | grep -E -- "$ere" | awk '{print $4}')
  total=$(grep -c . <<<"$ids")
  uniq=$(sort -u <<<"$ids" | grep -c .)
  if ((uniq >= 1 && total == uniq)); then
    v6m_ok "$desc ($uniq session(s), once each)"
  else
    v6m_not_ok "$desc" "$total lines for $uniq sessions"
  fi
}

# ------------------------------------------------------------------ setup

ip_a=${V6M_PREFIX}::a1
ip_b=${V6M_PREFIX}::b1
dom_a=$(v6alt_name "$ip_a") && dom_b=$(v6alt_name "$ip_b") ||
  { v6m_not_ok "names from dist/ (v6alt_name)" "run npm run build"; exit 1; }
v6m_use_rock
note "A: Prosody $va at [$ip_a] = $dom_a;  B: Prosody $vb at [$ip_b] = $dom_b"

mesh_create
# A binds only its mesh address (lib.sh would add ::1), so the listeners of
# check 3 can own [::1]:5269 and 127.0.0.1:5269 in A's namespace. The unbound
# line only caps libunbound's retry timeout for check 5, where A runs without
# the module and so does look names up (the DNS server never answers; without
# the cap one failed s2s lookup takes over a minute). With the module loaded
# no query is ever made, so it changes nothing else.
prosody_create a "$va" "$dom_a" "$ip_a" "interfaces = { \"$ip_a\" }
local_interfaces = { }
unbound = { options = { [\"infra-cache-max-rtt:\"] = \"300\" } }"
prosody_create b "$vb" "$dom_b" "$ip_b"
prosody_install_start a b
prosody_adduser a alice pw-alice >/dev/null || v6m_die "adduser alice"
prosody_adduser b bob pw-bob >/dev/null || v6m_die "adduser bob"
if node_exec a ss -Hltn | grep -qE '(\[::1\]|127\.0\.0\.1):5269'; then
  v6m_not_ok "A listens on its mesh address only" "$(node_exec a ss -Hltn | tr '\n' ' ')"
else
  v6m_ok "A listens on its mesh address only ($(node_exec a ss -Hltn 'sport = :5269' | awk '{print $4}' | tr '\n' ' '))"
fi

# ------------------------------------------------------------------ 1
say "1. delivery both ways over TLS with SASL EXTERNAL"
chat_check a alice pw-alice b bob pw-bob "one from A to B" 30
chat_check b bob pw-bob a alice pw-alice "one from B to A" 30

# s2s_encrypted_external SRV PEER DIRECTION(in|out)
s2s_encrypted_external() {
  local srv=$1 peer=$2 dir=$3 self log ids id ok=0 word=incoming
  [[ $dir == out ]] && word=outgoing
  self=$(prosody_domain "$srv")
  log=$(prosody_log "$srv")
  if [[ $dir == in ]]; then
    ids=$(grep -F "Incoming s2s connection $peer->$self complete" "$log" | awk '{print $4}')
  else
    ids=$(grep -F "Outgoing s2s connection $self->$peer complete" "$log" | awk '{print $4}')
  fi
  for id in $ids; do
    grep -qE "^.{15} $id"$'\tinfo\tStream encrypted \\(TLS' "$log" && ok=1
  done
  if ((ok)); then
    v6m_ok "$srv: the $word s2s stream with $peer completed encrypted ($(grep -m1 -F "$(head -n1 <<<"$ids")"$'\tinfo\tStream encrypted' "$log" | grep -oE 'TLS[^)]*'))"
  else
    v6m_not_ok "$srv: the $word s2s stream with $peer completed encrypted" "sessions: ${ids:-none}"
  fi
}
s2s_encrypted_external b "$dom_a" in
s2s_encrypted_external a "$dom_b" out
s2s_encrypted_external a "$dom_b" in
s2s_encrypted_external b "$dom_a" out
v6m_check "B accepted A by SASL EXTERNAL (\"Accepting SASL EXTERNAL identity from $dom_a\")" \
  prosody_log_grep b "saslauth.*Accepting SASL EXTERNAL identity from $dom_a\$"
v6m_check "A accepted B by SASL EXTERNAL" prosody_log_grep a "saslauth.*Accepting SASL EXTERNAL identity from $dom_b\$"
v6m_check "A's SASL EXTERNAL with B succeeded (sending side)" prosody_log_grep a "SASL EXTERNAL with $dom_b succeeded"
v6m_check "B's SASL EXTERNAL with A succeeded (sending side)" prosody_log_grep b "SASL EXTERNAL with $dom_a succeeded"
logs_lack "no dialback was needed" 'sent dialback key|Initiating dialback|if key .* belongs to them' a b
check_dns_zero "after check 1"

# ------------------------------------------------------------------ 3
# (before 2, so that 2's connection attempt cannot blur the SYN count)
say "3. malformed, non-canonical and special-purpose names"

cat >"$V6M_TMP/listen.py" <<'EOF'
# listen.py ADDR PORT COUNTFILE: accept and count connections until killed.
import os, socket, sys
addr, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(16)
def write(n):
    with open(out + ".tmp", "w") as f:
        f.write("%d\n" % n)
    os.replace(out + ".tmp", out)
n = 0
write(n)
while True:
    c, peer = s.accept()
    n += 1
    with open(out + ".peers", "a") as f:
        f.write("%s\n" % (peer,))
    write(n)
    c.close()
EOF
listeners_ok=1
for l in "::1" "127.0.0.1"; do
  f=$V6M_TMP/listen-${l//[:.]/_}
  node_exec a python3 "$V6M_TMP/listen.py" "$l" 5269 "$f" 2>"$f.err" &
  v6m__track_pid $!
  client_wait_for "$f" '^0$' 10 || { listeners_ok=0; v6m_not_ok "listener on $l:5269 in A's namespace" "$(cat "$f.err")"; }
done
syn_pcap=$V6M_TMP/syn.pcap
node_exec a tcpdump -i any -n -U --immediate-mode -Z root -w "$syn_pcap" "tcp dst port 5269 and not src host $ip_b" \
  2>"$V6M_TMP/syn.err" &
v6m__track_pid $!
client_wait_for "$V6M_TMP/syn.err" 'listening on' 10 || v6m_not_ok "tcpdump in A's namespace" "$(cat "$V6M_TMP/syn.err")"

listen_count() { cat "$V6M_TMP/listen-${1//[:.]/_}" 2>/dev/null || echo "?"; }
# SYNs to port 5269 from A's namespace: one "DST" per line
syn_dsts() {
  sleep 0.3
  tcpdump -n -r "$syn_pcap" 2>/dev/null | grep -F 'Flags [S],' |
    sed -E 's/.* > (.*)\.5269: Flags \[S\],.*/\1/'
}

# The instruments themselves: one connection to each listener must be seen.
for l in "::1" "127.0.0.1"; do
  node_exec a python3 -c 'import socket,sys
a = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET)
s.settimeout(3); s.connect((a, 5269)); s.close()' "$l" || true
done
sleep 0.3
v6m_check_eq "instruments: listeners counted a test connection each ([::1] 127.0.0.1)" "1 1" "$(listen_count ::1) $(listen_count 127.0.0.1)"
syn_base=$(syn_dsts | grep -c .)
if ((syn_base >= 2)) && syn_dsts | grep -qx '::1' && syn_dsts | grep -qx '127.0.0.1'; then
  v6m_ok "instruments: tcpdump in A's namespace saw the test SYNs ($syn_base lines)"
else
  v6m_not_ok "instruments: tcpdump in A's namespace saw the test SYNs" "$(syn_dsts | tr '\n' ' ')"
fi
lines_a3=$(log_lines a)

label_b=${dom_b%.v6.alt}
full_b=$(python3 -c 'import base64,ipaddress,sys
print(base64.b32encode(ipaddress.ip_address(sys.argv[1]).packed).decode().lower().rstrip("="))' "$ip_b")
if [[ $label_b != *-* ]]; then v6m_die "B's label $label_b has no hyphen; pick another address"; fi
last=${label_b: -1}
b32=abcdefghijklmnopqrstuvwxyz234567
idx=$(($(expr index "$b32" "$last") - 1))
bumped=${b32:idx+1:1}
declare -a bad_names=(
  "uncompressed|${full_b}.v6.alt|uncompress"
  "misplaced hyphen|${label_b/-/a-}.v6.alt|hyphen|'-'|encoder"
  "non-zero padding bits|${label_b%?}${bumped}.v6.alt|padding"
  "two hyphens|${label_b/-/-a-}.v6.alt|hyphen|'-'"
  "bad character '1'|1${label_b:1}.v6.alt|character"
  "bad character '8'|${label_b/-/-8}.v6.alt|character"
  "too long (27 characters)|${full_b}a.v6.alt|characters|length|long"
  "too long with a hyphen|${label_b/-/-aaaaaaaaaaaaaaa}.v6.alt|characters|length|long"
)
declare -a refused=(
  "::1, loopback|::1|loopback"
  ":: unspecified|::|unspecified"
  "::ffff:127.0.0.1, IPv4-mapped|::ffff:127.0.0.1|IPv4-mapped"
  "::127.0.0.1, IPv4-compatible|::127.0.0.1|IPv4-compatible"
  "64:ff9b::7f00:1, NAT64|64:ff9b::7f00:1|NAT64"
  "ff02::1, multicast|ff02::1|multicast"
  "fe80::1, link-local|fe80::1|link-local"
)
max_ms=0
probe_fast() { # DESC NAME CONDITION TEXT_ERE
  local desc=$1 name=$2 cond=$3 ere=$4
  send_probe a alice pw-alice "bob@$name" 5
  note "$desc: bob@$name -> ${P_COND:-no error} in ${P_MS} ms: ${P_TEXT}"
  ((P_MS > max_ms)) && max_ms=$P_MS
  if ((P_RC == 0)) && [[ $P_COND == "$cond" ]] && ((P_MS >= 0 && P_MS < 1000)) && grep -qiE -- "$ere" <<<"$P_TEXT"; then
    v6m_ok "$desc ($name): $cond in $P_MS ms, text says why"
  else
    v6m_not_ok "$desc ($name): $cond within 1 s with a reason" "client exit $P_RC, got '${P_COND}' after ${P_MS} ms, text '${P_TEXT}'"
  fi
}
for entry in "${bad_names[@]}"; do
  IFS='|' read -r desc name ere <<<"$entry"
  probe_fast "bad name: $desc" "$name" remote-server-not-found "$ere"
done
for entry in "${refused[@]}"; do
  IFS='|' read -r desc addr ere <<<"$entry"
  name=$(v6alt_name "$addr") || { v6m_not_ok "name of $addr" "v6alt_name failed"; continue; }
  probe_fast "refused address: $desc" "$name" policy-violation "$ere"
done
probe_fast "refused address: A's own address under a subdomain" "other.$dom_a" policy-violation "own|this server"

# Uppercase: Prosody's nameprep (jid.prepped_split in the stanza router)
# lowercases the domain of 'to' before routing, so the module only ever sees
# the canonical name: the chat must reach bob.
upper=$(tr '[:lower:]' '[:upper:]' <<<"$label_b").v6.alt
deliver "uppercase bob@$upper is lowercased by Prosody and delivered to B" \
  a alice pw-alice b bob pw-bob "bob@$upper" "upper case chat" 20
check_dns_zero "after check 3"
sleep 0.5
v6m_check_eq "no connection reached [::1]:5269 or 127.0.0.1:5269 (beyond the instrument test)" "1 1" \
  "$(listen_count ::1) $(listen_count 127.0.0.1)"
mapfile -t new_syns < <(syn_dsts | tail -n +"$((syn_base + 1))")
others=$(printf '%s\n' "${new_syns[@]}" | grep -v -x -F "$ip_b" | grep -c .)
to_b=$(printf '%s\n' "${new_syns[@]}" | grep -x -F "$ip_b" | grep -c .)
note "SYNs to port 5269 from A during check 3: ${#new_syns[@]} (to B: $to_b)"
v6m_check_eq "no SYN to port 5269 from A's namespace except to B's address" 0 "$others"
v6m_check_eq "not even to B (an alias of B's name accepted would open a 2nd connection)" 0 "$to_b"
if log_since a "$lines_a3" | grep -qE $'unbound\\.query|\tResolve '; then
  v6m_not_ok "A's log shows no resolver activity during check 3" "$(log_since a "$lines_a3" | grep -m2 -E $'unbound\\.query|\tResolve ' | tr '\n\t' '  ')"
else
  v6m_ok "A's log shows no resolver activity during check 3"
fi
note "slowest refusal: $max_ms ms"

# ------------------------------------------------------------------ 2
say "2. a name whose address has no server"
ip_dead=${V6M_PREFIX}::dead
dom_dead=$(v6alt_name "$ip_dead")
syn_base2=$(syn_dsts | grep -c .)
send_probe a alice pw-alice "bob@$dom_dead" 120
note "bob@$dom_dead ([$ip_dead], nothing there): ${P_COND:-no error} after $P_MS ms: $P_TEXT"
if ((P_RC == 0)) && [[ -n $P_COND ]] && ((P_MS < 120000)); then
  v6m_ok "no server at [$ip_dead]: error reply '$P_COND' after $((P_MS / 1000)).$(printf '%03d' $((P_MS % 1000))) s (< 120 s)"
else
  v6m_not_ok "no server at [$ip_dead]: error reply within 120 s" "client exit $P_RC, got '$P_COND' after $P_MS ms"
fi
new2=$(syn_dsts | tail -n +"$((syn_base2 + 1))" | sort | uniq -c | tr '\n' ' ' | tr -s ' ')
if [[ $(syn_dsts | tail -n +"$((syn_base2 + 1))" | sort -u) == "$ip_dead" ]]; then
  v6m_ok "A connected to [$ip_dead]:5269 and nowhere else (SYNs:$new2)"
else
  v6m_not_ok "A connected to [$ip_dead]:5269 and nowhere else" "SYNs since check 3:${new2:- none}"
fi
check_dns_zero "after check 2"

# ------------------------------------------------------------------ 4
say "4. raw streams to B"
lines_b4=$(log_lines b)
# test/integration/raws2s.py: a stream header, then read for 2 s.
reply=$(node_exec a python3 "$V6M_LIB_DIR/raws2s.py" "$ip_a" "$ip_b" header - "$dom_b" drain reply 2 2>&1 | grep -v "^connected: ")
note "no 'from': B replied $(tr -d '\n' <<<"$reply" | cut -c1-200)"
if grep -q '<stream:features' <<<"$reply"; then
  v6m_ok "stream without 'from': B answered with stream features"
else
  v6m_not_ok "stream without 'from': B answered with stream features" "$(tr -d '\n' <<<"$reply" | cut -c1-300)"
fi
no_lua_errors b "$lines_b4" "stream without 'from': no Lua error or traceback in B's log"

lines_b4b=$(log_lines b)
reply=$(node_exec a python3 "$V6M_LIB_DIR/raws2s.py" "$ip_a" "$ip_b" header "$dom_a" "$dom_b" drain reply 2 \
  send $'<<garbage &&& \x01 ]]> </not-open>' drain reply 2 2>&1 | grep -v "^connected: ")
note "from='$dom_a' + garbage: B replied $(tr -d '\n' <<<"$reply" | cut -c1-300)"
if grep -q '<stream:features' <<<"$reply" && grep -qE 'not-well-formed|\[closed by peer\]' <<<"$reply"; then
  v6m_ok "valid 'from' then garbage: B offered features, then closed the stream"
else
  v6m_not_ok "valid 'from' then garbage: B offered features, then closed the stream" "$(tr -d '\n' <<<"$reply" | cut -c1-300)"
fi
if log_since b "$lines_b4b" | grep -qF "Refusing s2s stream from [$ip_a]"; then
  v6m_not_ok "B did not refuse the raw stream from A's own address" "$(log_since b "$lines_b4b" | grep -m1 Refusing)"
else
  v6m_ok "B did not refuse the raw stream from A's own address (name and address match)"
fi
no_lua_errors b "$lines_b4b" "valid 'from' then garbage: no Lua error or traceback in B's log"
v6m_check "B is still running" prosody_running b
chat_check a alice pw-alice b bob pw-bob "A to B after the raw streams" 30
check_dns_zero "after check 4"

# ------------------------------------------------------------------ 5
say "5. module reload / unload / load"
lines_a5=$(log_lines a)
lines_b5=$(log_lines b)
if prosody_shell b module reload s2s_v6mesh; then
  v6m_ok "B: 'module reload s2s_v6mesh' ($(tail -n 1 <<<"$V6M_OUT"))"
else
  v6m_not_ok "B: 'module reload s2s_v6mesh'" "$V6M_OUT $V6M_ERR"
fi
grep -qE 'reloaded on [1-9]' <<<"$V6M_OUT" || v6m_not_ok "B: reload reports at least one host" "$V6M_OUT"
v6m_check "B: s2s_v6mesh loaded after the reload" prosody_module_loaded b s2s_v6mesh
prosody_shell b v6alt get_domain "$ip_b"
v6m_check_eq "B: shell 'v6alt get_domain' works after the reload" "OK: Encoded hostname: $dom_b" "$V6M_OUT"
prosody_shell a s2s closeall >/dev/null
prosody_shell b s2s closeall >/dev/null
sleep 0.5
chat_check a alice pw-alice b bob pw-bob "after B's reload, new sessions, A to B" 30
chat_check b bob pw-bob a alice pw-alice "after B's reload, new sessions, B to A" 30
once_per_session b "$lines_b5" $'\t'"Trusting $dom_a: " "B after reload: each new session from/to A logs 'Trusting' once"
once_per_session b "$lines_b5" $'\t'"$dom_a is at \\[" "B after reload: each new outgoing session to A is routed once"
no_lua_errors b "$lines_b5" "B: no Lua error or traceback around the reload"

if prosody_shell a module unload s2s_v6mesh; then
  v6m_ok "A: 'module unload s2s_v6mesh' ($(tail -n 1 <<<"$V6M_OUT"))"
else
  v6m_not_ok "A: 'module unload s2s_v6mesh'" "$V6M_OUT $V6M_ERR"
fi
if prosody_module_loaded a s2s_v6mesh; then
  v6m_not_ok "A: s2s_v6mesh no longer loaded"
else
  v6m_ok "A: s2s_v6mesh no longer loaded"
fi
if prosody_shell a v6alt get_domain "$ip_a" && [[ $V6M_OUT == "OK: Encoded hostname: $dom_a" ]]; then
  v6m_not_ok "A: the v6alt shell commands went away with the module" "$V6M_OUT"
else
  v6m_ok "A: the v6alt shell commands went away with the module ($(head -n 1 <<<"$V6M_OUT$V6M_ERR" | cut -c1-80))"
fi
dns_before=$(dns_count)
ip_dead2=${V6M_PREFIX}::dead:2
dom_dead2=$(v6alt_name "$ip_dead2")
t0=$(date +%s%N)
send_probe a alice pw-alice "bob@$dom_dead2" 60
dns_after=$(dns_count)
note "without the module: bob@$dom_dead2 -> ${P_COND:-no error} after $P_MS ms; DNS packets $dns_before -> $dns_after"
note "$(dns_queries | grep -oE '(A|AAAA|SRV)\? [^ ]+' | sort | uniq -c | tr '\n' ';' | tr -s ' ')"
if ((dns_after > dns_before)); then
  v6m_ok "without the module Prosody looks $dom_dead2 up in DNS ($((dns_after - dns_before)) packets): hooks$([[ $(prosody_family "$va") == 0.12 ]] && echo " and the 0.12 resolver patch") removed"
else
  v6m_not_ok "without the module Prosody looks $dom_dead2 up in DNS" "no DNS packet; client exit $P_RC, '$P_COND' '$P_TEXT'"
fi
sleep 1

lines_a5b=$(log_lines a)
if prosody_shell a module load s2s_v6mesh; then
  v6m_ok "A: 'module load s2s_v6mesh' ($(tail -n 1 <<<"$V6M_OUT"))"
else
  v6m_not_ok "A: 'module load s2s_v6mesh'" "$V6M_OUT $V6M_ERR"
fi
v6m_check "A: s2s_v6mesh loaded again" prosody_module_loaded a s2s_v6mesh
if prosody_log_grep a "s2s_v6mesh.*$dom_a is served at" && log_since a "$lines_a5b" | grep -qF "$dom_a is served at"; then
  v6m_ok "A: the loaded module set itself up on A's host again"
else
  v6m_not_ok "A: the loaded module set itself up on A's host again" "no 'is served at' line after the load"
fi
prosody_shell a v6alt get_domain "$ip_a"
v6m_check_eq "A: shell 'v6alt get_domain' works after the load" "OK: Encoded hostname: $dom_a" "$V6M_OUT"
dns_base=$(dns_count)
ip_dead3=${V6M_PREFIX}::dead:3
dom_dead3=$(v6alt_name "$ip_dead3")
send_probe a alice pw-alice "bob@$dom_dead3" 120
note "after the load: bob@$dom_dead3 -> ${P_COND:-no error} after $P_MS ms"
if ((P_RC == 0)) && [[ -n $P_COND ]]; then
  v6m_ok "after the load: bob@$dom_dead3 (no server) gets an error reply ($P_COND, $P_MS ms)"
else
  v6m_not_ok "after the load: bob@$dom_dead3 gets an error reply" "client exit $P_RC"
fi
send_probe a alice pw-alice "bob@${full_b}.v6.alt" 5
if ((P_RC == 0)) && [[ $P_COND == remote-server-not-found ]] && ((P_MS < 1000)); then
  v6m_ok "after the load: a non-canonical name bounces at once again ($P_MS ms)"
else
  v6m_not_ok "after the load: a non-canonical name bounces at once again" "exit $P_RC '$P_COND' $P_MS ms"
fi
dns_now=$(dns_count)
v6m_check_eq "after the load: no new DNS packets (baseline $dns_base)" "$dns_base" "$dns_now"
if syn_dsts | grep -qx -F "$ip_dead3"; then
  v6m_ok "after the load: A connected to [$ip_dead3] directly"
else
  v6m_not_ok "after the load: A connected to [$ip_dead3] directly" "no SYN to it"
fi
lines_a5c=$(log_lines a)
prosody_shell a s2s closeall >/dev/null
prosody_shell b s2s closeall >/dev/null
sleep 0.5
chat_check a alice pw-alice b bob pw-bob "after A's unload and load, new sessions, A to B" 30
chat_check b bob pw-bob a alice pw-alice "after A's unload and load, new sessions, B to A" 30
once_per_session a "$lines_a5c" $'\t'"Trusting $dom_b: " "A after unload+load: each new session logs 'Trusting' once"
once_per_session a "$lines_a5c" $'\t'"$dom_b is at \\[" "A after unload+load: each new outgoing session to B is routed once"
no_lua_errors a "$lines_a5" "A: no Lua error or traceback around unload and load"
n=$(log_since a "$lines_a5b" | grep -c "Not sending message from .*${full_b}")
v6m_check_eq "A: the bounced stanza was handled once (one 'Not sending' line)" 1 "$n"

logs_lack "no Lua traceback in the whole log" 'stack traceback' a b
note "suite time: ${SECONDS} s"
v6m_finish
