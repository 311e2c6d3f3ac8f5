#!/usr/bin/env bash
# Hosts activated after the module loaded (SPEC §3.2, "Late hosts").
#
#   sudo bash test/integration/suites/late-host.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# A (VERSION_A) starts with one VirtualHost; its node has two more addresses,
# and A listens on them. Then two VirtualHosts named by those addresses are
# added to A's configuration and activated at runtime (prosodyctl shell:
# config:reload(), host:activate(NAME)):
#   - LATE-BAD with s2s_v6mesh_trust_all_certs = false and an invalid CIDR in
#     s2s_v6mesh_ranges: A logs an error naming the host and the option; its
#     .v6.alt federation is closed: cara@LATE-BAD's chat to bob@B bounces with
#     service-unavailable and a text naming the host and the problem, and
#     bob's chat to cara is not delivered, while cara, online, receives a chat
#     from alice@A (local, the control). Its bad options neither fall back to
#     the global ones nor widen trust.
#   - LATE-GOOD with a good s2s_v6mesh_ranges ({ allow = false } for X): its
#     option is read (gina's chat to X bounces with policy-violation) and it
#     federates both ways with B (gina <-> bob, each proven online).
# B (VERSION_B) is named by its address. LATE-GOOD's connections to B leave
# from LATE-GOOD's own address (the module binds them; the kernel alone would
# pick another, which B would not accept for LATE-GOOD's name). 0 DNS packets.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "integration-late-host-$va-$vb"
SECONDS=0

# ------------------------------------------------------------------ setup

ip_a=${V6M_PREFIX}::a1
ip_g=${V6M_PREFIX}::a2 # LATE-GOOD
ip_d=${V6M_PREFIX}::a3 # LATE-BAD
ip_b=${V6M_PREFIX}::b1
ip_x=${V6M_PREFIX}::c1 # blocked by LATE-GOOD's option (nothing there)
dom_a=$(v6alt_name "$ip_a") && dom_g=$(v6alt_name "$ip_g") && dom_d=$(v6alt_name "$ip_d") &&
  dom_b=$(v6alt_name "$ip_b") && dom_x=$(v6alt_name "$ip_x") ||
  { v6m_not_ok "names from dist/ (v6alt_name)" "run npm run build"; exit 1; }
v6m_use_rock
bad_cidr="$ip_b/129"
note "A: Prosody $va [$ip_a] = $dom_a; late: [$ip_g] = $dom_g (good), [$ip_d] = $dom_d (bad)"
note "B: Prosody $vb [$ip_b] = $dom_b; X: $dom_x"

mesh_create
ifaces="\"$ip_a\", \"$ip_g\", \"$ip_d\", \"::1\""
prosody_create a "$va" "$dom_a" "$ip_a" "interfaces = { $ifaces }
local_interfaces = { $ifaces }"
prosody_create b "$vb" "$dom_b" "$ip_b"
node_addr_add a "$ip_g"
node_addr_add a "$ip_d"
adir=$(dirname "$(prosody_log a)")
for d in "$dom_g" "$dom_d"; do v6m__self_signed "$adir/certs" "$d"; done
chown -R prosody:prosody "$adir/certs"
chmod 600 "$adir"/certs/*.key

prosody_install_start a b
prosody_adduser a alice pw-alice >/dev/null || v6m_die "adduser alice"
prosody_adduser b bob pw-bob >/dev/null || v6m_die "adduser bob"

# ------------------------------------------------------------------ activation
say "two VirtualHosts added to A's configuration and activated at runtime"
lines_a=$(log_lines a)
cat >>"$adir/prosody.cfg.lua" <<EOF

-- added at runtime by late-host.sh
VirtualHost "$dom_d"
    ssl = { certificate = "$adir/certs/$dom_d.crt"; key = "$adir/certs/$dom_d.key"; }
    s2s_v6mesh_trust_all_certs = false
    s2s_v6mesh_ranges = { ["$bad_cidr"] = { trust_all_certs = true } } -- a typo: /129

VirtualHost "$dom_g"
    ssl = { certificate = "$adir/certs/$dom_g.crt"; key = "$adir/certs/$dom_g.key"; }
    s2s_v6mesh_ranges = { ["$ip_x/128"] = { allow = false } }
EOF
v6m_check "prosodyctl shell config:reload()" prosody_shell a "config:reload()" ||
  note "$V6M_OUT $V6M_ERR"
for d in "$dom_d" "$dom_g"; do
  prosody_shell a "host:activate(\"$d\")"
  rc=$?
  if ((rc == 0)) && prosody_shell a "host:list()" && grep -qF "$d" <<<"$V6M_OUT"; then
    v6m_ok "host:activate(\"$d\"): the host is active"
  else
    v6m_not_ok "host:activate(\"$d\"): the host is active" "exit $rc: $(tr '\n' ' ' <<<"$V6M_OUT $V6M_ERR" | cut -c1-300)"
  fi
done
prosody_ctl a register cara "$dom_d" pw-cara >/dev/null || v6m_die "register cara@$dom_d: $V6M_OUT $V6M_ERR"
prosody_ctl a register gina "$dom_g" pw-gina >/dev/null || v6m_die "register gina@$dom_g: $V6M_OUT $V6M_ERR"
sleep 0.5
err=$(log_since a "$lines_a" | grep -E $'\terror\t' | grep -F "$dom_d" | grep -F "s2s_v6mesh_ranges" | head -n 1 | cut -f2- | tr '\t' ' ')
if [[ -n $err ]]; then
  v6m_ok "A logs an error naming $dom_d and its bad option ($(cut -c1-240 <<<"$err"))"
else
  v6m_not_ok "A logs an error naming $dom_d and its bad option" \
    "$(log_since a "$lines_a" | grep -E $'\t(error|warn)\t' | cut -f2- | head -n 3 | tr '\n\t' '  ' | cut -c1-400)"
fi
if log_since a "$lines_a" | grep -E $'\terror\t' | grep -qF "$dom_g"; then
  v6m_not_ok "no error for $dom_g (good options)" "$(log_since a "$lines_a" | grep -E $'\terror\t' | grep -F "$dom_g" | head -n 1 | cut -f2-)"
else
  v6m_ok "no error for $dom_g (good options)"
fi

# late_args DOMAIN USER PASS: client arguments for a user of a late host (c2s on A's address).
late_args() { printf '%s\n' --service "xmpp://[$ip_a]:5222" --domain "$1" --user "$2" --pass "$3"; }
# deliver DESC RNODE RECV_ARGS(newline list) SNODE SEND_ARGS TO BODY: receiver online first, then the chat.
deliver() {
  local desc=$1 rnode=$2 rargs_text=$3 snode=$4 sargs_text=$5 to=$6 body=$7 out pid rc=0 why
  local -a rargs sargs
  mapfile -t rargs <<<"$rargs_text"
  mapfile -t sargs <<<"$sargs_text"
  out=$V6M_TMP/recv.$RANDOM.out
  client_start "$rnode" "$out" recv "${rargs[@]}" --count 1 --timeout 40
  pid=$V6M_CLIENT_PID
  if ! client_wait_for "$out" '"presence-sent"' 30; then
    v6m_not_ok "$desc" "receiver did not get online: $(cat "$out" "$out.err" | tr '\n' ' ' | cut -c1-300)"
    v6m__kill_pid "$pid"
    return 1
  fi
  client_run "$snode" send "${sargs[@]}" --to "$to" --body "$body" --timeout 30 --linger-ms 300
  why=$(grep -E '"(error-reply|connect-error|client-error|timeout)"' <<<"$V6M_OUT" | head -n 1)
  client_wait "$pid" 40 || rc=$?
  if ((rc == 0)) && grep -qF "\"body\":\"$body\"" "$out"; then
    v6m_ok "$desc"
  else
    v6m_not_ok "$desc" "receiver exit $rc; sender: ${why:-no error reply}"
  fi
}

# ------------------------------------------------------------------ good
say "LATE-GOOD ($dom_g): its options, federation both ways"
mapfile -t gargs < <(late_args "$dom_g" gina pw-gina)
client_run a send "${gargs[@]}" --to "nobody@$dom_x" --body "to X" --expect-error --timeout 15
line=$(grep -E '"event":"(error-reply|timeout|unexpected-reply|connect-error)"' <<<"$V6M_OUT" | tail -n 1)
if [[ $(json_get "$line" condition) == policy-violation ]]; then
  v6m_ok "its s2s_v6mesh_ranges is read: gina@$dom_g to $dom_x (allow = false there) bounces with policy-violation ($(json_get "$line" text))"
else
  v6m_not_ok "its s2s_v6mesh_ranges is read: gina@$dom_g to $dom_x bounces with policy-violation" "got: ${line:-nothing}"
fi
deliver "chat gina@$dom_g (late host) -> bob@$dom_b delivered" \
  b "$(client_args b bob pw-bob)" a "$(late_args "$dom_g" gina pw-gina)" "bob@$dom_b" "late good host to B"
deliver "chat bob@$dom_b -> gina@$dom_g (late host) delivered" \
  a "$(late_args "$dom_g" gina pw-gina)" b "$(client_args b bob pw-bob)" "gina@$dom_g" "B to the late good host"

# ------------------------------------------------------------------ bad
say "LATE-BAD ($dom_d): .v6.alt federation closed"
mapfile -t dargs < <(late_args "$dom_d" cara pw-cara)
client_run a send "${dargs[@]}" --to "bob@$dom_b" --body "late bad host to B" --expect-error --timeout 15
line=$(grep -E '"event":"(error-reply|timeout|unexpected-reply|connect-error)"' <<<"$V6M_OUT" | tail -n 1)
cond=$(json_get "$line" condition)
text=$(json_get "$line" text)
if [[ $cond == service-unavailable ]] && grep -qF "$dom_d" <<<"$text" && grep -qF "s2s_v6mesh_ranges" <<<"$text"; then
  v6m_ok "cara@$dom_d to bob@$dom_b bounces with service-unavailable in $(json_get "$line" elapsed_ms) ms, naming the host and the option ($text)"
else
  v6m_not_ok "cara@$dom_d to bob@$dom_b bounces with service-unavailable, naming the host and the option" "got: ${line:-nothing}"
fi
# B to cara, and alice (local, another host of A) to cara as the control.
out=$V6M_TMP/cara.out
# cara stays up until bob's chat had its time (his sender waits 8 s after B took it).
client_start a "$out" recv "${dargs[@]}" --count 2 --timeout 120
pid=$V6M_CLIENT_PID
if client_wait_for "$out" '"presence-sent"' 30; then
  mapfile -t bargs < <(client_args b bob pw-bob)
  mapfile -t aargs < <(client_args a alice pw-alice)
  client_run a send "${aargs[@]}" --to "cara@$dom_d" --body "alice to cara" --timeout 40
  alice_out="exit $?: $V6M_OUT $V6M_ERR"
  client_run b send "${bargs[@]}" --to "cara@$dom_d" --body "B to the late bad host" --timeout 40 --linger-ms 8000
  printf '%s\n' "$V6M_OUT" >"$V6M_TMP/bob-to-cara.out"
  sleep 1
  rc=0
  client_wait "$pid" 1 || rc=$? # 124: still waiting for a second chat, as it should
  if grep -qF '"body":"alice to cara"' "$out"; then
    v6m_ok "control: cara@$dom_d, online, receives alice@$dom_a's chat"
  else
    v6m_not_ok "control: cara@$dom_d, online, receives alice@$dom_a's chat" "cara: $(cut -c1-300 "$out" | tr '\n' ' '); alice: $(tr '\n' ' ' <<<"$alice_out" | cut -c1-300)"
  fi
  if grep -qF 'B to the late bad host' "$out"; then
    v6m_not_ok "bob@$dom_b to cara@$dom_d is not delivered" "cara received it"
  else
    sline=$(grep -E '"event":"(error-reply|failed|timeout)"' "$V6M_TMP/bob-to-cara.out" | head -n 1)
    v6m_ok "bob@$dom_b to cara@$dom_d is not delivered (cara exit $rc; bob got: ${sline:-no error reply})"
  fi
else
  v6m_not_ok "cara@$dom_d gets online" "$(cat "$out" "$out.err" | tr '\n' ' ' | cut -c1-300)"
  v6m__kill_pid "$pid"
fi
note "A logged for $dom_d: $(log_since a "$lines_a" | grep -E $'\t(info|warn|error)\t' | grep -F "$dom_d" | grep -vE 'c2s|Authenticated' | cut -f2- | tail -n 3 | tr '\n\t' '  ' | cut -c1-500)"

# ------------------------------------------------------------------ end
no_lua_errors b 0 "B: no Lua error or traceback"
if log_since a 0 | grep -q 'stack traceback'; then
  v6m_not_ok "A: no Lua traceback" "$(grep -m1 -B2 'stack traceback' "$(prosody_log a)" | head -n 1)"
else
  v6m_ok "A: no Lua traceback"
fi
check_dns_zero "the whole run"
note "suite time: ${SECONDS} s"
v6m_finish
