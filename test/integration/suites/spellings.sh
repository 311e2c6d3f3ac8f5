#!/usr/bin/env bash
# Spellings that the layers below Prosody turn into .v6.alt names (SPEC §3.2, issue 14).
#
#   sudo bash test/integration/suites/spellings.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# A (VERSION_A, with a MUC component groups.<A>) and B (VERSION_B) are named
# by the .v6.alt names of their addresses. A's own system resolver is a
# v6alt-dnsd behind dnsmasq inside A's node (lib.sh resolver_start, on a
# second, deprecated address of that node): the worst case, it answers every
# .v6.alt name, so a name that reached Prosody's DNS layer would be looked up
# and connected to. X is an address that A blocks with s2s_v6mesh_ranges
# { allow = false } (a node, no server); P is a raw s2s client (raws2s.py).
#
# Destinations: B (canonical, allowed), A's own name, a-e.v6.alt (::1), X
# (blocked) and a non-canonical alias of X (misplaced hyphen). For each, 48
# spellings: each of the two dots of LABEL.v6.alt as U+002E, U+3002, U+FF0E
# or U+FF61, with zero, one or two trailing dots (of the second dot's kind),
# letters in mixed case. Each spelling is sent three ways:
#   1. a chat from alice@A (one client session, client.mjs spray): the
#      refused destinations bounce at once with policy-violation (A, ::1, X)
#      or remote-server-not-found (the alias), with a text that names the
#      reason; a spelling of A's name that Prosody's own JID preparation turns
#      into A's name exactly (case, one trailing ASCII dot, U+FF0E) is a local
#      JID and comes back to alice. B's spellings are routed by address (not
#      asserted further); the control: the canonical chat to B is delivered
#      to bob, online, before and after.
#   2. a mediated MUC invite from a room on groups.<A> to each spelled JID:
#      A logs "Not sending message from <room> to <name>" for each refused one.
#   3. on unauthenticated s2s streams from P to A (to A's host or its
#      component, alternately): a db:result claiming the spelling (the stream
#      must be closed with not-authorized) and a db:verify naming it (answered
#      or closed; nothing routed). Every probe must connect, run every step
#      (its plan line) and exit 0.
# Over the whole run: 0 DNS packets in a capture inside A's namespace that
# covers the resolver's ports (53 and 5390; a dig canary proves it records)
# and on the mesh's hub, and no TCP SYN to port 5269 from A except to B's
# address (the control chat proves that capture records).
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "integration-spellings-$va-$vb"
SECONDS=0

# ------------------------------------------------------------------ setup

ip_a=${V6M_PREFIX}::a1
ip_r=${V6M_PREFIX}::a53 # the resolver, in A's node
ip_b=${V6M_PREFIX}::b1
ip_x=${V6M_PREFIX}::c1 # blocked by A
ip_p=${V6M_PREFIX}::e1 # the raw peer P
dom_a=$(v6alt_name "$ip_a") && dom_b=$(v6alt_name "$ip_b") && dom_x=$(v6alt_name "$ip_x") &&
  dom_loop=$(v6alt_name ::1) ||
  { v6m_not_ok "names from dist/ (v6alt_name)" "run npm run build"; exit 1; }
v6m_use_rock
svc_a=groups.$dom_a
label_x=${dom_x%.v6.alt}
[[ $label_x == *-* ]] || v6m_die "X's label $label_x has no hyphen; pick another address"
alias_x=${label_x/-/a-}.v6.alt # decodes (laxly) to X's address; not canonical
note "A: Prosody $va [$ip_a] = $dom_a + $svc_a; its resolver at [$ip_r]:53 -> :5390"
note "B: Prosody $vb [$ip_b] = $dom_b; X (blocked, no server): [$ip_x] = $dom_x; P (raw): [$ip_p]"

# KEY|CANONICAL NAME|EXPECTED|REASON (ERE for the error text)|WHAT
dests=(
  "b|$dom_b|route|-|B, canonical and allowed"
  "own|$dom_a|policy-violation|own host|A's own name"
  "loop|$dom_loop|policy-violation|loopback|::1"
  "blocked|$dom_x|policy-violation|allow = false|X, blocked by allow = false"
  "alias|$alias_x|remote-server-not-found|not a valid|a non-canonical alias of X"
)

# All spellings: KEY<TAB>INDEX<TAB>SPELLING<TAB>LOCAL (1: Prosody's own JID
# preparation makes it A's host name exactly, so it never leaves A).
spell=$V6M_TMP/spellings.tsv
python3 - "$dom_a" "${dests[@]}" >"$spell" <<'EOF' || v6m_die "spellings"
import sys
dom_a = sys.argv[1]
DOTS = [".", "\u3002", "\uff0e", "\uff61"]
def prosody_host(s):
    # util.jid.prepped_split: one trailing ASCII dot off, then nameprep
    # (lowercase; NFKC maps U+FF0E to "." and U+FF61 to U+3002).
    if s.endswith("."):
        s = s[:-1]
    return s.lower().replace("\uff0e", ".").replace("\uff61", "\u3002")
for entry in sys.argv[2:]:
    key, name = entry.split("|")[:2]
    label = name[: -len(".v6.alt")]
    i = 0
    for d1 in DOTS:
        for d2 in DOTS:
            for trail in range(3):
                s = label + d1 + "v6" + d2 + "alt" + d2 * trail
                s = "".join(c.upper() if c.isascii() and c.isalpha() and (p + i) % 3 == 0 else c
                            for p, c in enumerate(s))
                print("%s\t%d\t%s\t%d" % (key, i, s, prosody_host(s) == dom_a))
                i += 1
EOF
nspell=$(grep -c . "$spell")
note "$nspell spellings, e.g. $(awk -F'\t' '$2 == 5 || $2 == 46 {printf "%s  ", $3}' "$spell" | cut -c1-200)"

# norm: the normalized form of each name on stdin (the reference for which
# destination a logged name is): U+3002/U+FF0E/U+FF61 -> ".", trailing dots
# off, lowercase.
norm() {
  python3 -c 'import sys
for line in sys.stdin:
    s = line.rstrip("\n")
    for d in "\u3002\uff0e\uff61":
        s = s.replace(d, ".")
    print(s.rstrip(".").lower())'
}

mesh_create
prosody_create --tail "Component \"$svc_a\" \"muc\"" a "$va" "$dom_a" "$ip_a" \
  "s2s_v6mesh_ranges = { [\"$ip_x/128\"] = { allow = false } }"
prosody_create b "$vb" "$dom_b" "$ip_b"
node_addr_add a "$ip_r"
# Deprecated: the kernel never picks it as the source of A's connections.
node_exec a ip -6 addr change "$ip_r/128" dev eth0 nodad preferred_lft 0 || v6m_die "cannot deprecate $ip_r"
node_add x "$ip_x"
node_add p "$ip_p"
resolver_start a "$ip_r"
node_use_dns a "$ip_r"
node_dns_start a
syn_count_start a

say "instruments: the DNS capture in A's namespace, the resolver"
out=$(node_exec a dig +time=2 +tries=1 +short AAAA "canary.$dom_b" 2>&1)
v6m_check_eq "A's system resolver answers .v6.alt names (dig AAAA canary.$dom_b via /etc/resolv.conf)" "$ip_b" "$out"
dns_canary=$(node_dns_count a)
if ((dns_canary >= 2)) && node_dns_queries a | grep -qF "canary.$dom_b"; then
  v6m_ok "instrument: the capture in A's namespace recorded the canary ($dns_canary packets on ports 53/5390)"
else
  v6m_not_ok "instrument: the capture in A's namespace recorded the canary" "$dns_canary packets: $(node_dns_queries a | head -n 3 | tr '\n' ' ')"
fi

prosody_install_start a b
prosody_adduser a alice pw-alice >/dev/null || v6m_die "adduser alice"
prosody_adduser b bob pw-bob >/dev/null || v6m_die "adduser bob"
lines_a=$(log_lines a)

say "control: the canonical spelling"
chat_check a alice pw-alice b bob pw-bob "control: canonical chat to B" 20
if syn_list a | grep -q -F "$ip_a $ip_b "; then
  v6m_ok "instrument: the SYN capture in A's namespace saw A connect to B"
else
  v6m_not_ok "instrument: the SYN capture in A's namespace saw A connect to B" "$(syn_list a | tr '\n' ';')"
fi

# ------------------------------------------------------------------ 1
say "1. chats from alice@$dom_a to $nspell spellings"
list=$V6M_TMP/spray.list
while IFS=$'\t' read -r key i s loc; do
  user=nobody mark=wait
  [[ $key == own ]] && user=alice
  [[ $key == b ]] && mark=nowait
  printf 'c-%s-%s %s@%s %s\n' "$key" "$i" "$user" "$s" "$mark"
done <"$spell" >"$list"
out1=$V6M_TMP/spray.out
mapfile -t aargs < <(client_args a alice pw-alice)
t0=$SECONDS
client_run a spray "${aargs[@]}" --to-file "$list" --settle 2 --timeout 25
rc=$?
done_line=$(grep '"event":"done"' <<<"$V6M_OUT" | tail -n 1)
printf '%s\n' "$V6M_OUT" >"$out1"
note "spray: exit $rc in $((SECONDS - t0)) s: $(cut -c1-200 <<<"${done_line:-no done line; $V6M_ERR}")"
# One verdict per chat: ID<TAB>what came back (message | condition<TAB>text).
python3 - "$out1" >"$V6M_TMP/spray.verdicts" <<'EOF'
import json, sys
seen = {}
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    i = d.get("id")
    if not i or not i.startswith("c-") or i in seen:
        continue
    if d.get("event") == "message":
        seen[i] = "message\t"
    elif d.get("event") == "error-reply":
        seen[i] = "%s\t%s" % (d.get("condition"), (d.get("text") or "").replace("\t", " ").replace("\n", " "))
for i, v in seen.items():
    print("%s\t%s" % (i, v))
EOF
verdict() { awk -F'\t' -v id="$1" '$1 == id {print $2 "\t" $3; exit}' "$V6M_TMP/spray.verdicts"; }
for entry in "${dests[@]}"; do
  IFS='|' read -r key name expect reason what <<<"$entry"
  [[ $expect == route ]] && continue
  good=0 total=0 local_n=0 bad=() sample=""
  while IFS=$'\t' read -r k i s loc; do
    [[ $k == "$key" ]] || continue
    total=$((total + 1))
    IFS=$'\t' read -r cond text <<<"$(verdict "c-$key-$i")"
    if ((loc)); then
      local_n=$((local_n + 1))
      if [[ $cond == message ]]; then good=$((good + 1)); else bad+=("$s (local JID): ${cond:-no answer}"); fi
    elif [[ $cond == "$expect" ]] && grep -Eq -- "$reason" <<<"$text"; then
      good=$((good + 1))
      [[ -n $sample ]] || sample="$s: $text"
    else
      bad+=("$s: ${cond:-no answer}${text:+ ($text)}")
    fi
  done <"$spell"
  desc="chats to $total spellings of $name ($what): $expect with a reason ('$reason')"
  ((local_n)) && desc+=", or back to alice for the $local_n that Prosody itself makes $dom_a"
  if ((good == total)); then
    v6m_ok "$desc: $good/$total${sample:+ (e.g. $(cut -c1-160 <<<"$sample"))}"
  else
    v6m_not_ok "$desc" "$good/$total; $(printf '%s; ' "${bad[@]:0:4}" | cut -c1-400)"
  fi
done
note "B's spellings: $(awk -F'\t' '$1 ~ /^c-b-/ {print $2}' "$V6M_TMP/spray.verdicts" | sort | uniq -c | tr '\n' ' ')($(grep -c '^c-b-' "$V6M_TMP/spray.verdicts") answered of 48; not asserted)"

# ------------------------------------------------------------------ 2
say "2. MUC invites from a room on $svc_a to $nspell spellings"
lines_a2=$(log_lines a)
room=probe@$svc_a
jids=$(awk -F'\t' '{printf "%snobody@%s", (NR > 1 ? "," : ""), $3}' "$spell")
out2=$V6M_TMP/muc.out
mapfile -t margs < <(client_args a alice pw-alice)
client_start a "$out2" muc "${margs[@]}" --room "$room/alice" --stay 40 --invite "$jids"
pid_m=$V6M_CLIENT_PID
if client_wait_for "$out2" '"event":"joined"' 15; then
  client_wait_for "$out2" "\"event\":\"invited\",\"to\":\"nobody@$(tail -n 1 "$spell" | cut -f3)\"" 20 ||
    v6m_not_ok "alice sends $nspell invites from $room" "$(grep -c '"invited"' "$out2") sent"
else
  v6m_not_ok "alice joins $room" "$(cat "$out2" "$out2.err" | tr '\n' ' ' | cut -c1-300)"
fi
# Expected refusals: every spelling of a refused destination that is not a local JID.
want=$(awk -F'\t' '$1 != "b" && !($1 == "own" && $4 == 1)' "$spell" | grep -c .)
refusals() { log_since a "$lines_a2" | grep -F "Not sending message from $room to " | sed -E "s/.*Not sending message from [^ ]+ to ([^:]+): .*/\\1/"; }
for ((k = 0; k < 50; k++)); do
  (($(refusals | grep -c .) >= want)) && break
  sleep 0.2
done
sleep 1
refusals | norm | sort | uniq -c >"$V6M_TMP/muc.refusals"
v6m__kill_pid "$pid_m"
for entry in "${dests[@]}"; do
  IFS='|' read -r key name expect reason what <<<"$entry"
  [[ $expect == route ]] && continue
  n_want=$(awk -F'\t' -v k="$key" '$1 == k && $4 == 0' "$spell" | grep -c .)
  n=$(awk -v n="$name" '$2 == n {print $1}' "$V6M_TMP/muc.refusals")
  why=$(log_since a "$lines_a2" | grep -F "Not sending message from $room to " | grep -E -- "$reason" | head -n 1 | sed 's/.*: //')
  if [[ ${n:-0} == "$n_want" && -n $why ]]; then
    v6m_ok "the room's invites to $n_want spellings of $name ($what) are refused ($(cut -c1-120 <<<"$why"))"
  else
    v6m_not_ok "the room's invites to $n_want spellings of $name ($what) are refused" \
      "${n:-0} 'Not sending message from $room' lines for it${why:+ ($why)}; A logged: $(log_since a "$lines_a2" | grep -vE 'c2s|muc' | grep -iE 'v6|alt' | cut -f2- | tail -n 2 | tr '\n\t' '  ' | cut -c1-300)"
  fi
done

# ------------------------------------------------------------------ 3
say "3. dialback claims of $nspell spellings on unauthenticated streams from [$ip_p]"
key=0123456789abcdef0123456789abcdef
declare -A ppid=()
probe_ids=()
while IFS=$'\t' read -r k i s loc; do
  to=$dom_a
  ((i % 2)) && to=$svc_a
  probe_ids+=("r-$k-$i" "v-$k-$i")
  echo "$to" >"$V6M_TMP/probe-r-$k-$i.to"
  # -: no 'from' in the header, so the name first appears in the dialback element.
  set -- header - "$to" features features \
    send "<db:result from='$s' to='$to'>$key</db:result>" closed dialback 6
  printf '%s\0' "$@" >"$V6M_TMP/probe-r-$k-$i.args"
  set -- header - "$to" features features \
    send "<db:verify from='$s' to='$to' id='v$i'>$key</db:verify>" \
    wait verify '<db:verify[^>]*?(/>|>.*?</db:verify>)|</stream:stream>' 6
  printf '%s\0' "$@" >"$V6M_TMP/probe-v-$k-$i.args"
done <"$spell"
wave=120 # (a verify probe that gets no answer waits its 6 s: few waves, few waits)
t0=$SECONDS
for ((w = 0; w < ${#probe_ids[@]}; w += wave)); do
  for id in "${probe_ids[@]:w:wave}"; do
    mapfile -d '' -t pargs <"$V6M_TMP/probe-$id.args"
    node_exec p python3 "$V6M_LIB_DIR/raws2s.py" "$ip_p" "$ip_a" "${pargs[@]}" >"$V6M_TMP/probe-$id.out" 2>&1 &
    ppid[$id]=$!
    v6m__track_pid "${ppid[$id]}"
  done
  for id in "${probe_ids[@]:w:wave}"; do
    rc=0
    client_wait "${ppid[$id]}" 20 || rc=$?
    echo "$rc" >"$V6M_TMP/probe-$id.rc"
  done
done
note "${#probe_ids[@]} probes in $((SECONDS - t0)) s, $wave at a time"
# One pass over every probe's files (a few processes, not thousands): per
# probe ID, whether it ran (connected, reported every step it planned, exited
# 0, no traceback), whether its stream was closed with not-authorized after
# the dialback element, how a db:verify was answered, and what to show.
awk -v OFS='\t' '
  { id = FILENAME; sub(/.*\/probe-/, "", id); kind = id; sub(/\.[a-z]+$/, "", id); sub(/.*\./, "", kind); seen[id] = 1 }
  kind == "rc" { rc[id] = $0; next }
  /^connected: / { conn[id] = 1 }
  /^plan: [0-9]+ results$/ { plan[id] = $2 }
  /^(features|dialback|verify): / { got[id]++ }
  /Traceback/ { tb[id] = 1 }
  /^dialback: closed: .*not-authorized/ { na[id] = 1 }
  /^dialback: / && !(id in dshow) { dshow[id] = substr($0, 1, 160) }
  /^verify: / && !(id in how) && match($0, /type=.(valid|invalid).|not-authorized|<\/stream:stream>|no match/) { how[id] = substr($0, RSTART, RLENGTH) }
  !/^(connected|plan):/ { last[id] = prev[id] " " $0; prev[id] = $0 }
  END {
    for (id in seen) {
      ran = (rc[id] == "0" && conn[id] && plan[id] != "" && got[id] >= plan[id] && !tb[id])
      show = ran ? dshow[id] : "probe exit " rc[id] ":" substr(last[id], 1, 200)
      print id, ran, na[id] + 0, how[id], show
    }
  }' "$V6M_TMP"/probe-*.rc "$V6M_TMP"/probe-*.out >"$V6M_TMP/probes.summary"
declare -A p_ran=() p_na=() p_how=() p_show=()
while IFS=$'\t' read -r id ran na how show; do
  p_ran[$id]=$ran p_na[$id]=$na p_how[$id]=$how p_show[$id]=$show
done <"$V6M_TMP/probes.summary"
for entry in "${dests[@]}"; do
  IFS='|' read -r key name expect reason what <<<"$entry"
  ran=0 closed=0 vran=0 bad=() vbad=() vhow=()
  while IFS=$'\t' read -r k i s loc; do
    [[ $k == "$key" ]] || continue
    id=r-$key-$i
    if [[ ${p_ran[$id]:-0} == 1 ]]; then
      ran=$((ran + 1))
      if [[ ${p_na[$id]} == 1 ]]; then closed=$((closed + 1)); else bad+=("$s: ${p_show[$id]}"); fi
    else
      bad+=("$s: ${p_show[$id]:-no output}")
    fi
    id=v-$key-$i
    if [[ ${p_ran[$id]:-0} == 1 ]]; then
      vran=$((vran + 1))
      vhow+=("${p_how[$id]}")
    else
      vbad+=("$s: ${p_show[$id]:-no output}")
    fi
  done <"$spell"
  if ((closed == 48)); then
    v6m_ok "db:result claiming 48 spellings of $name ($what) from [$ip_p]: every stream closed with not-authorized"
  else
    v6m_not_ok "db:result claiming 48 spellings of $name ($what) from [$ip_p]: every stream closed with not-authorized" \
      "$closed/48 (probes that ran: $ran); $(printf '%s; ' "${bad[@]:0:3}" | cut -c1-500)"
  fi
  if ((vran == 48)); then
    v6m_ok "db:verify naming 48 spellings of $name from [$ip_p]: every probe ran ($(printf '%s\n' "${vhow[@]}" | sort | uniq -c | tr '\n' ' ' | tr -s ' '))"
  else
    v6m_not_ok "db:verify naming 48 spellings of $name from [$ip_p]: every probe ran" "$vran/48; $(printf '%s; ' "${vbad[@]:0:3}" | cut -c1-500)"
  fi
done

# A db:verify that A routed for a claim would carry the probes' key to B.
n=$(grep -cF "$key" "$(prosody_log b)")
v6m_check_eq "nothing of the claims is routed: B's log has no dialback element with the probes' key" 0 "$n"

# ------------------------------------------------------------------ end
say "end: control again, connections, DNS"
chat_check a alice pw-alice b bob pw-bob "control: canonical chat to B after all spellings" 20
# A's connection attempts: SYNs whose source is not B or P (incoming) and
# whose destination is not B.
mapfile -t out_syns < <(syn_list a | awk -v b="$ip_b" -v p="$ip_p" '$1 != b && $1 != p && $2 != b')
if ((${#out_syns[@]} == 0)); then
  v6m_ok "no connection attempt from A's namespace except to B ($(syn_count a "^$(ere "$ip_a") $(ere "$ip_b") ") SYNs to B; 0 elsewhere)"
else
  v6m_not_ok "no connection attempt from A's namespace except to B" \
    "${#out_syns[@]} SYNs (src dst sport): $(printf '%s; ' "${out_syns[@]:0:6}") $(printf '%s\n' "${out_syns[@]}" | awk '{print $2}' | sort | uniq -c | tr '\n' ' ')"
fi
dns_end=$(node_dns_count a)
if ((dns_end == dns_canary)); then
  v6m_ok "0 DNS packets in A's namespace (ports 53, 853, 5353, 5390) besides the canary's $dns_canary"
else
  v6m_not_ok "0 DNS packets in A's namespace (ports 53, 853, 5353, 5390) besides the canary's $dns_canary" \
    "$((dns_end - dns_canary)) more: $(node_dns_queries a | grep -oE '(A|AAAA|SRV)\? [^ ]+' | grep -vF canary | sort | uniq -c | sort -rn | head -n 8 | tr '\n' ' ')"
fi
check_dns_zero "the mesh's hub (B, P, X)"
no_lua_errors a "$lines_a" "A: no Lua error or traceback"
no_lua_errors b 0 "B: no Lua error or traceback"
note "A logged $(log_since a "$lines_a" | grep -c $'\tResolve ') 'Resolve' lines; suite time: ${SECONDS} s"
v6m_finish
