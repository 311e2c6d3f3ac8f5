#!/usr/bin/env bash
# Reloading, breaking and unloading the module in a running server (SPEC §3,
# §3.1 "Reload": settings and routing stay in force, new code of every file is
# picked up, no window where the checks are off; unload restores Prosody), and
# the plaintext-range piggyback question (issue 8).
#
#   sudo bash test/integration/suites/reload.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# A (VERSION_A) serves two VirtualHosts at two addresses of its node:
#   A  = the name of PREFIX::a1, with s2s_v6mesh_trust_all_certs = false in its
#        VirtualHost section (alice);
#   A2 = the name of PREFIX::a2, defaults (alice2).
# B (VERSION_B) = the name of PREFIX::b1, defaults (bob). Module only in the
# global modules_enabled; s2s_require_encryption, s2s_secure_auth, self-signed
# certificates everywhere.
#
# "The three facts", checked before any reload and after each of
# module:reload("s2s_v6mesh", "*"), module:reload("s2s_v6mesh") and
# module:reload("s2s_v6mesh", A), each time on new s2s sessions (s2s closeall):
#   (a) trust-off holds: B (self-signed) cannot deliver to alice@A, A logs that
#       it forbade B's certificate, no incoming session B->A completes;
#   (b) no DNS: alice2@A2 -> bob@B delivered, no DNS packet, no "Resolve"
#       line for a .v6.alt name in A's log;
#   (c) alice@A -> x@a-e.v6.alt (::1) bounces policy-violation (loopback).
# 2. New code of every file: the installed policy.lua's text "the loopback
#    address" edited, global reload, the bounce text says "(edited)"; and a
#    probe log line put at the top of every installed .lua file of the module,
#    global reload, each file's probe line appears in A's log.
# 3. A reload that fails fails closed: a syntax error in the installed
#    policy.lua, global reload: the module stays loaded but closed and logs
#    why (naming policy.lua); alice2 -> bob must not go to
#    DNS (no packet, no Resolve line) and must bounce, bob gets nothing. Then
#    the file is fixed and the same global reload must bring the module back
#    (loaded on *, (c) bounces policy-violation again). If it does not, the
#    suite notes it and recovers with module:reload("s2s_v6mesh") so that the
#    rest runs from a working state; alice2 -> bob is delivered again, no DNS.
# 4. module:unload("s2s_v6mesh"): a chat to B's name goes to DNS again.
#    4b: module:load, a failed reload as in 3 (file fixed afterwards, not
#    reloaded), then module:unload: Prosody must be restored all the same (a
#    chat to a name under B's that A never looked up goes to DNS).
# 5. Piggyback over a plaintext range: A and B restarted with
#    s2s_v6mesh_ranges = { PREFIX::/64 = { use_tls = false } }. A raw client at
#    PREFIX::c1 (stream from its own .v6.alt name, no STARTTLS) sends a dialback
#    <db:result> for other.example and a message from other.example to alice:
#    not authenticated, nothing delivered; the DNS packets this caused and A's
#    log lines about other.example are reported. Then the same after the raw
#    client authenticated as its own name by SASL EXTERNAL (plaintext) and
#    delivered a control message (which proves the stream was usable).
#    Here other.example does not resolve, so Prosody's own verification fails
#    whatever the module does. 5c settles the question: other.example is then
#    a real server V (outside the range, a certificate from a test CA that A
#    trusts, found through A's hosts file) whose dialback_secret the raw
#    client knows, so V confirms the key (instrument: alice -> carol@other.example
#    is delivered); A must still refuse other.example on the plaintext stream.
#
# The raw s2s client of check 5 is inline Python: it waits, after its
# <db:result>, until the test has seen A settle the request in its log (a file
# appears), which test/integration/raws2s.py has no step for.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "integration-reload-$va-$vb"
SECONDS=0


# ------------------------------------------------------------------ helpers

one_line() { tr '\n\t' '  ' | cut -c1-"${1:-300}"; }

# probe NODE TO_JID TIMEOUT CLIENT_ARGS...: one chat with --expect-error.
# Sets P_RC (client exit), P_EVENT, P_COND, P_TEXT, P_MS.
probe() {
  local node=$1 to=$2 timeout=$3 line
  shift 3
  P_RC=0
  client_run "$node" send "$@" --to "$to" --body "probe $RANDOM" --expect-error --timeout "$timeout" || P_RC=$?
  line=$(grep -E '"event":"(error-reply|timeout|unexpected-reply|connect-error)"' <<<"$V6M_OUT" | tail -n 1)
  P_EVENT=$(json_get "$line" event)
  P_COND=$(json_get "$line" condition)
  P_TEXT=$(json_get "$line" text)
  P_MS=$(json_get "$line" elapsed_ms)
  [[ -n $P_MS ]] || P_MS=-1
}

# DNS packets and A's resolver log lines since a mark (mark_dns sets both).
mark_dns() {
  MARK_DNS=$(dns_count)
  MARK_A=$(log_lines a)
}
dns_new() { echo $(($(dns_count) - MARK_DNS)); }
dns_names() { dns_queries | grep -oE '(A|AAAA|SRV)\? [^ ]+' | sort | uniq -c | tr -s ' ' | tr '\n' ';'; }
# Lines in A's log (since the mark) that show a lookup of a .v6.alt name.
resolve_lines() {
  log_since a "$MARK_A" | grep -E $'(\tResolve |unbound\\.query|[Rr]esolv).*\\.v6\\.alt' | head -n 3
}
check_no_dns() { # DESC
  local n lines
  n=$(dns_new)
  if ((n == 0)); then
    v6m_ok "$1: 0 DNS packets"
  else
    v6m_not_ok "$1: 0 DNS packets" "$n new: $(dns_names)"
  fi
  lines=$(resolve_lines)
  if [[ -z $lines ]]; then
    v6m_ok "$1: no 'Resolve ...v6.alt' in A's log"
  else
    v6m_not_ok "$1: no 'Resolve ...v6.alt' in A's log" "$(one_line <<<"$lines")"
  fi
}

# s2s_quiet: close every s2s session on A and B, and wait until neither node
# has a TCP connection on port 5269 left (so the next chat opens new ones).
s2s_quiet() {
  local i n
  prosody_shell a s2s closeall >/dev/null 2>&1
  prosody_shell b s2s closeall >/dev/null 2>&1
  if prosody_running v; then prosody_shell v s2s closeall >/dev/null 2>&1; fi
  for ((i = 0; i < 50; i++)); do
    n=$( (node_exec a ss -Htn state established '( sport = :5269 or dport = :5269 )'
      node_exec b ss -Htn state established '( sport = :5269 or dport = :5269 )') 2>/dev/null | grep -c .)
    ((n == 0)) && return 0
    sleep 0.1
  done
  note "s2s connections still open after closeall: $n"
}

# deliver DESC FROM_NODE TO_NODE TO_JID BODY RECV_ARGS_VAR SEND_ARGS_VAR [TIMEOUT]
deliver() {
  local desc=$1 from=$2 to=$3 tojid=$4 body=$5 timeout=${8:-20} out pid rc=0 why wait_s
  local -n rargs=$6 sargs=$7
  out=$V6M_TMP/deliver.$RANDOM.out
  client_start "$to" "$out" recv "${rargs[@]}" --count 1 --timeout "$timeout"
  pid=$V6M_CLIENT_PID
  if ! client_wait_for "$out" '"presence-sent"' 15; then
    v6m_not_ok "$desc" "receiver not online: $(cat "$out" "$out.err" | one_line)"
    v6m__kill_pid "$pid"
    return 1
  fi
  client_run "$from" send "${sargs[@]}" --to "$tojid" --body "$body" --timeout "$timeout" --linger-ms 300
  why=$(grep -E '"(error-reply|connect-error|client-error|timeout)"' <<<"$V6M_OUT" | head -n 1)
  # After an error reply the stanza is gone: no need to wait the whole timeout.
  wait_s=$((timeout + 5))
  [[ $why == *error-reply* ]] && wait_s=2
  client_wait "$pid" "$wait_s" || rc=$?
  if ((rc == 0)) && grep -qF "\"body\":\"$body\"" "$out"; then
    v6m_ok "$desc"
    return 0
  fi
  v6m_not_ok "$desc" "receiver exit $rc; sender: ${why:-no error reply}"
  return 1
}

# not_delivered DESC FROM_NODE TO_NODE TO_JID RECV_ARGS_VAR SEND_ARGS_VAR [TIMEOUT]
#   the receiver (online first) gets nothing, the sender gets an error reply.
#   Stops waiting as soon as either the sender has its answer or the receiver
#   got the message. Sets P_* as probe does.
not_delivered() {
  local desc=$1 from=$2 to=$3 tojid=$4 timeout=${7:-20} out sout pid spid i line
  local -n nrargs=$5 nsargs=$6
  out=$V6M_TMP/nd.$RANDOM.out
  sout=$out.send
  client_start "$to" "$out" recv "${nrargs[@]}" --count 1 --timeout $((timeout + 10))
  pid=$V6M_CLIENT_PID
  if ! client_wait_for "$out" '"presence-sent"' 15; then
    v6m_not_ok "$desc" "receiver not online: $(cat "$out" "$out.err" | one_line)"
    v6m__kill_pid "$pid"
    return 1
  fi
  client_start "$from" "$sout" send "${nsargs[@]}" --to "$tojid" --body "nd $RANDOM" --expect-error --timeout "$timeout"
  spid=$V6M_CLIENT_PID
  for ((i = 0; i < timeout * 10 + 50; i++)); do
    kill -0 "$spid" 2>/dev/null || break
    grep -q '"event":"message"' "$out" && break
    sleep 0.1
  done
  if kill -0 "$spid" 2>/dev/null; then
    v6m__kill_pid "$spid"
    P_RC=124
  else
    P_RC=0
    wait "$spid" || P_RC=$?
  fi
  # The error reply means the sender's server gave the stanza up: nothing can
  # arrive after it.
  v6m__kill_pid "$pid"
  line=$(grep -E '"event":"(error-reply|timeout|unexpected-reply|connect-error)"' "$sout" | tail -n 1)
  P_EVENT=$(json_get "$line" event)
  P_COND=$(json_get "$line" condition)
  P_TEXT=$(json_get "$line" text)
  P_MS=$(json_get "$line" elapsed_ms)
  [[ -n $P_MS ]] || P_MS=-1
  if grep -q '"event":"message"' "$out"; then
    v6m_not_ok "$desc: the receiver got nothing" "$(grep -m1 '"event":"message"' "$out")"
  else
    v6m_ok "$desc: the receiver got nothing"
  fi
  if ((P_RC == 0)) && [[ $P_EVENT == error-reply ]]; then
    v6m_ok "$desc: the sender got an error reply ($P_COND after $P_MS ms: $P_TEXT)"
  else
    v6m_not_ok "$desc: the sender got an error reply" "client exit $P_RC, ${P_EVENT:-nothing} '$P_COND' '$P_TEXT'"
  fi
}

# log_wait_since SRV MARK ERE [SECONDS]: a line after MARK matches ERE.
log_wait_since() {
  local i
  for ((i = 0; i < ${4:-10} * 10; i++)); do
    log_since "$1" "$2" | grep -Eq -- "$3" && return 0
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------ setup

ip_a=$V6M_PREFIX::a1
ip_a2=$V6M_PREFIX::a2
ip_b=$V6M_PREFIX::b1
ip_c=$V6M_PREFIX::c1
dom_a=$(v6alt_name "$ip_a") && dom_a2=$(v6alt_name "$ip_a2") && dom_b=$(v6alt_name "$ip_b") &&
  dom_c=$(v6alt_name "$ip_c") || { v6m_not_ok "names from dist/ (v6alt_name)" "run npm run build"; exit 1; }
loop=a-e.v6.alt # ::1
v6m_use_rock
note "rock: $(basename "$rock") ($(sha256sum "$rock" | cut -c1-12))"
note "A: Prosody $va, $dom_a [$ip_a] (trust_all_certs = false) + $dom_a2 [$ip_a2]; B: Prosody $vb, $dom_b [$ip_b]"

mesh_create
node_add a "$ip_a"
node_addr_add a "$ip_a2"
# A also looks names up (after the unload, and for other.example in check 5);
# the unbound line keeps each failed lookup short (see federation.sh). With the
# module in force it changes nothing: no query is ever made.
unbound_cap='unbound = { options = { ["infra-cache-max-rtt:"] = "300" } }'
prosody_create --tail "s2s_v6mesh_trust_all_certs = false
VirtualHost \"$dom_a2\"" a "$va" "$dom_a" "$ip_a" "interfaces = { \"$ip_a\", \"$ip_a2\", \"::1\" }
local_interfaces = { \"$ip_a\", \"$ip_a2\", \"::1\" }
$unbound_cap"
prosody_create b "$vb" "$dom_b" "$ip_b" "$unbound_cap"
dir_a=$(v6m__srv a)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=$dom_a2" -addext "subjectAltName=DNS:$dom_a2,DNS:*.$dom_a2" \
  -keyout "$dir_a/certs/$dom_a2.key" -out "$dir_a/certs/$dom_a2.crt" >/dev/null 2>&1 || v6m_die "openssl for $dom_a2"
chown prosody:prosody "$dir_a/certs/$dom_a2".*
chmod 600 "$dir_a/certs/$dom_a2.key"
for n in a b; do
  if ! prosody_install_rock "$n" "$rock"; then
    v6m_not_ok "$n: prosodyctl install $(basename "$rock")" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | one_line)"
    exit 1
  fi
  v6m_check "$n: Prosody $(prosody_version "$n") installed the rock and started" prosody_start "$n" || exit 1
done
prosody_adduser a alice pw-alice >/dev/null || v6m_die "adduser alice"
prosody_ctl a register alice2 "$dom_a2" pw-alice2 >/dev/null || v6m_die "adduser alice2"
prosody_adduser b bob pw-bob >/dev/null || v6m_die "adduser bob"

alice=(--service "xmpp://[$ip_a]:5222" --domain "$dom_a" --user alice --pass pw-alice)
alice2=(--service "xmpp://[$ip_a]:5222" --domain "$dom_a2" --user alice2 --pass pw-alice2)
bob=(--service "xmpp://[$ip_b]:5222" --domain "$dom_b" --user bob --pass pw-bob)

plugdir=$(dirname "$(find "$dir_a/data/custom_plugins" -name policy.lua -path '*/mod_s2s_v6mesh/*' | head -n 1)")
[[ -f $plugdir/policy.lua ]] || v6m_die "installed policy.lua not found under $dir_a/data/custom_plugins"
# Every installed file Prosody runs: all but dnsd.lua, the standalone
# resolver's main, which only the v6alt-dnsd command loads.
mapfile -t modfiles < <(cd "$plugdir" && find . -name '*.lua' ! -name dnsd.lua | sed 's|^\./||' | sort)
note "A's installed module files ($plugdir): ${modfiles[*]}"
mkdir -p "$V6M_TMP/orig"
cp -a "$plugdir/." "$V6M_TMP/orig/"
restore_files() { cp -a "$V6M_TMP/orig/." "$plugdir/"; }

# module_everywhere DESC: loaded on "*", on A and on A2.
module_everywhere() {
  local where missing=""
  for where in "*" "$dom_a" "$dom_a2"; do
    if ! prosody_shell a "module:list(\"$where\")" || ! grep -Eq '^[[:space:]]+s2s_v6mesh$' <<<"$V6M_OUT"; then
      missing+=" $where"
    fi
  done
  if [[ -z $missing ]]; then
    v6m_ok "$1: s2s_v6mesh loaded globally and on both hosts"
  else
    v6m_not_ok "$1: s2s_v6mesh loaded globally and on both hosts" "not on:$missing"
  fi
}

# bounce_loopback LABEL [ERE]: alice@A -> x@a-e.v6.alt is policy-violation
# within 1 s, the text matching ERE (default: the loopback address).
bounce_loopback() {
  local label=$1 want=${2:-the loopback address}
  probe a "x@$loop" 5 "${alice[@]}"
  if ((P_RC == 0)) && [[ $P_COND == policy-violation ]] && ((P_MS >= 0 && P_MS < 1000)) &&
    grep -qiE -- "$want" <<<"$P_TEXT"; then
    v6m_ok "$label: (c) x@$loop bounces policy-violation in $P_MS ms: $P_TEXT"
  else
    v6m_not_ok "$label: (c) x@$loop bounces policy-violation within 1 s, text /$want/" \
      "client exit $P_RC, ${P_EVENT:-nothing} '$P_COND' after $P_MS ms: '$P_TEXT'"
  fi
}

# three_facts LABEL
three_facts() {
  local label=$1 lines
  s2s_quiet
  mark_dns
  # (a)
  not_delivered "$label: (a) bob@$dom_b -> alice@$dom_a (trust off on A)" b a "alice@$dom_a" alice bob 20
  lines=$(log_since a "$MARK_A")
  if grep -qE "Forbidding insecure connection to/from $(ere "$dom_b")" <<<"$lines"; then
    v6m_ok "$label: (a) A forbade $dom_b's certificate ($(grep -m1 -oE 'Forbidding insecure connection to/from .*' <<<"$lines" | cut -c1-120))"
  else
    v6m_not_ok "$label: (a) A forbade $dom_b's certificate" \
      "no 'Forbidding insecure connection to/from $dom_b'; A: $(grep -E "Trusting $(ere "$dom_b")|Refusing|$(ere "$dom_b")->$(ere "$dom_a")" <<<"$lines" | head -n 2 | one_line)"
  fi
  if grep -qF "Incoming s2s connection $dom_b->$dom_a complete" <<<"$lines"; then
    v6m_not_ok "$label: (a) no incoming s2s session $dom_b->$dom_a completed" "$(grep -m1 -F "Incoming s2s connection $dom_b->$dom_a complete" <<<"$lines" | one_line)"
  else
    v6m_ok "$label: (a) no incoming s2s session $dom_b->$dom_a completed"
  fi
  # (b)
  deliver "$label: (b) alice2@$dom_a2 -> bob@$dom_b delivered" a b "bob@$dom_b" "facts $label" bob alice2 20
  check_no_dns "$label: (a)+(b)"
  # (c)
  bounce_loopback "$label"
}

# reload_ok LABEL CODE: the shell command succeeds and reports a reload.
reload_ok() {
  local label=$1 code=$2 rc=0
  RELOAD_MARK=$(log_lines a)
  prosody_shell a "$code" || rc=$?
  if ((rc == 0)) && grep -qE 'Reloaded on |reloaded on [1-9]' <<<"$V6M_OUT"; then
    v6m_ok "$label: prosodyctl shell '$code' ($(tail -n 1 <<<"$V6M_OUT"))"
  else
    v6m_not_ok "$label: prosodyctl shell '$code'" "exit $rc: $(one_line <<<"$V6M_OUT $V6M_ERR")"
  fi
  note "shell said: $(one_line 400 <<<"$V6M_OUT")"
}
no_errors_since() { # LABEL MARK
  local bad
  bad=$(log_since a "$2" | grep -E $'[Tt]raceback|\terror\t' | head -n 3)
  if [[ -z $bad ]]; then v6m_ok "$1: no error or traceback in A's log"; else v6m_not_ok "$1: no error or traceback in A's log" "$(one_line 400 <<<"$bad")"; fi
}

# ------------------------------------------------------------------ 1
say "1. before any reload"
module_everywhere "start"
if prosody_log_grep a "$(ere "$dom_a")"'.*[Ww]arn.*(not an address of this machine|canonical)'; then
  note "A warned at load: $(grep -m1 -E 'not an address of this machine|canonical' "$(prosody_log a)" | one_line)"
fi
three_facts "before reload"

say "1. module:reload(\"s2s_v6mesh\", \"*\")"
reload_ok "global reload" 'module:reload("s2s_v6mesh", "*")'
module_everywhere "after the global reload"
no_errors_since "global reload" "$RELOAD_MARK"
three_facts "after reload *"

say "1. module:reload(\"s2s_v6mesh\") (every host where it is loaded, and *)"
reload_ok "reload without host" 'module:reload("s2s_v6mesh")'
module_everywhere "after the reload without host"
no_errors_since "reload without host" "$RELOAD_MARK"
three_facts "after reload (all)"

say "1. module:reload(\"s2s_v6mesh\", \"$dom_a\")"
reload_ok "per-host reload" "module:reload(\"s2s_v6mesh\", \"$dom_a\")"
module_everywhere "after the per-host reload"
no_errors_since "per-host reload" "$RELOAD_MARK"
three_facts "after reload $dom_a"

# ------------------------------------------------------------------ 2
say "2. new code of every file"
sed -i 's/the loopback address/the loopback address (edited)/' "$plugdir/policy.lua"
if grep -q 'the loopback address (edited)' "$plugdir/policy.lua"; then
  v6m_ok "policy.lua edited on disk: 'the loopback address' -> 'the loopback address (edited)'"
else
  v6m_not_ok "policy.lua edited on disk" "the text 'the loopback address' is not in $plugdir/policy.lua"
fi
reload_ok "reload after editing policy.lua" 'module:reload("s2s_v6mesh", "*")'
bounce_loopback "after editing policy.lua" 'loopback address \(edited\)'
restore_files

# A probe at the top of every installed file: a log line with a fresh tag.
gen=g$RANDOM$RANDOM
for f in "${modfiles[@]}"; do
  probe_lua="do local ok, l = pcall(require, \"util.logger\"); if not ok then ok, l = pcall(require, \"prosody.util.logger\") end; if ok then l.init(\"v6m-reload-probe\")(\"info\", \"v6m-probe %s re-read %s\", \"$gen\", \"$f\") end end"
  { printf '%s\n' "$probe_lua"; cat "$V6M_TMP/orig/$f"; } >"$plugdir/$f"
done
reload_ok "reload after putting a probe into every file" 'module:reload("s2s_v6mesh", "*")'
for f in "${modfiles[@]}"; do
  if prosody_log_wait a "v6m-probe $gen re-read $(ere "$f")\$" 2; then
    v6m_ok "the reload ran the new code of $f"
  else
    v6m_not_ok "the reload ran the new code of $f" "no 'v6m-probe $gen re-read $f' in A's log"
  fi
done
restore_files
reload_ok "reload with the original files" 'module:reload("s2s_v6mesh", "*")'
module_everywhere "after the reload with the original files"
bounce_loopback "after restoring the files"

# ------------------------------------------------------------------ 3
say "3. a reload that fails"
# broken_reload LABEL: a syntax error appended to the installed policy.lua,
# then module:reload("s2s_v6mesh", "*"). The module stays loaded but closed:
# A logs an error naming policy.lua and saying federation is closed. The log
# lines of that reload go to BROKEN (expected errors).
BROKEN=()
broken_reload() {
  local label=$1 from rc=0
  echo 'this is not lua' >>"$plugdir/policy.lua"
  from=$(log_lines a)
  prosody_shell a 'module:reload("s2s_v6mesh", "*")' || rc=$?
  BROKEN+=("$from $(log_lines a)")
  note "shell (exit $rc): $(one_line 300 <<<"$V6M_OUT $V6M_ERR")"
  local line
  line=$(log_since a "$from" | grep -m1 -E $'\terror\tpolicy\.lua does not load: .*; \\.v6\\.alt federation is closed until this is fixed and the module reloaded$')
  if [[ -n $line ]]; then
    v6m_ok "$label: a reload with a syntax error in policy.lua logs why and that .v6.alt federation is closed"
    note "A: $(cut -f3- <<<"$line" | cut -c1-200)"
  else
    v6m_not_ok "$label: a reload with a syntax error in policy.lua logs why and that .v6.alt federation is closed" \
      "shell exit $rc: $(one_line <<<"$V6M_OUT $V6M_ERR"); log: $(log_since a "$from" | grep -E $'\t(warn|error)\t' | head -n 2 | one_line 300)"
  fi
  if [[ $(module_where) == "* "* ]]; then
    v6m_ok "$label: the module stays loaded (closed), so the same reload can bring it back"
  else
    v6m_not_ok "$label: the module stays loaded (closed), so the same reload can bring it back" "loaded: $(module_where)"
  fi
  note "A logged: $(log_since a "$from" | grep -E $'\t(warn|error)\t' | head -n 2 | cut -d' ' -f4- | one_line 300)"
  note "loaded after the failed reload: $(module_where)"
}
# module_where: where module:list shows s2s_v6mesh ("*", A, A2).
module_where() {
  local where out=""
  for where in "*" "$dom_a" "$dom_a2"; do
    if prosody_shell a "module:list(\"$where\")" && grep -Eq '^[[:space:]]+s2s_v6mesh$' <<<"$V6M_OUT"; then
      out+="$where "
    fi
  done
  echo "${out:-nowhere}"
}

broken_reload "3"
s2s_quiet
mark_dns
not_delivered "3: after the failed reload, alice2@$dom_a2 -> bob@$dom_b" a b "bob@$dom_b" bob alice2 20
check_no_dns "3: after the failed reload"
if log_since a "$MARK_A" | grep -qE "$(ere "$dom_b") is at \["; then
  note "A routed $dom_b by address after the failed reload"
fi

restore_files
reload_ok "3: after fixing policy.lua, the same reload" 'module:reload("s2s_v6mesh", "*")'
module_everywhere "3: after the fix and the reload of *"
# The loopback bounce answers at once: it shows whether .v6.alt routing is
# back (policy-violation) or still closed.
bounce_loopback "3: after the fix and the reload of *"
if [[ $(module_where) != "* $dom_a $dom_a2 " ]]; then
  note "the reload of * did not bring the module back; trying module:reload(\"s2s_v6mesh\") (all hosts)"
  reload_ok "3: recovery" 'module:reload("s2s_v6mesh")'
  module_everywhere "3: after the recovery reload"
fi
s2s_quiet
mark_dns
deliver "3: after the fix: alice2@$dom_a2 -> bob@$dom_b delivered" a b "bob@$dom_b" "fixed reload" bob alice2 20
check_no_dns "3: after the fix"
bounce_loopback "3: after the fix"

# ------------------------------------------------------------------ 4
# unload_goes_to_dns LABEL JID: module:unload("s2s_v6mesh"), then a chat to
# JID (a name A has not looked up before) makes A look the name up in DNS: a
# packet on the mesh, or, when libunbound answers from its cache (after an
# earlier failure it may not ask the dead server again for a while), the
# "Resolve NAME" line Prosody logs for every lookup.
unload_goes_to_dns() {
  local label=$1 to=$2 rc=0 out pid i n from resolved
  from=$(log_lines a)
  prosody_shell a 'module:unload("s2s_v6mesh")' || rc=$?
  if ((rc == 0)); then
    v6m_ok "$label: module:unload(\"s2s_v6mesh\") ($(tail -n 1 <<<"$V6M_OUT"))"
  else
    v6m_not_ok "$label: module:unload(\"s2s_v6mesh\")" "exit $rc: $(one_line <<<"$V6M_OUT $V6M_ERR")"
  fi
  note "loaded after the unload: $(module_where)"
  s2s_quiet
  mark_dns
  out=$V6M_TMP/unload-send.$RANDOM.out
  client_start a "$out" send "${alice2[@]}" --to "$to" --body "after unload" --expect-error --timeout 30
  pid=$V6M_CLIENT_PID
  for ((i = 0; i < 100; i++)); do
    (($(dns_new) > 0)) && break
    kill -0 "$pid" 2>/dev/null || break
  done
  n=$(dns_new)
  client_wait "$pid" 30 >/dev/null || true
  resolved=$(log_since a "$from" | grep -m1 -oE "Resolve [^ ]*$(ere "${to#*@}") [A-Z]+ [A-Z]+")
  if ((n > 0)); then
    v6m_ok "$label: after the unload a chat to $to goes to DNS ($n packets: $(dns_queries | tail -n "$n" | grep -oE '(A|AAAA|SRV)\? [^ ]+' | sort -u | tr '\n' ' '))"
  elif [[ -n $resolved ]]; then
    v6m_ok "$label: after the unload a chat to $to goes to DNS (answered from libunbound's cache, A logged: $resolved)"
  else
    v6m_not_ok "$label: after the unload a chat to $to goes to DNS" "no DNS packet; client: $(grep -vE '"event":"(online|sent)"' "$out" | one_line)"
  fi
  v6m__kill_pid "$pid"
}
say "4. unload"
unload_goes_to_dns "4" "bob@$dom_b"

say "4b. unload after a failed reload"
rc=0
prosody_shell a 'module:load("s2s_v6mesh")' || rc=$?
note "module:load (exit $rc): $(one_line 200 <<<"$V6M_OUT $V6M_ERR")"
module_everywhere "4b: after module:load"
bounce_loopback "4b: after module:load"
broken_reload "4b"
restore_files
unload_goes_to_dns "4b" "bob@after-failed-reload.$dom_b"

# ------------------------------------------------------------------ 5
say "5. dialback for other.example over a plaintext range"
prosody_stop a
prosody_stop b
# A2 is not needed any more; without its address, A's connections to names
# that are not .v6.alt (other.example in 5c) leave from A's own address.
node_exec a ip -6 addr del "$ip_a2/128" dev eth0 || v6m_die "cannot remove $ip_a2 from node a"
range_cfg="$V6M_PREFIX::/64"
for n in a b; do
  cfg=$(v6m__srv "$n")/prosody.cfg.lua
  sed -i '/^VirtualHost /,$d' "$cfg"
  printf -- '-- reload.sh check 5\ns2s_v6mesh_ranges = { ["%s"] = { use_tls = false } }\n\nVirtualHost "%s"\n' \
    "$range_cfg" "$(prosody_domain "$n")" >>"$cfg"
  v6m_check "$n: restarted with s2s_v6mesh_ranges = { [\"$range_cfg\"] = { use_tls = false } }" prosody_start "$n" || exit 1
done
v6m_check "A: s2s_v6mesh loaded after the restart" prosody_module_loaded a s2s_v6mesh
node_add c "$ip_c"
note "raw client: [$ip_c] = $dom_c, inside $range_cfg"

cat >"$V6M_TMP/plainpig.py" <<'EOF'
# plainpig.py MODE SRC DST FROM TO CLAIM RCPT GOFILE [SECRET]
#   MODE bare: open a plaintext stream as FROM, send <db:result> for CLAIM,
#              wait for an answer (or for GOFILE: the test saw A settle it),
#              then send a message from CLAIM.
#   MODE sasl: the same after SASL EXTERNAL as FROM (no TLS) and a control
#              message from FROM.
#   SECRET: the dialback_secret of CLAIM's real server: the key is then the
#   one that server will confirm (Prosody's generate_dialback for this
#   stream); without it, a made-up key.
# One "step: ..." line per step.
import base64, hashlib, hmac, os, re, socket, sys, time
mode, src, dst, frm, to, claim, rcpt, gofile = sys.argv[1:9]
secret = sys.argv[9] if len(sys.argv) > 9 else None
NS = "xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'"
header = "<?xml version='1.0'?><stream:stream %s from='%s' to='%s' version='1.0'>" % (NS, frm, to)
s = socket.socket(socket.AF_INET6)
s.bind((src, 0))
s.settimeout(5)
s.connect((dst, 5269))
buf = ""
closed = False
def say(step, what):
    print("%s: %s" % (step, what.replace("\n", " ")[:600]), flush=True)
def until(pattern, secs=5):
    global buf, closed
    end = time.time() + secs
    while True:
        m = re.search(pattern, buf, re.S)
        if m:
            out, buf = buf[:m.end()], buf[m.end():]
            return out
        if closed or time.time() >= end:
            return None
        s.settimeout(max(0.05, min(0.2, end - time.time())))
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except OSError as e:
            d = b""
        if not d:
            closed = True
            say("closed", buf or "(nothing more)")
            continue
        buf += d.decode("utf-8", "replace")
def send(x):
    try:
        s.sendall(x.encode())
        return True
    except OSError as e:
        say("send-failed", str(e))
        return False
send(header)
f = until(r"</stream:features>")
say("features", f or "(none)")
if not f:
    sys.exit(2)
if mode == "sasl":
    if "EXTERNAL" not in f:
        say("sasl", "EXTERNAL not offered"); sys.exit(2)
    send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>%s</auth>" % base64.b64encode(frm.encode()).decode())
    r = until(r"<(success|failure)[^>]*?(/>|>.*?</(success|failure)>)")
    say("sasl", r or "(no answer)")
    if not r or "success" not in r:
        sys.exit(2)
    buf = ""
    send(header)
    f = until(r"</stream:features>")
    say("features-authed", f or "(none)")
    send("<message from='control@%s' to='%s' type='chat' id='c1'><body>control from %s</body></message>" % (frm, rcpt, frm))
key = "0123456789abcdef0123456789abcdef"
if secret:
    ids = re.findall(r"<stream:stream[^>]*\sid=['\"]([^'\"]+)", (f or ""))
    if not ids:
        say("dialback", "no stream id seen"); sys.exit(2)
    k = hashlib.sha256(secret.encode()).hexdigest().encode()
    key = hmac.new(k, ("%s %s %s" % (to, claim, ids[-1])).encode(), hashlib.sha256).hexdigest()
send("<db:result from='%s' to='%s'>%s</db:result>" % (claim, to, key))
say("dialback-sent", "%s key %s" % (claim, key))
end = time.time() + 20
r = None
while time.time() < end and not closed:
    r = until(r"<(db:)?result[^>]*?(/>|>.*?</(db:)?result>)|</stream:stream>", 0.2)
    if r or os.path.exists(gofile):
        break
say("dialback", r or ("(no answer; A settled it)" if os.path.exists(gofile) else "(no answer in 20 s)"))
if not closed:
    send("<message from='mallory@%s' to='%s' type='chat' id='p1'><body>piggyback as %s (%s)</body></message>" % (claim, rcpt, claim, mode))
    r = until(r"</stream:stream>", 1)
    say("after", (r or "(stream still open)") + " " + buf)
    send("</stream:stream>")
s.close()
EOF
chmod a+r "$V6M_TMP/plainpig.py"

# What A logs when it has settled a dialback request for other.example (the
# verification connection failed, was refused or answered), or refused it.
settled='failed outgoing connection to other\.example|discarding <db:verify.*other\.example|authoritative server for other\.example|Received\[s2sout\]: <(db:)?verify[^>]*other\.example|claiming to be other\.example|Not accepted as other\.example|s2sin[0-9a-f]+[[:space:]].*authenticated for other\.example'

# piggy MODE [SECRET]: one run of the raw client while alice is online on A
# (with SECRET: other.example's real server will confirm the key).
piggy() {
  local mode=$1 secret=${2:-} out pid ppid res resf lines ans go t0 tag lbl sid authed why
  tag=$mode${secret:+-real}
  lbl="5 ($mode)"
  [[ -n $secret ]] && lbl="5c ($mode, real other.example)"
  s2s_quiet
  mark_dns
  out=$V6M_TMP/alice-pig-$tag.out
  resf=$V6M_TMP/pig-$tag.res
  go=$V6M_TMP/pig-$tag.go
  client_start a "$out" recv "${alice[@]}" --count 3 --timeout 60
  pid=$V6M_CLIENT_PID
  client_wait_for "$out" '"presence-sent"' 15 || { v6m_not_ok "$lbl: alice online"; return 1; }
  node_exec c timeout 40 python3 "$V6M_TMP/plainpig.py" "$mode" "$ip_c" "$ip_a" "$dom_c" "$dom_a" \
    other.example "alice@$dom_a" "$go" ${secret:+"$secret"} >"$resf" 2>&1 &
  ppid=$!
  v6m__track_pid "$ppid"
  t0=$SECONDS
  if client_wait_for "$resf" '^(dialback-sent|closed|sasl: )' 15 && grep -q '^dialback-sent' "$resf"; then
    if log_wait_since a "$MARK_A" "$settled" 15; then
      note "A settled other.example after $((SECONDS - t0)) s: $(log_since a "$MARK_A" | grep -m1 -E "$settled" | cut -d' ' -f4- | one_line 200)"
    else
      note "A logged nothing that settles other.example within 15 s"
    fi
  fi
  touch "$go"
  client_wait "$ppid" 30 >/dev/null
  res=$(cat "$resf")
  sed 's/^/#       /' <<<"$res"
  # A handled the message while the raw client read for 1 s more; give alice's
  # client a moment to print whatever A sent her.
  log_wait_since a "$MARK_A" 'mallory@other\.example' 3 >/dev/null
  client_wait_for "$out" 'piggyback as' 1 >/dev/null
  v6m__kill_pid "$pid"
  if grep -q '^features: .*<starttls' <<<"$res"; then
    v6m_not_ok "$lbl: A offered no STARTTLS to [$ip_c] (use_tls = false range)" "$(grep -m1 '^features' <<<"$res" | cut -c1-200)"
  else
    v6m_ok "$lbl: A offered no STARTTLS to [$ip_c] (use_tls = false range)"
  fi
  if [[ $mode == sasl ]]; then
    if grep -q '^sasl: <success' <<<"$res" && grep -qF "\"body\":\"control from $dom_c\"" "$out"; then
      v6m_ok "$lbl: control: $dom_c authenticated by SASL EXTERNAL without TLS, its chat reached alice"
    else
      v6m_not_ok "$lbl: control: $dom_c authenticated by SASL EXTERNAL without TLS, its chat reached alice" \
        "$(grep -E '^(sasl|closed)' <<<"$res" | head -n 2 | one_line) alice: $(grep -c '"event":"message"' "$out") messages"
    fi
  fi
  ans=$(grep -m1 '^dialback:' <<<"$res")
  if [[ -z $ans ]]; then
    v6m_not_ok "$lbl: the raw client got to send <db:result> for other.example" "$(one_line <<<"$res")"
  elif grep -qE "type=['\"]valid['\"]" <<<"$ans"; then
    v6m_not_ok "$lbl: A did not validate other.example (no <db:result type='valid'>)" "$ans"
  else
    v6m_ok "$lbl: A did not validate other.example (answer: ${ans#dialback: })"
  fi
  if grep -q 'piggyback as' "$out"; then
    v6m_not_ok "$lbl: nothing from other.example reached alice" "$(grep -m1 'piggyback as' "$out")"
  else
    v6m_ok "$lbl: nothing from other.example reached alice"
  fi
  lines=$(log_since a "$MARK_A")
  # The raw client's session on A: the one that received the <db:result>.
  sid=$(grep -m1 -E 'Received\[s2sin[a-z_]*\]: <(db:)?result[^>]*other\.example' <<<"$lines" | awk '{print $4}')
  authed=$(grep -E "^.{15} ${sid:-s2sin[0-9a-f]+}[[:space:]].*authenticated for other\\.example|Incoming s2s connection other\\.example->" <<<"$lines" | head -n 1)
  if [[ -n $authed ]]; then
    v6m_not_ok "$lbl: A never authenticated the raw client's stream (${sid:-?}) for other.example" "$(one_line <<<"$authed")"
  else
    v6m_ok "$lbl: A never authenticated the raw client's stream (${sid:-?}) for other.example"
  fi
  why=$(grep -E $'\t(info|warn|error)\t.*other\\.example' <<<"$lines" | grep -E $'\twarn\t' | head -n 1)
  [[ -n $why ]] || why=$(grep -E $'\t(info|warn|error)\t.*other\\.example' <<<"$lines" | head -n 1)
  if [[ -n $why ]]; then
    v6m_ok "$lbl: A's log says what became of other.example: $(cut -d' ' -f4- <<<"$why" | one_line 220)"
  else
    v6m_not_ok "$lbl: A's log says what became of other.example (an info/warn line naming it)" "only debug lines: $(grep -c 'other\.example' <<<"$lines")"
  fi
  note "A's debug lines about other.example (resolver lines left out):"
  grep 'other\.example' <<<"$lines" | grep -vE $'unbound\\.query|\t(info|warn|error)\t' | cut -d' ' -f4- | head -n 8 | cut -c1-200 | sed 's/^/#       /'
  note "resolver: $(grep -cE 'Resolve .*other\.example' <<<"$lines") lookups of other.example logged; DNS packets caused: $(dns_new) ($(dns_queries | tail -n "$(dns_new)" | grep -oE '(A|AAAA|SRV)\? [^ ]+' | sort | uniq -c | tr -s ' ' | tr '\n' ';'))"
}
piggy bare
piggy sasl

# 5c: the same with an other.example that really exists, so that only policy
# can stop the piggyback: server V (VERSION_B, with the module so that it
# reaches and trusts A by address) serves other.example at PREFIX2::1 (outside
# the range) with a certificate from a test CA that A trusts, and a
# dialback_secret the raw client knows (as other.example's operator would).
# A finds other.example through its hosts file (unbound hoststxt).
say "5c. the same with a real other.example"
ip_v=${V6M_PREFIX%:*}:6802::1
secret_v=v6m-reload-dialback-secret
ca=$V6M_TMP/ca
mkdir -p "$ca"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=v6m reload test CA" -keyout "$ca/ca.key" -out "$ca/ca.crt" >/dev/null 2>&1 || v6m_die "openssl CA"
prosody_create v "$vb" other.example "$ip_v" "dialback_secret = \"$secret_v\"
$unbound_cap"
dir_v=$(v6m__srv v)
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=other.example" \
  -keyout "$dir_v/certs/other.example.key" -out "$ca/v.csr" >/dev/null 2>&1 &&
  printf 'subjectAltName=DNS:other.example\n' >"$ca/v.ext" &&
  openssl x509 -req -in "$ca/v.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -days 2 \
    -extfile "$ca/v.ext" -out "$dir_v/certs/other.example.crt" >/dev/null 2>&1 || v6m_die "openssl for other.example"
chown prosody:prosody "$dir_v/certs/other.example".*
chmod 600 "$dir_v/certs/other.example.key"
chmod -R a+rX "$ca"
if ! prosody_install_rock v "$rock"; then
  v6m_not_ok "v: prosodyctl install $(basename "$rock")" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | one_line)"
  exit 1
fi
v6m_check "V (Prosody $vb, other.example at [$ip_v]) started" prosody_start v || exit 1
prosody_stop a
cfg_a=$dir_a/prosody.cfg.lua
sed -i -e "s|^ssl = { certificate = \(.*\) }\$|ssl = { certificate = \1 cafile = \"$ca/ca.crt\"; }|" \
  -e 's|^unbound = { options|unbound = { hoststxt = true; options|' "$cfg_a"
node_hosts_add a "$ip_v" other.example
grep -q "cafile = \"$ca/ca.crt\"" "$cfg_a" && grep -q 'hoststxt = true' "$cfg_a" || v6m_die "could not edit A's ssl/unbound lines"
v6m_check "A: restarted trusting the test CA and reading its hosts file" prosody_start a || exit 1

# The instrument: A really can federate with other.example (alice -> carol).
prosody_ctl v register carol other.example pw-carol >/dev/null || v6m_die "adduser carol"
carol=(--service "xmpp://[$ip_v]:5222" --domain other.example --user carol --pass pw-carol)
s2s_quiet
mark_dns
deliver "5c: instrument: alice@$dom_a -> carol@other.example delivered (A verifies V's certificate, V trusts A)" \
  a v "carol@other.example" "to the real other.example" carol alice 20
note "A's session to other.example: $(log_since a "$MARK_A" | grep -E 'Stream encrypted|other\.example.*(complete|certificate)' | head -n 2 | cut -d' ' -f4- | one_line 250)"
prosody_shell v s2s closeall >/dev/null 2>&1

piggy bare "$secret_v"
piggy sasl "$secret_v"

# Tracebacks, except in the log lines of the deliberately broken reloads.
tb=$(grep -n 'stack traceback' "$(prosody_log a)" | cut -d: -f1 | while read -r ln; do
  keep=1
  for w in "${BROKEN[@]}"; do
    read -r from to <<<"$w"
    ((ln > from && ln <= to)) && keep=0
  done
  ((keep)) && echo "$ln"
done | head -n 1)
if [[ -z $tb ]]; then
  v6m_ok "a: no Lua traceback in the log (besides the ${#BROKEN[@]} deliberately broken reloads)"
else
  v6m_not_ok "a: no Lua traceback in the log (besides the deliberately broken reloads)" "line $tb: $(sed -n "$((tb > 2 ? tb - 2 : 1)),${tb}p" "$(prosody_log a)" | one_line)"
fi
if prosody_log_grep b 'stack traceback'; then
  v6m_not_ok "b: no Lua traceback in the whole log" "$(grep -m1 -B2 'stack traceback' "$(prosody_log b)" | head -n1 | one_line)"
else
  v6m_ok "b: no Lua traceback in the whole log"
fi
note "suite time: ${SECONDS} s"
v6m_finish
