#!/usr/bin/env bash
# Faults (issue 11): what happens to a user's chats when the receiving server
# dies, restarts or loses its link mid-burst — each chat counted as delivered
# (the receiving client got it; a duplicate counts once and is reported),
# bounced (an error stanza came back to the sender for its id) or lost
# (neither, after a settle time).
#
#   sudo bash bench/faults.sh --short          # npm test: Prosody 13, the module: cases 1 and 3, and case 1 with
#                                              # s2s stream management; 300 chats each
#   sudo bash bench/faults.sh                  # npm run soak: 13 and 0.12, every case, 5,000 chats
#   sudo bash bench/faults.sh --versions 0.12 --pairs "classic v6alt" --cases "1 2"
#   (the classic pair first: the module's 0.12 figures are checked against it)
#
# Pairs (each a sender server A and a receiving server B, each in its own
# namespace on the harness's mesh, test/integration/lib.sh):
#   v6alt          A and B named by the .v6.alt names of their addresses, the module loaded
#   classic        A and B named faults.example names that dnsmasq on the hub serves
#                  (SRV + AAAA), the module NOT loaded: Prosody's own federation,
#                  with certificates from a CA made for the run (ssl.cafile), so
#                  both pairs authenticate by SASL EXTERNAL over TLS. (With
#                  self-signed certificates and s2s_insecure_domains a classic
#                  pair falls back to dialback, and Prosody never offers XEP-0198
#                  on a dialback stream: mod_smacks offers <sm/> only in the
#                  features after authentication, which dialback never restarts.)
#   v6alt-smacks, classic-smacks   the same with mod_smacks loaded and
#                  smacks_enabled_s2s = true (XEP-0198 on s2s); only case 1.
#                  mod_smacks ships with both 13 and 0.12; the harness's
#                  modules_enabled leaves it out, Debian's default config has it.
# Cases (alice@A sends --count chats to bob@B at --rate per second, ids
# "<tag>-<i>", bodies "<tag> <i>"; bob's client on B prints what it gets;
# both clients run without XEP-0198 on their own streams, client.mjs --no-sm):
#   1  B's Prosody gets SIGKILL a third of the way through, is started again 5 s
#      later, and bob's client logs in again (both clients are counted)
#   2  B's eth0 is down for 30 s in the middle of the burst (addresses kept),
#      then up again
#   3  B restarts gracefully (SIGTERM, start) in the middle; bob logs in again
# Between cases a warm-up chat A -> B (a check) brings the s2s stream up.
#
# Checks: every chat was sent; with the module, 0 duplicated in every case;
# with the module and s2s stream management (v6alt-smacks) 0 lost on 13, and on
# 0.12 no more lost than the classic pair in the same case; with the module
# and without stream management, every lost chat had been written by A to an
# s2s stream that the fault cut ("Sending[s2sout]" in A's log) — Prosody's own
# behaviour without XEP-0198, which the classic pair shares — and none
# vanished inside A (a stanza dropped without a bounce), and on 0.12 no more
# lost than the classic pair. For v6alt-smacks: XEP-0198 was enabled on A's s2s
# stream to B (the module does not defeat it). A lost chat is described from
# both servers' debug logs (every line naming its id).
# The table (delivered / bounced / lost / duplicated per case, pair and
# version) is printed at the end; one JSON line per case (with the ids of
# lost chats) goes to bench-results/faults-short.jsonl or
# faults-<versions>.jsonl.
#
# Knobs: FAULTS_COUNT (5000; --short 300), FAULTS_RATE (125/s; --short 25/s,
# so that its 12 s burst still runs when B is back after case 1's 5 s),
# FAULTS_SETTLE (20 s; --short 4 s): how long the sender waits after its last
# chat for late error replies (then the receivers get up to 60 s more, until
# nothing has arrived for 2 s).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../test/integration/lib.sh
source "$here/../test/integration/lib.sh"

short=0
versions=""
pairs=""
cases=""
while (($#)); do
  case $1 in
    --short) short=1; shift ;;
    --versions) versions=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    *) echo "usage: faults.sh [--short] [--versions \"13 0.12\"] [--pairs \"v6alt classic v6alt-smacks classic-smacks\"] [--cases \"1 2 3\"]" >&2; exit 1 ;;
  esac
done
if ((short)); then
  versions=${versions:-13}
  pairs=${pairs:-v6alt v6alt-smacks}
  cases=${cases:-1 3}
  count=${FAULTS_COUNT:-300}
  rate=${FAULTS_RATE:-25}
  settle=${FAULTS_SETTLE:-4}
  v6m_setup "bench-faults-short"
else
  versions=${versions:-13 0.12}
  pairs=${pairs:-classic v6alt classic-smacks v6alt-smacks}
  cases=${cases:-1 2 3}
  count=${FAULTS_COUNT:-5000}
  rate=${FAULTS_RATE:-125}
  settle=${FAULTS_SETTLE:-20}
  v6m_setup "bench-faults-$(tr ' .' '-_' <<<"$versions")"
fi
started=$SECONDS
results=$V6M_TMP/faults.jsonl
: >"$results"
out_dir=$V6M_REPO/bench-results
mkdir -p "$out_dir"

needs_module=0
needs_dns=0
for p in $pairs; do
  case $p in
    v6alt | v6alt-smacks) needs_module=1 ;;
    classic | classic-smacks) needs_dns=1 ;;
    *) v6m_die "unknown pair '$p'" ;;
  esac
done
rock=
((needs_module)) && v6m_use_rock
mesh_create

# ---------------------------------------------------------------- names
ver_tag() { case $1 in 13) echo 13 ;; 0.12) echo 12 ;; *) v6m_die "version $1: only 13 and 0.12" ;; esac; }
pair_no() { case $1 in v6alt) echo 1 ;; classic) echo 2 ;; v6alt-smacks) echo 3 ;; classic-smacks) echo 4 ;; esac; }
pair_tag() { echo "$(cut -c1 <<<"$1")$([[ $1 == *smacks ]] && echo s)$(ver_tag "$2")"; } # PAIR VERSION -> v13, cs12, ...
srv_ip() { echo "$V6M_PREFIX::f$(ver_tag "$2"):$(pair_no "$1"):$3"; } # PAIR VERSION a|b
srv_domain() { # PAIR VERSION a|b
  case $1 in
    v6alt*) v6alt_name "$(srv_ip "$@")" ;;
    *) echo "$(pair_tag "$1" "$2")$3.faults.example" ;;
  esac
}

# ---------------------------------------------------------------- DNS for the classic pairs
if ((needs_dns)); then
  # A CA for the classic names, so Prosody verifies their certificates itself
  # (as scripts/bench.sh does for its classic pairs).
  v6m_make_ca faults
  command -v dnsmasq >/dev/null || v6m_die "missing tool: dnsmasq (run scripts/install-deps.sh)"
  dns_args=()
  for v in $versions; do
    for p in $pairs; do
      [[ $p == classic* ]] || continue
      for s in a b; do
        d=$(srv_domain "$p" "$v" "$s")
        dns_args+=("--srv-host=_xmpp-server._tcp.$d,$d,5269,0,0" "--host-record=$d,$(srv_ip "$p" "$v" "$s")")
      done
    done
  done
  # As in test/integration/suites/classic-dns.sh: dnsmasq in the hub, on the
  # address every node's resolv.conf names, authoritative for example.
  ip netns exec "$V6M_HUB_NS" dnsmasq --keep-in-foreground --conf-file=/dev/null \
    --no-resolv --no-hosts --no-poll --bind-interfaces --listen-address="$V6M_HUB_IP" \
    --port=53 --user=root --group=root --pid-file="$V6M_TMP/dnsmasq.pid" \
    --local=/example/ "${dns_args[@]}" --log-facility="$V6M_TMP/dnsmasq.log" 2>"$V6M_TMP/dnsmasq.err" &
  dnsmasq_pid=$!
  v6m__track_pid "$dnsmasq_pid"
  for ((i = 0; i < 50; i++)); do
    ip netns exec "$V6M_HUB_NS" ss -Hlun "sport = :53" 2>/dev/null | grep -qF "$V6M_HUB_IP" && break
    sleep 0.1
  done
  kill -0 "$dnsmasq_pid" 2>/dev/null || v6m_die "dnsmasq did not start: $(cat "$V6M_TMP/dnsmasq.err")"
fi

# ---------------------------------------------------------------- helpers
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
sleep_until() { # EPOCH_MS
  local d
  d=$(($1 - $(now_ms)))
  ((d > 0)) && sleep "$((d / 1000)).$(printf '%03d' $((d % 1000)))"
  return 0
}
lines_of() { cat "$@" 2>/dev/null | wc -l; }

# recv_start SRV_B FILE — bob's client on B, online; sets recv_pids+=(pid)
recv_start() {
  local b=$1 file=$2
  local -a rargs
  mapfile -t rargs < <(client_args "$b" bob pw-bob)
  client_start "$(v6m__srv_get "$b" node)" "$file" recv "${rargs[@]}" \
    --count 1000000000 --timeout $((count / rate + settle + 600)) --no-sm
  recv_pids+=("$V6M_CLIENT_PID")
  recv_files+=("$file")
  client_wait_for "$file" '"presence-sent"' 20 ||
    note "bob's client on $b did not get online: $(cat "$file" "$file.err" | tr '\n' ' ' | cut -c1-300)"
}

# fault_log VERB — a timestamped line for the case's log
fault_log() { echo "$(($(now_ms) - t0)) ms: $*" >>"$case_dir/faults.log"; note "$(($(now_ms) - t0)) ms: $*"; }

# run_case PAIR VERSION CASE
run_case() {
  local p=$1 v=$2 c=$3 a b tag burst_pid rc=0 i n last quiet dur
  a=$(pair_tag "$p" "$v")a
  b=$(pair_tag "$p" "$v")b
  tag=$(pair_tag "$p" "$v")c$c
  case_dir=$V6M_TMP/case-$tag
  mkdir -p "$case_dir"
  recv_pids=()
  recv_files=()
  say "case $c on $p, Prosody $v: $count chats at $rate/s ($tag)"
  chat_check "$a" alice pw-alice "$b" bob pw-bob "warm-up before case $c ($p $v)" 30
  local a_log0 b_log0
  a_log0=$(log_lines "$a")
  b_log0=$(log_lines "$b")
  recv_start "$b" "$case_dir/recv1.out"
  local -a sargs
  mapfile -t sargs < <(client_args "$a" alice pw-alice)
  dur=$((count * 1000 / rate))
  client_start "$(v6m__srv_get "$a" node)" "$case_dir/burst.out" burst "${sargs[@]}" \
    --to "bob@$(prosody_domain "$b")" --count "$count" --rate "$rate" --tag "$tag" \
    --settle "$settle" --timeout $((dur / 1000 + settle + 300)) --no-sm
  burst_pid=$V6M_CLIENT_PID
  if ! client_wait_for "$case_dir/burst.out" '"event":"start"' 20; then
    v6m_not_ok "case $c ($p $v): sender online" "$(cat "$case_dir/burst.out" "$case_dir/burst.out.err" | tr '\n' ' ' | cut -c1-300)"
    v6m__kill_pid "$burst_pid"
    for i in "${recv_pids[@]}"; do v6m__kill_pid "$i"; done
    return 1
  fi
  t0=$(json_get "$(grep -m1 '"event":"start"' "$case_dir/burst.out")" t0)
  : >"$case_dir/faults.log"
  case $c in
    1)
      sleep_until $((t0 + dur / 3))
      fault_log "SIGKILL to B ($(grep -c '"sent"' "$case_dir/burst.out") chats sent)"
      prosody_kill "$b" KILL
      sleep_until $((t0 + dur / 3 + 5000))
      fault_log "starting B"
      prosody_start "$b" || v6m_not_ok "case $c ($p $v): B starts again"
      fault_log "B started; bob logs in again"
      recv_start "$b" "$case_dir/recv2.out"
      fault_log "bob online again"
      ;;
    2)
      sleep_until $((t0 + dur / 2 - 15000))
      fault_log "B's eth0 down ($(grep -c '"sent"' "$case_dir/burst.out") chats sent)"
      node_link_down "$b"
      sleep_until $((t0 + dur / 2 + 15000))
      node_link_up "$b"
      fault_log "B's eth0 up ($(grep -c '"sent"' "$case_dir/burst.out") chats sent)"
      ;;
    3)
      sleep_until $((t0 + dur / 2))
      fault_log "SIGTERM to B ($(grep -c '"sent"' "$case_dir/burst.out") chats sent)"
      prosody_kill "$b" TERM
      fault_log "B stopped; starting B"
      prosody_start "$b" || v6m_not_ok "case $c ($p $v): B starts again"
      fault_log "B started; bob logs in again"
      recv_start "$b" "$case_dir/recv2.out"
      fault_log "bob online again"
      ;;
  esac
  client_wait "$burst_pid" $((dur / 1000 + settle + 300)) || rc=$?
  ((rc == 0)) || note "sender exit $rc: $(tail -n 2 "$case_dir/burst.out.err" "$case_dir/burst.out" | tr '\n' ' ' | cut -c1-300)"
  fault_log "sender done"
  # The receivers: until nothing has arrived for 2 s (at most 60 s).
  last=$(lines_of "${recv_files[@]}")
  quiet=0
  for ((i = 0; i < 600 && quiet < 20; i++)); do
    sleep 0.1
    n=$(lines_of "${recv_files[@]}")
    if ((n == last)); then quiet=$((quiet + 1)); else quiet=0; last=$n; fi
  done
  for i in "${recv_pids[@]}"; do v6m__kill_pid "$i"; done
  log_since "$a" "$a_log0" >"$case_dir/a.log"
  # B's log since the case began (a restart appends to the same file).
  log_since "$b" "$b_log0" >"$case_dir/b.log"
  smacks_state "$a" "$case_dir/a.log" >"$case_dir/smacks"
  python3 - "$case_dir" "$p" "$v" "$c" "$count" "$rate" "$(cat "$case_dir/smacks")" "$((SECONDS))" \
    "${recv_files[@]}" >>"$results" <<'PY'
import json, sys, collections, re
d, pair, version, case, count, rate, smacks, _t = sys.argv[1:9]
recv_files = sys.argv[9:]
sent, errors, times = [], {}, {}
for line in open(f"{d}/burst.out"):
    try: e = json.loads(line)
    except Exception: continue
    if e.get("event") == "sent": sent.append(e["id"]); times[e["id"]] = e.get("ms")
    elif e.get("event") == "error-reply" and e.get("id"):
        errors.setdefault(e["id"], []).append(e.get("condition"))
tag = sent[0].rsplit("-", 1)[0] if sent else ""
got = collections.Counter()
per_client = []
for f in recv_files:
    k = 0
    for line in open(f):
        try: e = json.loads(line)
        except Exception: continue
        if e.get("event") == "message" and str(e.get("body", "")).startswith(tag + " "):
            got[tag + "-" + e["body"].split(" ", 1)[1]] += 1; k += 1
    per_client.append(k)
sent_set = set(sent)
delivered = [i for i in sent if got[i] > 0]
dups = sum(1 for i in sent if got[i] > 1)
bounced = [i for i in sent if got[i] == 0 and i in errors]
both = sum(1 for i in sent if got[i] > 0 and i in errors)
lost = [i for i in sent if got[i] == 0 and i not in errors]
conds = collections.Counter(c for i in bounced for c in errors[i])
print(json.dumps({"pair": pair, "version": version, "case": int(case), "count": int(count), "rate": int(rate),
    "smacks_s2s": smacks, "sent": len(sent), "delivered": len(delivered), "bounced": len(bounced),
    "lost": len(lost), "duplicated": dups, "delivered_and_bounced": both,
    "stray": sum(v for k, v in got.items() if k not in sent_set), "per_client": per_client,
    "conditions": dict(conds), "lost_ids": lost[:50],
    "lost_sent_ms": [times[i] for i in lost[:50]]}))
PY
  local row
  row=$(tail -n 1 "$results")
  note "result: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("sent %(sent)d delivered %(delivered)d bounced %(bounced)d lost %(lost)d duplicated %(duplicated)d (delivered and bounced %(delivered_and_bounced)d; per client %(per_client)s; errors %(conditions)s; s2s smacks %(smacks_s2s)s)" % r)' "$row")"
  judge "$p" "$v" "$c" "$row"
  describe_lost "$row"
}

# smacks_state SRV LOG — was XEP-0198 on for A's s2s stream(s) to B in this case?
smacks_state() { # (c2s streams may enable it too: only A's s2sout streams count)
  if grep -qE $'^[^\t]*s2sout[0-9a-f]+\t[a-z]+\t(Enabling stream management|Received\\[s2sout\\]: <enabled )' "$2"; then
    echo on
  else
    echo off
  fi
}

# describe_lost ROW — for each lost chat (up to 5), the log lines naming its id.
describe_lost() {
  local ids id
  ids=$(python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])["lost_ids"]))' "$1")
  [[ -n $ids ]] || return 0
  note "lost chats (ids): $(cut -c1-400 <<<"$ids")"
  for id in $(tr ' ' '\n' <<<"$ids" | head -n 5); do
    note "  $id, in A's log:"
    grep -F "'$id'" "$case_dir/a.log" | cut -c1-300 | head -n 4 | sed 's/^/#         /'
    note "  $id, in B's log:"
    grep -F "'$id'" "$case_dir/b.log" | cut -c1-300 | head -n 4 | sed 's/^/#         /'
  done
  note "what A logged about its s2s streams around the fault:"
  grep -E 's2sout|s2sin' "$case_dir/a.log" | grep -vE 'Sending|Received|debug[[:space:]]+(Queuing|Sending)' |
    grep -iE 'close|destroy|error|bounc|unacked|disconnect|queue|connect' | cut -c1-300 | head -n 15 | sed 's/^/#         /'
}

# judge PAIR VERSION CASE ROW — the suite's checks for one case.
judge() {
  local p=$1 v=$2 c=$3 row=$4 sent lost dup what
  sent=$(json_get "$row" sent)
  lost=$(json_get "$row" lost)
  dup=$(json_get "$row" duplicated)
  what="case $c ($p, Prosody $v)"
  v6m_check_eq "$what: all $count chats sent" "$count" "$sent"
  [[ $p == v6alt* ]] || return 0
  v6m_check_eq "$what: 0 duplicated" 0 "$dup"
  if [[ $p == *smacks && $v == 13 ]]; then
    v6m_check_eq "$what: 0 lost" 0 "$lost"
  else
    # Without XEP-0198 Prosody loses what it wrote to a stream the peer's
    # death cut; the module must lose nothing before that.
    local id inside=""
    for id in $(python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])["lost_ids"]))' "$row"); do
      grep -qE "Sending\[s2sout\]: <message [^>]*id='$id'" "$case_dir/a.log" || inside+=" $id"
    done
    if [[ -z $inside ]]; then
      v6m_ok "$what: every lost chat ($lost) had left A on an s2s stream the fault cut"
    else
      v6m_not_ok "$what: every lost chat ($lost) had left A on an s2s stream the fault cut" \
        "never written to an s2s stream by A, no bounce:$(cut -c1-300 <<<"$inside")"
    fi
  fi
  if [[ $v != 13 ]]; then
    local classic_row cl
    classic_row=$(grep -F "\"pair\": \"classic${p#v6alt}\", \"version\": \"$v\", \"case\": $c," "$results" | tail -n 1)
    if [[ -n $classic_row ]]; then
      cl=$(json_get "$classic_row" lost)
      if ((lost <= cl)); then
        v6m_ok "$what: lost $lost <= classic pair's $cl"
      else
        v6m_not_ok "$what: lost $lost <= classic pair's $cl"
      fi
    fi
  fi
}

# ---------------------------------------------------------------- the pairs
run_pair() { # PAIR VERSION
  local p=$1 v=$2 a b da db ip_a ip_b extra_a extra_b c
  local -a opts=()
  a=$(pair_tag "$p" "$v")a
  b=$(pair_tag "$p" "$v")b
  ip_a=$(srv_ip "$p" "$v" a)
  ip_b=$(srv_ip "$p" "$v" b)
  da=$(srv_domain "$p" "$v" a) || v6m_die "name of $ip_a"
  db=$(srv_domain "$p" "$v" b) || v6m_die "name of $ip_b"
  extra_a=""
  extra_b=""
  case $p in
    classic*)
      opts+=(--no-module)
      extra_a="ssl = { certificate = \"$(v6m__srv "$a")/certs/$da.crt\"; key = \"$(v6m__srv "$a")/certs/$da.key\"; cafile = \"$ca/ca.crt\" }"
      extra_b="ssl = { certificate = \"$(v6m__srv "$b")/certs/$db.crt\"; key = \"$(v6m__srv "$b")/certs/$db.key\"; cafile = \"$ca/ca.crt\" }"
      ;;
  esac
  if [[ $p == *smacks ]]; then
    opts+=(--modules smacks)
    extra_a+=$'\nsmacks_enabled_s2s = true'
    extra_b+=$'\nsmacks_enabled_s2s = true'
  fi
  say "pair $p on Prosody $v: A $da [$ip_a], B $db [$ip_b]"
  prosody_create "${opts[@]}" "$a" "$v" "$da" "$ip_a" "$extra_a"
  prosody_create "${opts[@]}" "$b" "$v" "$db" "$ip_b" "$extra_b"
  if [[ $p == classic* ]]; then # CA-signed certificates instead of the self-signed ones
    local s dir dom
    for s in "$a" "$b"; do
      dir=$(v6m__srv "$s")
      dom=$(prosody_domain "$s")
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$dom" \
        -keyout "$dir/certs/$dom.key" -out "$dir/certs/$dom.csr" >/dev/null 2>&1 &&
        openssl x509 -req -in "$dir/certs/$dom.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
          -days 30 -extfile <(printf 'subjectAltName=DNS:%s,DNS:*.%s\nbasicConstraints=CA:FALSE\n' "$dom" "$dom") \
          -out "$dir/certs/$dom.crt" >/dev/null 2>&1 || v6m_die "certificate for $dom"
      chown prosody:prosody "$dir/certs/$dom.key" "$dir/certs/$dom.crt"
      chmod 600 "$dir/certs/$dom.key"
    done
  fi
  for s in "$a" "$b"; do
    if [[ $p == v6alt* ]] && ! prosody_install_rock "$s" "$rock"; then
      v6m_not_ok "$s: prosodyctl install" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
      return 1
    fi
    v6m_check "$s: starts (Prosody $v, $p)" prosody_start "$s" || return 1
  done
  v6m_check "adduser alice on $a" prosody_adduser "$a" alice pw-alice
  v6m_check "adduser bob on $b" prosody_adduser "$b" bob pw-bob
  for c in $cases; do
    [[ $p == *smacks && $c != 1 ]] && continue
    run_case "$p" "$v" "$c"
  done
  if [[ $p == *smacks ]]; then
    if grep -q '"smacks_s2s": "on"' <(grep -F "\"pair\": \"$p\", \"version\": \"$v\"" "$results"); then
      v6m_ok "$p on $v: XEP-0198 enabled on A's s2s stream to B"
    else
      v6m_not_ok "$p on $v: XEP-0198 enabled on A's s2s stream to B" "no 'enabled' in A's log"
    fi
  fi
  no_lua_errors "$a" 0 "$a: no Lua error in its log ($p $v)"
  cp "$(prosody_log "$a")" "$V6M_TMP/$a.prosody.log" 2>/dev/null
  cp "$(prosody_log "$b")" "$V6M_TMP/$b.prosody.log" 2>/dev/null
  prosody_stop "$a"
  prosody_stop "$b"
}

for v in $versions; do
  for p in $pairs; do
    run_pair "$p" "$v"
  done
done

# ---------------------------------------------------------------- the table
say "done in $((SECONDS - started)) s"
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
names = {1: "1 SIGKILL B, restart 5 s later", 2: "2 B's link down 30 s", 3: "3 B restarts (SIGTERM)"}
print("| Prosody | pair | s2s smacks | case | sent | delivered | bounced | lost | duplicated | errors |")
print("|---|---|---|---|---:|---:|---:|---:|---:|---|")
for r in rows:
    conds = ", ".join(f"{k} {v}" for k, v in sorted(r["conditions"].items())) or "-"
    print(f"| {r['version']} | {r['pair']} | {r['smacks_s2s']} | {names.get(r['case'], r['case'])} | {r['sent']:,} | {r['delivered']:,} | {r['bounced']:,} | {r['lost']:,} | {r['duplicated']:,} | {conds} |")
PY
if ((short)); then out_name=faults-short.jsonl; else out_name=faults-$(tr ' ' '-' <<<"$versions").jsonl; fi
cp "$results" "$out_dir/$out_name"
note "figures: bench-results/$out_name"
v6m_finish
