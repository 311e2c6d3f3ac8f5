#!/usr/bin/env bash
# Impostors: a server that claims a .v6.alt name its address does not encode.
#
#   sudo bash test/integration/suites/impersonation.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# A (VERSION_A) and B (VERSION_B) are genuine. C runs VERSION_A at its own
# address ipC and serves A's name (plus a few other claims as further
# VirtualHosts), without the module: an impostor's own software (with the
# module C would not even send: it binds a host's connections to the address
# its name encodes, see multihome.sh). C finds B through /etc/hosts; its own
# DNS lookups (SRV first) are left out of the DNS count. Its users write to
# B's user:
#   - as A's name, before and while A itself is connected to B: B refuses the
#     stream (log line with the claimed name and C's real address), B's user
#     gets nothing, A's genuine user still gets through, B still reaches A.
#   - as a subdomain of A's name, as a non-canonical alias of C's own address,
#     as a name that does not decode, as a-e.v6.alt (::1): refused, nothing
#     delivered.
#   - dialback piggybacking (raw client at ipC: STARTTLS, SASL EXTERNAL as C's
#     own genuine name, then <db:result> for A's name / a-e.v6.alt): the extra
#     name is not authenticated and nothing sent under it is delivered, while
#     a chat under C's own name on that stream is (the control). The raw
#     client is test/integration/raws2s.py.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "integration-impersonation-$va-$vb"
SECONDS=0



# ------------------------------------------------------------------ setup

ip_a=${V6M_PREFIX}::a1
ip_b=${V6M_PREFIX}::b1
ip_c=${V6M_PREFIX}::c1
dom_a=$(v6alt_name "$ip_a") && dom_b=$(v6alt_name "$ip_b") && dom_c=$(v6alt_name "$ip_c") ||
  { v6m_not_ok "names from dist/ (v6alt_name)" "run npm run build"; exit 1; }
v6m_use_rock

# C's other claims. C's own address, uncompressed: decodes (laxly) to the very
# address C connects from, so only the canonical-name rule can refuse it.
full_c=$(python3 -c 'import base64,ipaddress,sys
print(base64.b32encode(ipaddress.ip_address(sys.argv[1]).packed).decode().lower().rstrip("="))' "$ip_c")
alias_c=$full_c.v6.alt
label_c=${dom_c%.v6.alt}
bad_c=${label_c/-/-1}.v6.alt       # '1' is not base32: does not decode at all
loop=a-e.v6.alt                     # ::1
sub_a=muc.$dom_a                    # a subdomain of A's name: must come from A's address
note "A: Prosody $va [$ip_a] = $dom_a; B: Prosody $vb [$ip_b] = $dom_b; C (impostor): Prosody $va [$ip_c] (genuinely $dom_c)"
note "C serves: $dom_a, $sub_a, $alias_c, $bad_c, $loop"

mesh_create
prosody_create a "$va" "$dom_a" "$ip_a"
prosody_create b "$vb" "$dom_b" "$ip_b"
tail_c=""
for h in "$sub_a" "$alias_c" "$bad_c" "$loop"; do tail_c+="VirtualHost \"$h\""$'\n'; done
prosody_create --no-module --tail "$tail_c" c "$va" "$dom_a" "$ip_c" \
  'unbound = { hoststxt = true; options = { ["infra-cache-max-rtt:"] = "300" } }'
node_hosts_add c "$ip_b" "$dom_b"
for n in a b; do
  if ! prosody_install_rock "$n" "$rock"; then
    v6m_not_ok "$n: prosodyctl install $(basename "$rock")" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
    exit 1
  fi
done
for n in a b; do
  v6m_check "$n: Prosody $(prosody_version "$n") installed the rock and started" prosody_start "$n" || exit 1
done
prosody_adduser a alice pw-alice >/dev/null || v6m_die "adduser alice"
prosody_adduser b bob pw-bob >/dev/null || v6m_die "adduser bob"

# C serves all its claims as VirtualHosts of one server. If that server cannot
# start (see the check), each claim gets its own run of C, one
# VirtualHost at a time, at the same address: the bug stays reported, and the
# impersonation checks still run.
cfg_c=$(dirname "$(prosody_log c)")/prosody.cfg.lua
multi=1
if V6M_START_TIMEOUT=15 prosody_start c 2>/dev/null && ! prosody_log_grep c $'\terror\t'; then
  v6m_ok "C: Prosody $va with 5 VirtualHosts starts without errors"
else
  multi=0
  v6m_not_ok "C: Prosody $va with 5 VirtualHosts starts without errors" \
    "$(grep -m1 -E $'\terror\t' "$(prosody_log c)" | cut -f3- | cut -c1-200); carrying on with one VirtualHost per run of C"
  prosody_stop c
fi
# impostor_as CLAIM: make sure C serves CLAIM and mallory@CLAIM exists.
C_SERVES=
impostor_as() {
  local claim=$1
  if ((multi == 0)) && [[ $C_SERVES != "$claim" ]]; then
    prosody_stop c
    sed -i '/^VirtualHost /,$d' "$cfg_c"
    echo "VirtualHost \"$claim\"" >>"$cfg_c"
    prosody_start c || v6m_die "C does not start even with only VirtualHost $claim"
    C_SERVES=$claim
  fi
  prosody_ctl c register mallory "$claim" pw-mallory >/dev/null 2>&1
  return 0
}
impostor_as "$dom_a"
c_from=$(log_lines c)  # C's log from here on (a failed start above has its own check)

# impostor_sends DESC CLAIMED_HOST [SECONDS]
#   bob online on B; mallory@CLAIMED_HOST on C writes to him. B must log the
#   refusal (claimed name + C's address), bob must get nothing in SECONDS.
impostor_sends() {
  local desc=$1 claimed=$2 wait=${3:-10} out pid rc=0 lines_b line sline
  local -a rargs sargs
  impostor_as "$claimed"
  lines_b=$(log_lines b)
  out=$V6M_TMP/bob.$RANDOM.out
  mapfile -t rargs < <(client_args b bob pw-bob)
  sargs=(--service "xmpp://[$ip_c]:5222" --domain "$claimed" --user mallory --pass pw-mallory)
  client_start b "$out" recv "${rargs[@]}" --count 1 --timeout "$wait"
  pid=$V6M_CLIENT_PID
  client_wait_for "$out" '"presence-sent"' 15 || { v6m_not_ok "$desc: bob online" "$(cat "$out.err")"; return 1; }
  client_run c send "${sargs[@]}" --to "bob@$dom_b" --body "impostor says hi as $claimed" --expect-error --timeout "$wait" || true
  sline=$(grep -E '"event":"(error-reply|timeout|connect-error)"' <<<"$V6M_OUT" | tail -n 1)
  client_wait "$pid" $((wait + 5)) || rc=$?
  if ((rc == 2)) && ! grep -q '"event":"message"' "$out"; then
    v6m_ok "$desc: bob received nothing in ${wait} s"
  else
    v6m_not_ok "$desc: bob received nothing in ${wait} s" "recv exit $rc: $(grep '"message"' "$out" | head -n 1)"
  fi
  line=$(log_since b "$lines_b" | grep -F "Refusing s2s stream from [$ip_c] claiming to be $claimed: " | head -n 1)
  if [[ -n $line ]]; then
    v6m_ok "$desc: B refused the stream, naming $claimed and [$ip_c]"
    note "B: ${line#*$'\t'warn$'\t'}"
  else
    v6m_not_ok "$desc: B refused the stream, naming $claimed and [$ip_c]" \
      "$(log_since b "$lines_b" | grep -E 'Refusing|s2sin.*(complete|closed)' | head -n 3 | tr '\n\t' '  ')"
  fi
  if log_since b "$lines_b" | grep -qF "Incoming s2s connection $claimed->$dom_b complete"; then
    v6m_not_ok "$desc: no incoming session from $claimed completed on B"
  else
    v6m_ok "$desc: no incoming session from $claimed completed on B"
  fi
  note "C's user was told: $(json_get "$sline" event) $(json_get "$sline" condition) after $(json_get "$sline" elapsed_ms) ms: $(json_get "$sline" text)"
  LAST_REFUSAL=$line
}

# ------------------------------------------------------------------ A's name
say "C claims A's name before A ever talked to B"
impostor_sends "C as $dom_a (A not connected yet)" "$dom_a" 10
grep -qF "belongs to $ip_a" <<<"$LAST_REFUSAL" &&
  v6m_ok "the refusal says the name belongs to [$ip_a]" ||
  v6m_not_ok "the refusal says the name belongs to [$ip_a]" "$LAST_REFUSAL"

say "A, the genuine owner"
chat_check a alice pw-alice b bob pw-bob "genuine A to B after the impostor" 30
chat_check b bob pw-bob a alice pw-alice "B to A reaches the genuine A, not C" 30
if prosody_log_grep c 'Incoming s2s connection'; then
  v6m_not_ok "B never connected to the impostor (no incoming s2s on C)" "$(grep -m1 'Incoming s2s connection' "$(prosody_log c)")"
else
  v6m_ok "B never connected to the impostor (no incoming s2s on C)"
fi
a_in=$(grep -F "Incoming s2s connection $dom_a->$dom_b complete" "$(prosody_log b)" | awk '{print $4}' | tail -n 1)
note "A's incoming session on B: ${a_in:-none}"

say "C claims A's name again while A is connected"
impostor_sends "C as $dom_a (A connected)" "$dom_a" 10
if [[ -n $a_in ]] && ! grep -qE "^.{15} $a_in"$'\t'"info"$'\t'".*(closed|Destroying)" "$(prosody_log b)"; then
  v6m_ok "A's existing session on B ($a_in) was left alone"
else
  v6m_not_ok "A's existing session on B (${a_in:-?}) was left alone" "$(grep -E "^.{15} $a_in" "$(prosody_log b)" | grep -E 'closed|Destroying' | head -n 1)"
fi
chat_check a alice pw-alice b bob pw-bob "genuine A to B still works" 30

# ------------------------------------------------------------------ other claims
say "C claims other names"
impostor_sends "C as $sub_a (a subdomain of A's name)" "$sub_a" 10
impostor_sends "C as $alias_c (its own address, non-canonical)" "$alias_c" 10
grep -qF "uncompressed" <<<"$LAST_REFUSAL" &&
  v6m_ok "the alias was refused as non-canonical, though it comes from the address it encodes" ||
  v6m_not_ok "the alias was refused as non-canonical" "$LAST_REFUSAL"
impostor_sends "C as $bad_c (does not decode)" "$bad_c" 10
impostor_sends "C as $loop (::1)" "$loop" 10

# ------------------------------------------------------------------ piggybacking
say "dialback piggybacking on a stream authenticated by SASL EXTERNAL"
# A certificate for C's genuine name, for the raw client.
pig=$V6M_TMP/pig
mkdir -p "$pig"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=$dom_c" -addext "subjectAltName=DNS:$dom_c" \
  -keyout "$pig/c.key" -out "$pig/c.crt" >/dev/null 2>&1 || v6m_die "openssl for the raw client"
chmod -R a+rX "$pig"

# piggyback CLAIM: returns after bob's 12 s window
piggyback() {
  local claim=$1 out pid rc=0 lines_b res
  local -a rargs
  lines_b=$(log_lines b)
  out=$V6M_TMP/bob-pig.$RANDOM.out
  mapfile -t rargs < <(client_args b bob pw-bob)
  client_start b "$out" recv "${rargs[@]}" --count 2 --timeout 14
  pid=$V6M_CLIENT_PID
  client_wait_for "$out" '"presence-sent"' 15 || { v6m_not_ok "piggyback $claim: bob online"; return 1; }
  # STARTTLS, SASL EXTERNAL as C's own name, a chat as C (the control), then a
  # dialback result for CLAIM on the same stream and a chat as CLAIM.
  res=$(node_exec c python3 "$V6M_LIB_DIR/raws2s.py" "$ip_c" "$ip_b" \
    header "$dom_c" "$dom_b" features features starttls "$pig/c.crt" "$pig/c.key" \
    header "$dom_c" "$dom_b" features features-tls external "$dom_c" \
    header "$dom_c" "$dom_b" wait features-authed '</stream:features>' 5 \
    send "<message from='control@$dom_c' to='bob@$dom_b' type='chat' id='c1'><body>control from $dom_c</body></message>" \
    sleep 1 \
    send "<db:result from='$claim' to='$dom_b'>0123456789abcdef0123456789abcdef</db:result>" \
    wait dialback '<(db:)?result[^>]*?(/>|>.*?</(db:)?result>)|</stream:stream>' 6 \
    send "<message from='mallory@$claim' to='bob@$dom_b' type='chat' id='p1'><body>piggyback as $claim</body></message>" \
    wait after '</stream:stream>' 3 2>&1)
  sed 's/^/#       /' <<<"$res" | grep -E '^#       (sasl|dialback|after|closed)|Error|Traceback'
  client_wait "$pid" 20 || rc=$?
  if grep -q '^sasl: <success' <<<"$res" && grep -qF "\"body\":\"control from $dom_c\"" "$out"; then
    v6m_ok "piggyback $claim: the raw client is accepted as $dom_c (SASL EXTERNAL) and its control chat delivered"
  else
    v6m_not_ok "piggyback $claim: the raw client is accepted as $dom_c and its control chat delivered" \
      "$(grep -E '^(sasl|closed)' <<<"$res" | head -n 2 | tr '\n' ' ') recv: $(grep -c '"message"' "$out") messages"
  fi
  if grep -q "piggyback as" "$out"; then
    v6m_not_ok "piggyback $claim: nothing sent as $claim reached bob" "$(grep 'piggyback as' "$out")"
  else
    v6m_ok "piggyback $claim: nothing sent as $claim reached bob (recv exit $rc)"
  fi
  if log_since b "$lines_b" | grep -qE "is now authenticated for $claim\$|authenticated for $claim\b"; then
    v6m_not_ok "piggyback $claim: B never authenticated the stream for $claim" "$(log_since b "$lines_b" | grep -m1 "authenticated for $claim")"
  else
    v6m_ok "piggyback $claim: B never authenticated the stream for $claim"
  fi
  no_lua_errors b "$lines_b" "piggyback $claim: no Lua error or traceback on B"
  note "B logged: $(log_since b "$lines_b" | grep -E $'\t(info|warn|error)\t' | grep -vE 'c2s|Stream encrypted|Client disconnected|Authenticated|Server-to-server connection failed' | cut -f3- | head -n 6 | tr '\n' '|')"
}
piggyback "$dom_a"
piggyback "$loop"

logs_lack "no Lua traceback in the whole log" 'stack traceback' a b
no_lua_errors c "$c_from" "c: no Lua error or traceback while impersonating"
n=$(dns_queries_match "not host $ip_c" | grep -vcF "canary-$V6M_ID.")
v6m_check_eq "0 DNS packets from or to A and B" 0 "$n"
note "C (no module) sent $(dns_queries_match "host $ip_c" | grep -c .) DNS packets looking for B"
note "suite time: ${SECONDS} s"
v6m_finish
