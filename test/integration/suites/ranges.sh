#!/usr/bin/env bash
# s2s_v6mesh_ranges and s2s_v6mesh_trust_all_certs in real servers (SPEC §3).
#
#   sudo bash test/integration/suites/ranges.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# One mesh, one pair of servers per configuration (A on VERSION_A, B on
# VERSION_B), every address in $V6M_PREFIX::/64, every name a .v6.alt name,
# s2s_require_encryption = true and s2s_secure_auth = true, self-signed certs:
#
#   5   both: ranges { PREFIX::/64 = { use_tls = false } }
#       chats both ways; no "Stream encrypted" on any s2s session, the module
#       logs "Federating with <peer> without TLS" for s2sin and s2sout on both
#       sides; SASL EXTERNAL by address; the bodies are in cleartext on the wire
#       (tcpdump on the hub's bridge, port 5269) and no <starttls/> is seen.
#   6a  both: s2s_v6mesh_trust_all_certs = false, no range
#       a chat each way is refused by Prosody's own certificate check: the
#       sender gets remote-server-timeout "Server-to-server connection failed:
#       Remote server's certificate is self-signed" (13) / "... is not
#       trusted" (0.12), the receiver gets nothing; logs say why.
#   6b  both: trust_all_certs = false, ranges { PREFIX::/64 = { trust_all_certs = true } }
#       chats both ways over TLS with SASL EXTERNAL, trust credited to the
#       range; the bodies are NOT in cleartext on the wire (<starttls/> is).
#   6c  both: trust_all_certs = true, ranges { PREFIX::/64 = { trust_all_certs = false } }
#       refused as in 6a.
#   6d  `v6alt range IP|NAME` prints the exact decision for each configuration
#       (peer, own address, loopback, link-local, outside the range), and a bad
#       s2s_v6mesh_ranges value keeps the module from loading with an error
#       line naming the option while the server still starts.
#   and 0 DNS packets on the mesh for the whole run.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "ranges-$va-$vb"

v6m_use_rock

# RFC 5952 text of an address or network, by Python (independent of dist/).
py_net() { python3 -c 'import ipaddress, sys; print(ipaddress.ip_network(sys.argv[1], strict=False))' "$1"; }
py_ip() { python3 -c 'import ipaddress, sys; print(ipaddress.ip_address(sys.argv[1]))' "$1"; }

range_cfg="$V6M_PREFIX::/64"
range_txt=$(py_net "$range_cfg") || v6m_die "bad V6M_PREFIX $V6M_PREFIX"

mesh_create

# pair_up TAG CONFIG: servers a$TAG (VERSION_A) and b$TAG (VERSION_B) at
# PREFIX::TAG:a and PREFIX::TAG:b, the rock installed with their own
# prosodyctl, started, module loaded, users alice (a) and bob (b).
pair_up() {
  local tag=$1 cfg=$2 side n ok=0
  for side in a b; do
    n=$side$tag
    local ver=$va
    [[ $side == b ]] && ver=$vb
    local ip
    ip=$(py_ip "$V6M_PREFIX::$tag:$side")
    prosody_create "$n" "$ver" "$(v6alt_name "$ip")" "$ip" "$cfg"
    if ! prosody_install_rock "$n" "$rock"; then
      v6m_not_ok "$n: prosodyctl install $(basename "$rock")" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
      ok=1
      continue
    fi
    if ! prosody_start "$n"; then
      v6m_not_ok "$n: starts (Prosody $ver)" "see log tail above"
      ok=1
      continue
    fi
    if prosody_module_loaded "$n" s2s_v6mesh; then
      v6m_ok "$tag: $n (Prosody $ver, $(prosody_domain "$n") at [$ip]) runs with s2s_v6mesh loaded"
    else
      v6m_not_ok "$tag: $n runs with s2s_v6mesh loaded" "$(grep -E -m 2 'Unable to load|Error initializing' "$(prosody_log "$n")" | tr '\n' ' ')"
      ok=1
    fi
  done
  prosody_adduser "a$tag" alice pw-alice || ok=1
  prosody_adduser "b$tag" bob pw-bob || ok=1
  return "$ok"
}

# Packet capture of s2s traffic on the hub's bridge.
capture_start() { # FILE FILTER
  local err=$1.err i
  ip netns exec "$V6M_HUB_NS" tcpdump -i br0 -n -U --immediate-mode -Z root -s 0 -w "$1" "$2" 2>"$err" &
  V6M_CAPTURE_PID=$!
  v6m__track_pid "$V6M_CAPTURE_PID"
  for ((i = 0; i < 100; i++)); do
    grep -q 'listening on' "$err" 2>/dev/null && return 0
    sleep 0.1
  done
  v6m_die "tcpdump on the hub did not start: $(cat "$err")"
}
capture_stop() { sleep 0.5; v6m__kill_pid "$V6M_CAPTURE_PID"; }
# capture_text FILE: payloads as text (one line per packet, non-printables as '.').
capture_text() { tcpdump -r "$1" -n -A -s 0 2>/dev/null; }
capture_packets() { tcpdump -r "$1" -n 2>/dev/null | wc -l; }

# Exactly this stdout, exit 0.
shell_ok() { # NAME EXPECTED ARGS...
  local name=$1 expected=$2 rc=0
  shift 2
  prosody_shell "$name" "$@" || rc=$?
  if ((rc == 0)) && [[ $V6M_OUT == "$expected" ]]; then
    v6m_ok "$name: shell $* -> $expected"
  else
    v6m_not_ok "$name: shell $* -> $expected" "exit $rc, stdout '$V6M_OUT', stderr '$V6M_ERR'"
  fi
}

# log_has NAME DESC ERE / log_lacks NAME DESC ERE
log_has() {
  if prosody_log_grep "$1" "$3"; then v6m_ok "$1: log: $2"; else v6m_not_ok "$1: log: $2" "no line matches /$3/"; fi
}
log_lacks() {
  if prosody_log_grep "$1" "$3"; then
    v6m_not_ok "$1: log: $2" "$(grep -E -m 2 -- "$3" "$(prosody_log "$1")" | tr '\n' ' ')"
  else
    v6m_ok "$1: log: $2"
  fi
}
# s2s session lines, e.g. "Nov 22 05:13:23 s2sout55ba63c88aa0	info	Stream encrypted (...)"
S2SIN=' s2sin[0-9a-f]+[[:space:]]+'
S2SOUT=' s2sout[0-9a-f]+[[:space:]]+'

# chat_refused FROM FUSER FPASS TO TUSER TPASS BODY: the receiver (online
# first) gets nothing, the sender gets this error reply at once.
chat_refused() {
  local from=$1 fuser=$2 fpass=$3 to=$4 tuser=$5 tpass=$6 body=$7 out pid rc=0 reply
  local desc="chat $fuser@$(prosody_domain "$from") -> $tuser@$(prosody_domain "$to") refused"
  local -a rargs sargs
  local want_text="Server-to-server connection failed: Remote server's certificate is $(cert_reason "$(prosody_version "$from")")"
  out=$V6M_TMP/refused-$to.$RANDOM.out
  mapfile -t rargs < <(client_args "$to" "$tuser" "$tpass")
  mapfile -t sargs < <(client_args "$from" "$fuser" "$fpass")
  client_start "$(v6m__srv_get "$to" node)" "$out" recv "${rargs[@]}" --count 1 --timeout 10
  pid=$V6M_CLIENT_PID
  if ! client_wait_for "$out" '"presence-sent"' 15; then
    v6m_not_ok "$desc" "receiver did not get online: $(cat "$out" "$out.err" | tr '\n' ' ')"
    v6m__kill_pid "$pid"
    return 1
  fi
  client_run "$(v6m__srv_get "$from" node)" send "${sargs[@]}" --to "$tuser@$(prosody_domain "$to")" \
    --body "$body" --expect-error --timeout 20 || rc=$?
  reply=$(grep '"error-reply"' <<<"$V6M_OUT" | head -n 1)
  local cond text
  cond=$(node -e 'const o=JSON.parse(process.argv[1]||"{}");console.log(o.condition??"")' "$reply" 2>/dev/null)
  text=$(node -e 'const o=JSON.parse(process.argv[1]||"{}");console.log(o.text??"")' "$reply" 2>/dev/null)
  if ((rc == 0)) && [[ $cond == remote-server-timeout && $text == "$want_text" ]]; then
    v6m_ok "$desc: sender got remote-server-timeout '$text'"
  else
    v6m_not_ok "$desc: sender got remote-server-timeout '$want_text'" "exit $rc: $(tr '\n' ' ' <<<"$V6M_OUT")"
  fi
  rc=0
  client_wait "$pid" 20 || rc=$?
  if ((rc == 2)) && ! grep -qF "$body" "$out"; then
    v6m_ok "$desc: receiver got nothing in 10 s"
  else
    v6m_not_ok "$desc: receiver got nothing in 10 s" "receiver exit $rc: $(tr '\n' ' ' <"$out")"
  fi
}

# ======================================================================
# 5: a range with use_tls = false
tag=5
if pair_up $tag "s2s_v6mesh_ranges = { [\"$range_cfg\"] = { use_tls = false } }"; then
  A=a$tag B=b$tag
  da=$(prosody_domain $A) db=$(prosody_domain $B) ipa=$(prosody_ip $A) ipb=$(prosody_ip $B)
  pcap=$V6M_TMP/range5.pcap
  capture_start "$pcap" "tcp port 5269 and host $ipa and host $ipb"
  chat_check $A alice pw-alice $B bob pw-bob "plaintext-range-body-a-to-b" 30
  chat_check $B bob pw-bob $A alice pw-alice "plaintext-range-body-b-to-a" 30
  capture_stop
  wire=$(capture_text "$pcap")
  for body in plaintext-range-body-a-to-b plaintext-range-body-b-to-a; do
    if grep -qF ">$body</body>" <<<"$wire"; then
      v6m_ok "5: wire: '<body>$body</body>' crossed port 5269 in cleartext"
    else
      v6m_not_ok "5: wire: '<body>$body</body>' crossed port 5269 in cleartext" "$(capture_packets "$pcap") packets captured, body not found"
    fi
  done
  if grep -qE '<starttls|<proceed' <<<"$wire"; then
    v6m_not_ok "5: wire: no STARTTLS on the s2s streams" "$(grep -oE '<(starttls|proceed)[^>]*>' <<<"$wire" | head -n 2 | tr '\n' ' ')"
  else
    v6m_ok "5: wire: no STARTTLS on the s2s streams"
  fi
  for pair in "$A $db" "$B $da"; do
    read -r n peer <<<"$pair"
    log_lacks "$n" "no s2s session says 'Stream encrypted'" "(${S2SIN}|${S2SOUT})info[[:space:]]+Stream encrypted"
    log_has "$n" "s2sout: Federating with $peer without TLS" "${S2SOUT}info[[:space:]]+Federating with $(ere "$peer") without TLS: range $(ere "$range_txt") has use_tls = false"
    log_has "$n" "s2sin: Federating with $peer without TLS" "${S2SIN}info[[:space:]]+Federating with $(ere "$peer") without TLS: range $(ere "$range_txt") has use_tls = false"
    log_has "$n" "accepted SASL EXTERNAL from $peer (trust by address)" "Accepting SASL EXTERNAL identity from $(ere "$peer")"
  done
  # 6d for this configuration
  shell_ok $A "OK: [$ipb] range $range_txt: use_tls = false, trust_all_certs = true" v6alt range "$ipb"
  shell_ok $A "OK: [$ipb] range $range_txt: use_tls = false, trust_all_certs = true" v6alt range "$db"
  shell_ok $B "OK: [$ipa] range $range_txt: use_tls = false, trust_all_certs = true" v6alt range "$da"
  shell_ok $A "OK: [$ipa] range $range_txt: use_tls = false, trust_all_certs = true; refused: the address of this server's own host $da" v6alt range "$ipa"
  shell_ok $A "OK: [::1] no configured range (defaults): use_tls = true, trust_all_certs = true; refused: the loopback address (::1/128)" 'v6alt:range("::1")'
  prosody_stop $A
  prosody_stop $B
fi

# ======================================================================
# 6a: no trust, no range: Prosody's own verification refuses self-signed certs
tag=6a
if pair_up $tag "s2s_v6mesh_trust_all_certs = false"; then
  A=a$tag B=b$tag
  da=$(prosody_domain $A) db=$(prosody_domain $B) ipa=$(prosody_ip $A) ipb=$(prosody_ip $B)
  chat_refused $A alice pw-alice $B bob pw-bob "untrusted-6a-a-to-b"
  chat_refused $B bob pw-bob $A alice pw-alice "untrusted-6a-b-to-a"
  for pair in "$A $db $ipb" "$B $da $ipa"; do
    read -r n peer peerip <<<"$pair"
    log_has "$n" "left $peer's certificate to Prosody" "Leaving the certificate of $(ere "$peer") to Prosody: trust_all_certs is off for \[$(ere "$peerip")\]"
    log_has "$n" "Prosody forbade $peer: certificate $(cert_reason "$(prosody_version "$n")")" \
      "${S2SOUT}warn[[:space:]]+Forbidding insecure connection to/from $(ere "$peer") because its certificate is $(cert_reason "$(prosody_version "$n")")"
    log_lacks "$n" "never trusted $peer" "Trusting $(ere "$peer")"
  done
  shell_ok $A "OK: [$ipb] no configured range (defaults): use_tls = true, trust_all_certs = false" v6alt range "$ipb"
  shell_ok $B "OK: [$ipa] no configured range (defaults): use_tls = true, trust_all_certs = false" v6alt range "$da"
  shell_ok $A "OK: [$ipa] no configured range (defaults): use_tls = true, trust_all_certs = false; refused: the address of this server's own host $da" v6alt range "$da"
  prosody_stop $A
  prosody_stop $B
fi

# ======================================================================
# 6b: no global trust, but the range grants it: TLS + SASL EXTERNAL
tag=6b
if pair_up $tag "s2s_v6mesh_trust_all_certs = false
s2s_v6mesh_ranges = { [\"$range_cfg\"] = { trust_all_certs = true } }"; then
  A=a$tag B=b$tag
  da=$(prosody_domain $A) db=$(prosody_domain $B) ipa=$(prosody_ip $A) ipb=$(prosody_ip $B)
  pcap=$V6M_TMP/range6b.pcap
  capture_start "$pcap" "tcp port 5269 and host $ipa and host $ipb"
  chat_check $A alice pw-alice $B bob pw-bob "range-trust-body-a-to-b" 30
  chat_check $B bob pw-bob $A alice pw-alice "range-trust-body-b-to-a" 30
  capture_stop
  wire=$(capture_text "$pcap")
  if grep -q '<starttls' <<<"$wire"; then
    v6m_ok "6b: wire: STARTTLS seen in the capture (the capture sees the s2s streams)"
  else
    v6m_not_ok "6b: wire: STARTTLS seen in the capture" "$(capture_packets "$pcap") packets captured"
  fi
  for body in range-trust-body-a-to-b range-trust-body-b-to-a; do
    if grep -qF "$body" <<<"$wire"; then
      v6m_not_ok "6b: wire: '$body' not in cleartext" "found in the capture"
    else
      v6m_ok "6b: wire: '$body' not in cleartext"
    fi
  done
  for pair in "$A $db $ipb $da" "$B $da $ipa $db"; do
    read -r n peer peerip self <<<"$pair"
    log_has "$n" "s2sout to $peer: Stream encrypted" "${S2SOUT}info[[:space:]]+Stream encrypted"
    log_has "$n" "s2sin from $peer: Stream encrypted" "${S2SIN}info[[:space:]]+Stream encrypted"
    log_has "$n" "s2sout: trusted $peer by range $range_txt" \
      "${S2SOUT}info[[:space:]]+Trusting $(ere "$peer"): it is at \[$(ere "$peerip")\], the address its name encodes \(range $(ere "$range_txt")\)"
    log_has "$n" "s2sin: trusted $peer by range $range_txt" \
      "${S2SIN}info[[:space:]]+Trusting $(ere "$peer"): it is at \[$(ere "$peerip")\], the address its name encodes \(range $(ere "$range_txt")\)"
    log_has "$n" "SASL EXTERNAL with $peer succeeded (outgoing)" "SASL EXTERNAL with $(ere "$peer") succeeded"
    log_has "$n" "accepted SASL EXTERNAL from $peer (incoming)" "Accepting SASL EXTERNAL identity from $(ere "$peer")"
    log_lacks "$n" "nothing forbidden" "Forbidding insecure connection"
    log_lacks "$n" "no plaintext federation" "without TLS"
  done
  shell_ok $A "OK: [$ipb] range $range_txt: use_tls = true, trust_all_certs = true" v6alt range "$ipb"
  shell_ok $B "OK: [$ipa] range $range_txt: use_tls = true, trust_all_certs = true" v6alt range "$da"
  shell_ok $A "OK: [200::1] no configured range (defaults): use_tls = true, trust_all_certs = false" v6alt range 200::1
  prosody_stop $A
  prosody_stop $B
fi

# ======================================================================
# 6c: global trust, but the range withdraws it: refused as in 6a
tag=6c
if pair_up $tag "s2s_v6mesh_trust_all_certs = true
s2s_v6mesh_ranges = { [\"$range_cfg\"] = { trust_all_certs = false } }"; then
  A=a$tag B=b$tag
  da=$(prosody_domain $A) db=$(prosody_domain $B) ipa=$(prosody_ip $A) ipb=$(prosody_ip $B)
  chat_refused $A alice pw-alice $B bob pw-bob "untrusted-6c-a-to-b"
  chat_refused $B bob pw-bob $A alice pw-alice "untrusted-6c-b-to-a"
  for pair in "$A $db $ipb" "$B $da $ipa"; do
    read -r n peer peerip <<<"$pair"
    log_has "$n" "left $peer's certificate to Prosody" "Leaving the certificate of $(ere "$peer") to Prosody: trust_all_certs is off for \[$(ere "$peerip")\]"
    log_has "$n" "Prosody forbade $peer: certificate $(cert_reason "$(prosody_version "$n")")" \
      "${S2SOUT}warn[[:space:]]+Forbidding insecure connection to/from $(ere "$peer") because its certificate is $(cert_reason "$(prosody_version "$n")")"
    log_lacks "$n" "never trusted $peer" "Trusting $(ere "$peer")"
  done
  shell_ok $A "OK: [$ipb] range $range_txt: use_tls = true, trust_all_certs = false" v6alt range "$ipb"
  shell_ok $B "OK: [$ipa] range $range_txt: use_tls = true, trust_all_certs = false" v6alt range "$da"
  shell_ok $A "OK: [200::1] no configured range (defaults): use_tls = true, trust_all_certs = true" v6alt range 200::1
  shell_ok $A "OK: [fe80::1] no configured range (defaults): use_tls = true, trust_all_certs = true; refused: a link-local address (fe80::/10)" v6alt range fe80::1
  prosody_stop $A
  prosody_stop $B
fi

# ======================================================================
# 6d: bad values close .v6.alt federation (the module stays loaded, closed):
# the server still starts, the error names the option, every chat to a
# .v6.alt name bounces naming it, and nothing goes to DNS.
bad_case() { # NAME VERSION TAG CONFIG EXPECTED_ERROR
  local n=$1 ver=$2 tag=$3 cfg=$4 want=$5 ip rc=0 reply
  local -a sargs
  ip=$(py_ip "$V6M_PREFIX::$tag:1")
  prosody_create "$n" "$ver" "$(v6alt_name "$ip")" "$ip" "$cfg"
  if ! prosody_install_rock "$n" "$rock"; then
    v6m_not_ok "$n: prosodyctl install" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
    return 1
  fi
  v6m_check "$n: Prosody $ver starts despite $cfg" prosody_start "$n" || return 1
  # (Port 5269 may listen before the module has loaded: wait for its line.)
  local line="mod_s2s_v6mesh[[:space:]]+error[[:space:]]+Invalid configuration: $(ere "$want"); \.v6\.alt federation is closed until this is fixed and the module reloaded\$"
  prosody_log_wait "$n" "$line" 10
  log_has "$n" "error line naming the option: $want" "$line"
  v6m_check "$n: s2s_v6mesh stays loaded (closed)" prosody_module_loaded "$n" s2s_v6mesh
  prosody_shell "$n" v6alt get_domain "$ip" || rc=$?
  if ((rc != 0)) && [[ $V6M_OUT != *OK:* ]]; then
    v6m_ok "$n: no v6alt shell commands while closed (exit $rc: $(tr '\n' ' ' <<<"$V6M_ERR$V6M_OUT"))"
  else
    v6m_not_ok "$n: no v6alt shell commands while closed" "exit $rc: $V6M_OUT"
  fi
  prosody_adduser "$n" alice pw-alice >/dev/null || v6m_die "adduser alice on $n"
  mapfile -t sargs < <(client_args "$n" alice pw-alice)
  client_run "$n" send "${sargs[@]}" --to "bob@$(v6alt_name "$(py_ip "$V6M_PREFIX::$tag:2")")" --body "closed" --expect-error --timeout 10 || true
  reply=$(grep -m1 '"error-reply"' <<<"$V6M_OUT")
  if grep -q '"condition":"service-unavailable"' <<<"$reply" && grep -qF "$(sed 's/"/\\"/g' <<<"$want")" <<<"$reply"; then
    v6m_ok "$n: a chat to a .v6.alt name bounces service-unavailable, naming the option"
  else
    v6m_not_ok "$n: a chat to a .v6.alt name bounces service-unavailable, naming the option" "${reply:-$V6M_OUT}"
  fi
  prosody_stop "$n"
}
bad_case bad1 "$va" d1 's2s_v6mesh_ranges = { ["200::/129"] = {} }' \
  "s2s_v6mesh_ranges[\"200::/129\"]: range '200::/129' has a prefix length over 128"
bad_case bad2 "$vb" d2 's2s_v6mesh_ranges = { ["fd00::/8"] = { use_tls = "no" } }' \
  "s2s_v6mesh_ranges[\"fd00::/8\"].use_tls must be true or false, not \"no\""

# ======================================================================
n=$(dns_count)
if ((n == 0)); then
  v6m_ok "0 DNS packets on the mesh"
else
  v6m_not_ok "0 DNS packets on the mesh" "$n counted: $(dns_queries | grep -oE '(A|AAAA|SRV)\? [^ ]+' | sort -u | head -n 5 | tr '\n' ' ')"
fi
for dir in "$V6M_TMP"/srv/*/; do
  n=$(basename "$dir")
  log_lacks "$n" "no Lua error other than the refused config" "stack traceback|attempt to (index|call)"
done
v6m_finish
