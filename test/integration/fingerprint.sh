#!/usr/bin/env bash
# Certificate pinning with the real mod_s2s_auth_fingerprint (prosody-modules,
# unchanged) beside mod_s2s_v6mesh with s2s_v6mesh_trust_all_certs = false.
#
#   sudo bash test/integration/fingerprint.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# The module is read from ../shared/third-party/ beside the repo
# (V6M_THIRD_PARTY overrides) and copied into the run's temp dir, which
# plugin_paths names (the checkout may be unreadable to user prosody).
# Two servers, A (VERSION_A) and B (VERSION_B), .v6.alt names, the harness's
# strict defaults (s2s_require_encryption, s2s_secure_auth, self-signed certs),
# "s2s_auth_fingerprint" in modules_enabled; the same two servers for every
# case, restarted with only s2s_trusted_fingerprints changed:
#
#   1. each pins the SHA1 fingerprint of the other's certificate: a chat each
#      way is delivered; each log shows mod_s2s_v6mesh leaving the certificate
#      to Prosody ("trust_all_certs is off") and never trusting the peer itself,
#      the fingerprint module matching the peer's exact fingerprint, the s2s
#      streams both ways completed TLS-encrypted, SASL EXTERNAL both ways, no
#      dialback, nothing forbidden.
#   2. each pins the fingerprint of another certificate (a fresh one for the
#      peer's very name): a chat each way is refused, the sender gets
#      remote-server-timeout "... Remote server's certificate is self-signed"
#      (13) / "... is not trusted" (0.12), the receiver (online) gets nothing;
#      the logs show "has unknown SHA1 fingerprint <the peer's real one>" and
#      Prosody's "Forbidding insecure connection".
#   3. control: the module still loaded, no pin: refused as in 2, the
#      fingerprint module says nothing, so the pin is what made 1 work.
#   and 0 DNS packets on the mesh for the whole run (then dns_canary proves
#   the trap records), no Lua traceback.
set -uo pipefail
# shellcheck source=test/integration/lib.sh
source "$(dirname "$0")/lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "integration-fingerprint-$va-$vb"
SECONDS=0

v6m_third_party_plugins mod_s2s_auth_fingerprint

ip_a=${V6M_PREFIX}::f:a
ip_b=${V6M_PREFIX}::f:b
dom_a=$(v6alt_name "$ip_a") && dom_b=$(v6alt_name "$ip_b") ||
  { v6m_not_ok "names from dist/ (v6alt_name)" "run npm run build"; exit 1; }
v6m_use_rock
note "A: Prosody $va at [$ip_a] = $dom_a;  B: Prosody $vb at [$ip_b] = $dom_b"

# ------------------------------------------------------------------ helpers

# pins_set SRV LUA_TABLE — the s2s_trusted_fingerprints line of SRV's config
# (a global option: the module is global).
pins_set() {
  local cfg
  cfg=$(v6m__srv "$1")/prosody.cfg.lua
  sed -i "s|^s2s_trusted_fingerprints = .*|s2s_trusted_fingerprints = $2|" "$cfg"
  grep -qxF "s2s_trusted_fingerprints = $2" "$cfg" || v6m_die "pins_set $1: config not changed"
}

# both_loaded SRV — the running server has both modules loaded.
both_loaded() { prosody_module_loaded "$1" s2s_v6mesh && prosody_module_loaded "$1" s2s_auth_fingerprint; }

# restart_both TAG — restarts A and B (new config, new s2s sessions); sets
# MARK_a / MARK_b, the log lines before the restart.
restart_both() {
  local n
  MARK_a=$(log_lines a) MARK_b=$(log_lines b)
  prosody_stop_many a b
  v6m_check "$1: A (Prosody $va) and B (Prosody $vb) restarted with the new pins" prosody_start_many a b || exit 1
  # (also lets a freshly started server settle: on a busy machine one has
  # taken over 2 s to open its first c2s stream, the client's limit)
  for n in a b; do
    v6m_check "$1: $n: s2s_v6mesh and s2s_auth_fingerprint are loaded" both_loaded "$n"
  done
}

# since SRV — SRV's log since its mark.
since() { local m="MARK_$1"; log_since "$1" "${!m}"; }

# has SRV DESC ERE / lacks SRV DESC ERE — about the log since the mark.
# (No grep -q after a pipe: with pipefail, its early exit fails the writer.)
has() {
  if since "$1" | grep -E -- "$3" >/dev/null; then v6m_ok "$1: log: $2"; else v6m_not_ok "$1: log: $2" "no line matches /$3/"; fi
}
lacks() {
  local hit
  hit=$(since "$1" | grep -E -m 2 -- "$3" | tr '\n\t' '  ')
  if [[ -z $hit ]]; then v6m_ok "$1: log: $2"; else v6m_not_ok "$1: log: $2" "$hit"; fi
}
# s2s session lines, e.g. "Nov 22 05:13:23 s2sout55ba63c88aa0	info	Stream encrypted (...)"
S2SIN=' s2sin[0-9a-f]+[[:space:]]+'
S2SOUT=' s2sout[0-9a-f]+[[:space:]]+'

# tls_complete SRV PEER in|out — the s2s session with PEER that completed
# (since the mark) is one that logged "Stream encrypted (TLS...".
tls_complete() {
  local srv=$1 peer=$2 dir=$3 self ids id ok="" word=incoming
  self=$(prosody_domain "$srv")
  if [[ $dir == in ]]; then
    ids=$(since "$srv" | grep -F "Incoming s2s connection $peer->$self complete" | awk '{print $4}')
  else
    word=outgoing
    ids=$(since "$srv" | grep -F "Outgoing s2s connection $self->$peer complete" | awk '{print $4}')
  fi
  for id in $ids; do
    ok=$(since "$srv" | grep -E "^.{15} $id"$'\tinfo\tStream encrypted \\(TLS' | head -n 1 | grep -oE 'TLS[^)]*')
    [[ -n $ok ]] && break
  done
  if [[ -n $ok ]]; then
    v6m_ok "$srv: the $word s2s stream with $peer completed encrypted ($ok)"
  else
    v6m_not_ok "$srv: the $word s2s stream with $peer completed encrypted" "completed sessions: ${ids:-none}"
  fi
}

# who SRV — "USER PASS PEER_USER PEER_DOMAIN" for alice on A, bob on B.
who() { if [[ $1 == a ]]; then echo "alice pw-alice bob $dom_b"; else echo "bob pw-bob alice $dom_a"; fi; }

# refused_both_ways TAG — alice (A) and bob (B) online first; then alice
# sends to bob and bob to alice at the same time. Each sender must get
# remote-server-timeout with Prosody's certificate reason (its own server's
# version decides the text); each receiver, still online when both error
# replies are in and for 2 s more, nothing. A client whose login fails
# (connect-error: @xmpp/client allows a stream 2 s to open, which a just
# restarted server on a busy machine can miss) is run once more.
refused_both_ways() {
  local tag=$1 srv user pass puser peer want cond text ms rc line try
  local -a args
  local -A rpid rout sout spid
  for srv in a b; do
    read -r user pass puser peer <<<"$(who "$srv")"
    rout[$srv]=$V6M_TMP/refused-$tag-recv-$srv.out
    mapfile -t args < <(client_args "$srv" "$user" "$pass")
    for try in 1 2; do
      client_start "$srv" "${rout[$srv]}" recv "${args[@]}" --count 1 --timeout 60
      rpid[$srv]=$V6M_CLIENT_PID
      client_wait_for "${rout[$srv]}" '"(presence-sent|connect-error)"' 30
      grep -q '"connect-error"' "${rout[$srv]}" || break
      ((try == 1)) && note "$tag: receiver $user on $srv: $(tr '\n' ' ' <"${rout[$srv]}"); once more"
      v6m__kill_pid "${rpid[$srv]}"
    done
    if ! grep -q '"presence-sent"' "${rout[$srv]}"; then
      v6m_not_ok "$tag: receiver $user on $srv online" "$(cat "${rout[$srv]}" "${rout[$srv]}.err" | tr '\n' ' ')"
      v6m__kill_pid "${rpid[a]:-0}"
      v6m__kill_pid "${rpid[b]:-0}"
      return 1
    fi
  done
  local todo="a b" again
  for try in 1 2; do
    for srv in $todo; do
      read -r user pass puser peer <<<"$(who "$srv")"
      sout[$srv]=$V6M_TMP/refused-$tag-send-$srv.out
      mapfile -t args < <(client_args "$srv" "$user" "$pass")
      client_start "$srv" "${sout[$srv]}" send "${args[@]}" --to "$puser@$peer" \
        --body "pinned-$tag-from-$srv" --expect-error --timeout 20
      spid[$srv]=$V6M_CLIENT_PID
    done
    again=""
    for srv in $todo; do
      rc=0
      client_wait "${spid[$srv]}" 90 || rc=$?
      echo "$rc" >"${sout[$srv]}.rc"
      if [[ $try == 1 ]] && grep -q '"connect-error"' "${sout[$srv]}"; then
        note "$tag: sender on $srv: $(tr '\n' ' ' <"${sout[$srv]}"); once more"
        again+=" $srv"
      fi
    done
    todo=$again
    [[ -n $todo ]] || break
  done
  for srv in a b; do
    read -r user pass puser peer <<<"$(who "$srv")"
    local desc="$tag: chat $user@$(prosody_domain "$srv") -> $puser@$peer refused"
    want="Server-to-server connection failed: Remote server's certificate is $(cert_reason "$(prosody_version "$srv")")"
    rc=$(cat "${sout[$srv]}.rc")
    line=$(grep -m1 '"error-reply"' "${sout[$srv]}")
    cond=$(json_get "$line" condition) text=$(json_get "$line" text) ms=$(json_get "$line" elapsed_ms)
    if ((rc == 0)) && [[ $cond == remote-server-timeout && $text == "$want" ]]; then
      v6m_ok "$desc: sender got remote-server-timeout '$text' after $ms ms"
    else
      v6m_not_ok "$desc: sender got remote-server-timeout '$want'" "exit $rc: $(tr '\n' ' ' <"${sout[$srv]}")"
    fi
  done
  sleep 2
  for srv in a b; do
    read -r user pass puser peer <<<"$(who "$srv")"
    if kill -0 "${rpid[$srv]}" 2>/dev/null && ! grep -qE '"event":"(message|timeout)"' "${rout[$srv]}"; then
      v6m_ok "$tag: $user on $srv, online throughout, received nothing (2 s after the error replies)"
    else
      v6m_not_ok "$tag: $user on $srv, online throughout, received nothing" "$(tr '\n' ' ' <"${rout[$srv]}")"
    fi
    v6m__kill_pid "${rpid[$srv]}"
  done
}

# ------------------------------------------------------------------ setup

mesh_create
for n in a b; do
  ip=$ip_a dom=$dom_a ver=$va
  [[ $n == b ]] && ip=$ip_b dom=$dom_b ver=$vb
  prosody_create --modules "s2s_auth_fingerprint" "$n" "$ver" "$dom" "$ip" "s2s_v6mesh_trust_all_certs = false
plugin_paths = { \"$V6M_PLUGINS\" }
s2s_trusted_fingerprints = { }"
done
fp_a=$(cert_fingerprint "$(v6m__srv a)/certs/$dom_a.crt")
fp_b=$(cert_fingerprint "$(v6m__srv b)/certs/$dom_b.crt")
# Other certificates for the same names (a new key each): pins that must not match.
for n in a b; do
  dom=$dom_a
  [[ $n == b ]] && dom=$dom_b
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=$dom" -addext "subjectAltName=DNS:$dom,DNS:*.$dom" \
    -keyout "$V6M_TMP/other-$n.key" -out "$V6M_TMP/other-$n.crt" >/dev/null 2>&1 || v6m_die "openssl (other cert)"
done
other_a=$(cert_fingerprint "$V6M_TMP/other-a.crt")
other_b=$(cert_fingerprint "$V6M_TMP/other-b.crt")
note "certificates: A $fp_a, B $fp_b; other certificates: A $other_a, B $other_b"
if [[ $fp_a =~ ^([0-9A-F]{2}:){19}[0-9A-F]{2}$ && $fp_b =~ ^([0-9A-F]{2}:){19}[0-9A-F]{2}$ &&
  $fp_a != "$other_a" && $fp_b != "$other_b" && $fp_a != "$fp_b" ]]; then
  v6m_ok "SHA1 fingerprints of A's and B's certificates, and of two other certificates for their names, all distinct"
else
  v6m_not_ok "SHA1 fingerprints computed and distinct" "A $fp_a B $fp_b, other A $other_a B $other_b"
fi

pins_set a "{ [\"$dom_b\"] = \"$fp_b\" }"
pins_set b "{ [\"$dom_a\"] = \"$fp_a\" }"
MARK_a=0 MARK_b=0
prosody_install_start a b
for n in a b; do
  v6m_check "$n: s2s_v6mesh and s2s_auth_fingerprint (plugin_paths: the copy in the temp dir) are loaded" both_loaded "$n"
done
prosody_adduser a alice pw-alice >/dev/null || v6m_die "adduser alice"
prosody_adduser b bob pw-bob >/dev/null || v6m_die "adduser bob"

# ------------------------------------------------------------------ 1
say "1. each pins the other's certificate: delivered both ways"
chat_check a alice pw-alice b bob pw-bob "pinned from A to B" 30
chat_check b bob pw-bob a alice pw-alice "pinned from B to A" 30
for pair in "a $dom_b $ip_b $fp_b" "b $dom_a $ip_a $fp_a"; do
  read -r n peer peerip fp <<<"$pair"
  has "$n" "s2sout: mod_s2s_v6mesh left $peer's certificate to Prosody" \
    "${S2SOUT}debug[[:space:]]+Leaving the certificate of $(ere "$peer") to Prosody: trust_all_certs is off for \[$(ere "$peerip")\]"
  has "$n" "s2sin: mod_s2s_v6mesh left $peer's certificate to Prosody" \
    "${S2SIN}debug[[:space:]]+Leaving the certificate of $(ere "$peer") to Prosody: trust_all_certs is off for \[$(ere "$peerip")\]"
  has "$n" "the pin matched: '$peer' matched SHA1 fingerprint $fp" \
    "info[[:space:]]+'$(ere "$peer")' matched SHA1 fingerprint $fp\$"
  lacks "$n" "mod_s2s_v6mesh never trusted $peer itself" "Trusting $(ere "$peer")"
  lacks "$n" "nothing forbidden" "Forbidding insecure connection"
  lacks "$n" "no unknown fingerprint" "has unknown SHA1 fingerprint"
  lacks "$n" "no dialback was needed" 'sent dialback key|Initiating dialback|if key .* belongs to them'
  has "$n" "accepted SASL EXTERNAL from $peer (incoming)" "Accepting SASL EXTERNAL identity from $(ere "$peer")\$"
  has "$n" "SASL EXTERNAL with $peer succeeded (outgoing)" "SASL EXTERNAL with $(ere "$peer") succeeded"
done
tls_complete a "$dom_b" out
tls_complete b "$dom_a" in
tls_complete b "$dom_a" out
tls_complete a "$dom_b" in
check_dns_zero "after case 1"

# ------------------------------------------------------------------ 2
say "2. each pins another certificate's fingerprint: refused both ways"
pins_set a "{ [\"$dom_b\"] = \"$other_b\" }"
pins_set b "{ [\"$dom_a\"] = \"$other_a\" }"
restart_both 2
refused_both_ways 2
for pair in "a $dom_b $fp_b" "b $dom_a $fp_a"; do
  read -r n peer fp <<<"$pair"
  reason=$(cert_reason "$(prosody_version "$n")")
  has "$n" "'$peer' has unknown SHA1 fingerprint $fp (its real one)" \
    "warn[[:space:]]+'$(ere "$peer")' has unknown SHA1 fingerprint $fp\$"
  has "$n" "Prosody forbade $peer: certificate is $reason" \
    "${S2SOUT}warn[[:space:]]+Forbidding insecure connection to/from $(ere "$peer") because its certificate is $(ere "$reason")\$"
  lacks "$n" "no pin matched" "matched SHA1 fingerprint"
  lacks "$n" "mod_s2s_v6mesh never trusted $peer itself" "Trusting $(ere "$peer")"
done
check_dns_zero "after case 2"

# ------------------------------------------------------------------ 3
say "3. control: the fingerprint module loaded, no pin: refused both ways"
pins_set a "{ }"
pins_set b "{ }"
restart_both 3
refused_both_ways 3
for pair in "a $dom_b $ip_b" "b $dom_a $ip_a"; do
  read -r n peer peerip <<<"$pair"
  reason=$(cert_reason "$(prosody_version "$n")")
  has "$n" "s2sout: mod_s2s_v6mesh left $peer's certificate to Prosody" \
    "${S2SOUT}debug[[:space:]]+Leaving the certificate of $(ere "$peer") to Prosody: trust_all_certs is off for \[$(ere "$peerip")\]"
  has "$n" "Prosody forbade $peer: certificate is $reason" \
    "${S2SOUT}warn[[:space:]]+Forbidding insecure connection to/from $(ere "$peer") because its certificate is $(ere "$reason")\$"
  lacks "$n" "the fingerprint module said nothing (no pin for $peer)" "(matched|has unknown) SHA1 fingerprint"
  lacks "$n" "mod_s2s_v6mesh never trusted $peer itself" "Trusting $(ere "$peer")"
done

# ------------------------------------------------------------------ the whole run
check_dns_zero "whole run"
dns_canary a
logs_lack "no Lua traceback in the whole log" 'stack traceback' a b
note "suite time: ${SECONDS} s"
v6m_finish
