#!/usr/bin/env bash
# The benchmarks (npm run bench; see BENCHMARKS.md). Run as root.
#
#   1. codec: v6alt.encode / v6alt.decode of the shipped Lua on Lua 5.4 and LuaJIT
#   2. stanza path: chats/s from server A to server B, for three pairs of real
#      Prosody 13 servers in network namespaces:
#        v6alt          both with the module, named by the .v6.alt names of their addresses
#        classic        both with the module loaded, named a.bench.example-style by a
#                       DNS server on the mesh (dnsmasq: SRV + AAAA), CA-signed certs
#        classic_nomod  the same as classic without the module (the baseline)
#      rounds alternate the pairs; each ratio is taken within a round
#   3. connection set-up: first chat to a server not connected yet (s2s closed
#      first), with Prosody's default network settings and with nagle = false
#   4. failure: error reply to a malformed .v6.alt name, to a name nobody serves
#   5. memory: VmRSS of every server after the bursts
#   6. DNS (bench/dns.sh): queries/s of v6alt-dnsd (Lua 5.4, LuaJIT), the
#      in-Prosody listener and dnsmasq (hosts file) under dnsperf; the
#      listener's cost to the stanza path at 1,000 queries/s
#
# Prints a table and writes bench-results/bench.json (and the raw samples in
# bench-results/raw.jsonl). Knobs (environment):
#   BENCH_MSGS=10000 BENCH_ROUNDS=7 BENCH_SETUP_ROUNDS=7 BENCH_BOUNCES=20
#   BENCH_CODEC_RUNS=7 BENCH_CODEC_OPS=400000 BENCH_ATTRIBUTE=1 BENCH_ATTRIBUTE_ROUNDS=3
#   BENCH_DNS_SECONDS=10 BENCH_DNS_NAMES=10000 BENCH_DNS_ROUNDS=5 BENCH_DNS_MSGS=10000
#   BENCH_DNS_COST_QPS=1000 BENCH_DNS=1 (0 skips the DNS section)
#   BENCH_ONLY=codec|servers|dns|all (default all)
#   (BENCH_ONLY=codec re-runs only the codec part and merges it into the last
#   full run's bench-results/raw.jsonl; BENCH_ONLY=dns the same for the DNS
#   section)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=../test/integration/lib.sh
source test/integration/lib.sh

MSGS=${BENCH_MSGS:-10000}
ROUNDS=${BENCH_ROUNDS:-7}
SETUP_ROUNDS=${BENCH_SETUP_ROUNDS:-7}
BOUNCES=${BENCH_BOUNCES:-20}
CODEC_RUNS=${BENCH_CODEC_RUNS:-7}
CODEC_OPS=${BENCH_CODEC_OPS:-400000}
ONLY=${BENCH_ONLY:-all}
results=$root/bench-results
mkdir -p "$results"

v6m_setup bench
SECONDS=0
RAW=$V6M_TMP/raw.jsonl
: >"$RAW"
raw() { printf '%s\n' "$1" >>"$RAW"; }
step() { printf '# [%3ds] %s\n' "$SECONDS" "$*" >&2; }

# ------------------------------------------------------------------ machine
lua_v=$(lua5.4 -v 2>&1 | head -n 1 | awk "{print \$1, \$2}")
luajit_v=$(luajit -v 2>&1 | head -n 1 | awk "{print \$1, \$2}")
prosody_v=$(dpkg-query -W -f='${Version}' prosody 2>/dev/null)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
git_head=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- dist 2>/dev/null || git_head+="+modified-dist"
dist_sha=$(cat dist/mod_s2s_v6mesh/*.lua | sha256sum | cut -c1-16)
raw "$(printf '{"kind":"machine","git_head":"%s","dist_sha256_16":"%s","nproc":%d,"cpu":"%s","mem_total_kb":%d,"kernel":"%s","lua":"%s","luajit":"%s","prosody":"%s","node":"%s","date":"%s","load_at_start":"%s"}' \
  "$git_head" "$dist_sha" "$(nproc)" "$cpu" "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" "$(uname -r)" "$lua_v" "$luajit_v" \
  "$prosody_v" "$(node --version)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(cut -d' ' -f1-3 /proc/loadavg)")"

# ------------------------------------------------------------------ 1. codec
if [[ $ONLY == all || $ONLY == codec ]]; then
  for lua in lua5.4 luajit; do
    step "codec on $lua ($CODEC_RUNS runs x $CODEC_OPS ops, load $(cut -d' ' -f1 /proc/loadavg))"
    load=$(cut -d' ' -f1 /proc/loadavg)
    if out=$("$lua" bench/codec.lua dist "$CODEC_RUNS" "$CODEC_OPS"); then
      raw "{\"kind\":\"codec\",\"interpreter\":\"$lua\",\"date\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"load_before\":$load,\"data\":$out}"
      v6m_ok "codec benchmark on $lua"
    else
      v6m_not_ok "codec benchmark on $lua" "exit $?"
    fi
  done
fi

report() {
  cp "$RAW" "$results/raw.jsonl"
  node bench/report.mjs "$RAW" "$results/bench.json"
}
if [[ $ONLY == codec ]]; then
  # Re-run of the codec part only (e.g. when the machine is quieter): keep
  # the other figures of the last full run, replace its codec figures.
  if [[ -f $results/raw.jsonl ]] && grep -q '"kind":"burst"' "$results/raw.jsonl"; then
    grep -v '"kind":"codec"' "$results/raw.jsonl" >"$V6M_TMP/merged.jsonl"
    grep '"kind":"codec"' "$RAW" | sed 's/^{"kind":"codec",/{"kind":"codec","rerun":true,/' >>"$V6M_TMP/merged.jsonl"
    RAW=$V6M_TMP/merged.jsonl
  fi
  report
  v6m_finish
  exit
fi

# ------------------------------------------------------------------ the mesh
step "building the rock from dist/ (in the temp dir)"
v6m_build_rock

step "mesh, DNS server, certificates"
mesh_create
P=$V6M_PREFIX
DOM=bench.example
# name  node-ip  domain  module?
declare -A S_IP S_DOM S_MOD SENDER RECEIVER
add_server() { S_IP[$1]=$2; S_DOM[$1]=$3; S_MOD[$1]=$4; }

if [[ $ONLY != dns ]]; then # ---- the six servers (not with BENCH_ONLY=dns; the DNS section has its own)
# A CA for the classic names, so Prosody verifies their certificates itself.
v6m_make_ca bench

add_server va "$P::a" "$(v6alt_name "$P::a")" 1
add_server vb "$P::b" "$(v6alt_name "$P::b")" 1
add_server ca "$P::c" "ca.$DOM" 1
add_server cb "$P::d" "cb.$DOM" 1
add_server na "$P::e" "na.$DOM" 0
add_server nb "$P::f" "nb.$DOM" 0
servers=(va vb ca cb na nb)
declare -A SENDER=([v6alt]=va [classic]=ca [classic_nomod]=na)
declare -A RECEIVER=([v6alt]=vb [classic]=cb [classic_nomod]=nb)
pairs=(v6alt classic classic_nomod)
dead_ip=$P::dead                       # nothing on the mesh has this address
dead_v6=$(v6alt_name "$dead_ip")

# dnsmasq on the hub address (where every node's resolv.conf points).
dnsconf=$V6M_TMP/dnsmasq.conf
{
  echo "no-resolv"
  echo "no-hosts"
  echo "no-poll"
  echo "bind-interfaces"
  echo "listen-address=$V6M_HUB_IP"
  echo "port=53"
  echo "local=/$DOM/"
  echo "local-ttl=0"
  echo "log-queries"
  echo "log-facility=-"
  echo "user=root"
  echo "pid-file="
  for s in ca cb na nb; do
    echo "host-record=${S_DOM[$s]},${S_IP[$s]}"
    echo "srv-host=_xmpp-server._tcp.${S_DOM[$s]},${S_DOM[$s]},5269,0,5"
  done
  echo "host-record=dead.$DOM,$dead_ip"
  echo "srv-host=_xmpp-server._tcp.dead.$DOM,dead.$DOM,5269,0,5"
} >"$dnsconf"
ip netns exec "$V6M_HUB_NS" dnsmasq --keep-in-foreground --conf-file="$dnsconf" 2>"$V6M_TMP/dnsmasq.log" &
dns_pid=$!
v6m__track_pid "$dns_pid"
sleep 0.5
kill -0 "$dns_pid" 2>/dev/null || v6m_die "dnsmasq did not start: $(cat "$V6M_TMP/dnsmasq.log")"

step "six Prosody $prosody_v servers"
for s in "${servers[@]}"; do
  dir=$V6M_TMP/srv/$s
  dom=${S_DOM[$s]}
  # Equal for all six: info-level log (debug logging would dominate the
  # stanza path), TLS with a CA file, strict s2s (from lib.sh's defaults).
  extra="log = { info = \"$dir/prosody.log\" }
ssl = { certificate = \"$dir/certs/$dom.crt\"; key = \"$dir/certs/$dom.key\"; cafile = \"$ca/ca.crt\" }"
  opt=()
  ((${S_MOD[$s]})) || opt=(--no-module)
  prosody_create "${opt[@]}" "$s" 13 "$dom" "${S_IP[$s]}" "$extra"
  if [[ $s != v* ]]; then # a CA-signed certificate instead of the self-signed one
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$dom" \
      -keyout "$dir/certs/$dom.key" -out "$dir/certs/$dom.csr" >/dev/null 2>&1 &&
      openssl x509 -req -in "$dir/certs/$dom.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
        -days 30 -extfile <(printf 'subjectAltName=DNS:%s,DNS:*.%s\nbasicConstraints=CA:FALSE\n' "$dom" "$dom") \
        -out "$dir/certs/$dom.crt" >/dev/null 2>&1 || v6m_die "certificate for $dom"
    chown prosody:prosody "$dir/certs/$dom.key" "$dir/certs/$dom.crt"
    chmod 600 "$dir/certs/$dom.key"
  fi
  if ((${S_MOD[$s]})); then
    prosody_install_rock "$s" "$rock" || v6m_die "install on $s: $V6M_ERR"
  fi
done
for s in "${servers[@]}"; do
  prosody_start "$s" || v6m_die "server $s did not start"
done
for s in "${servers[@]}"; do
  if [[ ${RECEIVER[v6alt]} == "$s" || ${RECEIVER[classic]} == "$s" || ${RECEIVER[classic_nomod]} == "$s" ]]; then
    prosody_adduser "$s" bob pw-bob || v6m_die "adduser on $s"
  else
    prosody_adduser "$s" alice pw-alice || v6m_die "adduser on $s"
  fi
done
loaded=""
for s in "${servers[@]}"; do
  prosody_module_loaded "$s" s2s_v6mesh && loaded+="$s "
done
v6m_check_eq "mod_s2s_v6mesh loaded exactly on va vb ca cb" "va vb ca cb " "$loaded"
fi # ---- the six servers

# ------------------------------------------------------------------ helpers
flood() { # NODE ARGS... : flood.mjs inside that node, as root, clean env
  local node=$1
  shift
  node_exec "$node" env -i HOME="$V6M_TMP" PATH="$V6M_PATH" "$V6M_NODE" "$root/bench/flood.mjs" "$@"
}
svc() { # SERVER USER PASS -> client args
  printf '%s\n' --service "xmpp://[${S_IP[$1]}]:5222" --domain "${S_DOM[$1]}" --user "$2" --pass "$3"
}
jget() { # JSON-LINE KEY -> value (numbers, strings without quotes)
  node -e 'const o=JSON.parse(process.argv[1]); const v=o[process.argv[2]]; process.stdout.write(v===undefined?"":String(v))' "$1" "$2"
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null; }
srv_pid() { cat "$V6M_TMP/srv/$1/prosody.pid" 2>/dev/null; }
# CPU time (ns) a process has used so far, all its threads (schedstat: exact,
# unlike the 10 ms ticks of /proc/PID/stat).
cpu_ns() {
  local f a sum=0
  for f in /proc/"$1"/task/*/schedstat; do
    read -r a _ <"$f" && sum=$((sum + a))
  done
  echo "$sum"
}

# burst PAIR ROUND COUNT TAG -> appends one "burst" sample; 0 when all arrived
burst() {
  local pair=$1 round=$2 count=$3 tag=$4 s r rout sout rpid rc=0 done_line sent_line
  s=${SENDER[$pair]}
  r=${RECEIVER[$pair]}
  rout=$V6M_TMP/recv-$tag.out
  sout=$V6M_TMP/send-$tag.out
  mapfile -t rargs < <(svc "$r" bob pw-bob)
  mapfile -t sargs < <(svc "$s" alice pw-alice)
  flood "$r" recv "${rargs[@]}" --tag "$tag" --count "$count" --timeout 120 >"$rout" 2>"$rout.err" &
  rpid=$!
  v6m__track_pid "$rpid"
  if ! client_wait_for "$rout" '"ready"' 20; then
    v6m_not_ok "$pair burst $tag: receiver online" "$(cat "$rout" "$rout.err" | tail -n 3 | tr '\n' ' ')"
    v6m__kill_pid "$rpid"
    return 1
  fi
  local spid rpid_srv s0 r0 s1 r1
  spid=$(srv_pid "$s")
  rpid_srv=$(srv_pid "$r")
  s0=$(cpu_ns "$spid")
  r0=$(cpu_ns "$rpid_srv")
  flood "$s" send "${sargs[@]}" --to "bob@${S_DOM[$r]}" --tag "$tag" --count "$count" --timeout 120 >"$sout" 2>"$sout.err" || rc=$?
  client_wait "$rpid" 120 || rc=$?
  s1=$(cpu_ns "$spid")
  r1=$(cpu_ns "$rpid_srv")
  done_line=$(grep '"event":"done"' "$rout" | head -n 1)
  sent_line=$(grep '"event":"sent"' "$sout" | head -n 1)
  if [[ -z $done_line || -z $sent_line || $sent_line != *'"errors":0'* ]]; then
    local lost
    lost=$(grep '"event":"timeout"' "$rout" | head -n 1)
    raw "{\"kind\":\"burst\",\"pair\":\"$pair\",\"round\":$round,\"count\":$count,\"ok\":false,\"recv\":${lost:-null},\"send\":${sent_line:-null}}"
    v6m_not_ok "$pair burst $tag: all $count delivered" "rc $rc; recv: ${lost:-$(tail -n 2 "$rout.err")}; send: $(tail -n 2 "$sout" | tr '\n' ' ')"
    return 1
  fi
  raw "{\"kind\":\"burst\",\"pair\":\"$pair\",\"round\":$round,\"count\":$count,\"ok\":true,\"load\":$(cut -d' ' -f1 /proc/loadavg),\"sender_server_cpu_ns\":$((s1 - s0)),\"receiver_server_cpu_ns\":$((r1 - r0)),\"recv\":$done_line,\"send\":$sent_line}"
  return 0
}

# Close every s2s session of both servers of a pair; wait until no TCP
# connection on port 5269 is left in either node.
s2s_reset() {
  local pair=$1 s i
  for s in "${SENDER[$pair]}" "${RECEIVER[$pair]}"; do
    prosody_shell "$s" 's2s:closeall()' >/dev/null 2>&1
  done
  for ((i = 0; i < 100; i++)); do
    if [[ -z $(node_exec "${SENDER[$pair]}" ss -Htn state established '( sport = :5269 or dport = :5269 )') &&
      -z $(node_exec "${RECEIVER[$pair]}" ss -Htn state established '( sport = :5269 or dport = :5269 )') ]]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

memory() { # PHASE
  local s pid lua_kb
  for s in "${servers[@]}"; do
    pid=$(srv_pid "$s")
    lua_kb=
    if prosody_shell "$s" '>collectgarbage("collect"); return collectgarbage("count")'; then
      lua_kb=$(grep -oE '[0-9]+(\.[0-9]+)?' <<<"$V6M_OUT" | head -n 1)
    fi
    raw "{\"kind\":\"memory\",\"phase\":\"$1\",\"server\":\"$s\",\"module\":${S_MOD[$s]},\"pair\":\"$(for p in "${pairs[@]}"; do [[ ${SENDER[$p]} == "$s" || ${RECEIVER[$p]} == "$s" ]] && echo "$p"; done)\",\"role\":\"$([[ $s == ?a ]] && echo sender || echo receiver)\",\"vmrss_kb\":$(rss_kb "$pid"),\"vmhwm_kb\":$(hwm_kb "$pid"),\"lua_heap_after_full_gc_kb\":${lua_kb:-null}}"
  done
}

if [[ $ONLY != dns ]]; then # ---- set-up, stanza path, failure, memory on the six servers (to "the six servers done")
# ------------------------------------------------------------------ 3. connection set-up (fresh servers first)
# Runs before any other traffic, so round 1 is the very first s2s connection
# each server ever makes; later rounds close the sessions first. Two series:
# Prosody's default network settings (Nagle on: a TCP delayed-ACK stall of
# ~40 ms sits in every s2s set-up), then the same with nagle = false set at
# run time on all six servers (net.server's set_config), which shows the work
# itself. Restored to the defaults before the bursts.
setup_one() { # PAIR ROUND MODE
  local pair=$1 round=$2 mode=$3 s r line
  s=${SENDER[$pair]}
  r=${RECEIVER[$pair]}
  s2s_reset "$pair" || v6m_not_ok "$pair: s2s sessions closed before set-up round $round"
  mapfile -t sargs < <(svc "$s" alice pw-alice)
  line=$(flood "$s" setup "${sargs[@]}" --to "bob@${S_DOM[$r]}" --rservice "xmpp://[${S_IP[$r]}]:5222" \
    --rdomain "${S_DOM[$r]}" --ruser bob --rpass pw-bob --tag "setup-$mode-$pair-$round" --timeout 60 2>>"$V6M_TMP/setup.err" |
    grep -E '"event":"(setup|error-reply|timeout|error)"' | head -n 1)
  if [[ $line == *'"event":"setup"'* ]]; then
    raw "{\"kind\":\"setup\",\"mode\":\"$mode\",\"pair\":\"$pair\",\"round\":$round,\"ms\":$(jget "$line" ms)}"
    SETUP_OK[$pair]=$((SETUP_OK[$pair] + 1))
  else
    v6m_not_ok "$pair: first chat delivered (set-up round $round, $mode)" "${line:-no output}"
  fi
}
net_config() { # LUA-TABLE : net.server's settings on every server
  local s ok=1
  for s in "${servers[@]}"; do
    prosody_shell "$s" ">require(\"prosody.net.server\").set_config($1); return \"net config set\"" &&
      [[ $V6M_OUT == *"net config set"* ]] || ok=0
  done
  ((ok)) && v6m_ok "network_settings $1 on all servers" || v6m_not_ok "network_settings $1 on all servers" "$V6M_OUT $V6M_ERR"
}
declare -A SETUP_OK=([v6alt]=0 [classic]=0 [classic_nomod]=0)
for mode in default nagle_off; do
  step "connection set-up ($mode): $SETUP_ROUNDS rounds x ${#pairs[@]} pairs"
  [[ $mode == nagle_off ]] && net_config '{ nagle = false }'
  for ((round = 1; round <= SETUP_ROUNDS; round++)); do
    n=${#pairs[@]}
    for ((k = 0; k < n; k++)); do
      setup_one "${pairs[$(((k + round - 1) % n))]}" "$round" "$mode"
    done
  done
done
net_config '{}'
for pair in "${pairs[@]}"; do
  s2s_reset "$pair" || v6m_not_ok "$pair: s2s sessions closed after the set-up rounds"
  ((SETUP_OK[$pair] == 2 * SETUP_ROUNDS)) && v6m_ok "$pair: the first chat over a new s2s connection arrived in all $((2 * SETUP_ROUNDS)) set-up rounds"
done
# DNS queries seen by dnsmasq during the set-up rounds (the classic pairs only).
raw "{\"kind\":\"dns\",\"phase\":\"setup\",\"queries\":$(grep -c 'query\[' "$V6M_TMP/dnsmasq.log"),\"v6alt_queries\":$(grep 'query\[' "$V6M_TMP/dnsmasq.log" | grep -c 'v6\.alt'),\"sample\":\"$(grep 'query\[' "$V6M_TMP/dnsmasq.log" | head -n 4 | sed -E 's/^.*(query\[[A-Z]+\] [^ ]+).*$/\1/' | tr '\n' ';')\"}"

memory idle

# ------------------------------------------------------------------ 2. stanza path
step "stanza path: warm-up burst of 1000 per pair"
for pair in "${pairs[@]}"; do
  burst "$pair" 0 1000 "warm-$pair" || v6m_not_ok "$pair warm-up burst"
done
step "stanza path: $ROUNDS rounds x ${#pairs[@]} pairs x $MSGS chats"
declare -A BURST_FAILED=([v6alt]=0 [classic]=0 [classic_nomod]=0)
for ((round = 1; round <= ROUNDS; round++)); do
  n=${#pairs[@]}
  for ((k = 0; k < n; k++)); do
    pair=${pairs[$(((k + round - 1) % n))]}
    if burst "$pair" "$round" "$MSGS" "r$round-$pair"; then
      step "  round $round $pair: $(tail -n 1 "$RAW" | node -e 'const o=JSON.parse(require("fs").readFileSync(0));console.log(Math.round(o.count/((o.recv.last_ms-o.send.start_ms)/1000))+" msg/s, Prosody CPU "+((o.sender_server_cpu_ns+o.receiver_server_cpu_ns)/1000/o.count).toFixed(1)+" us/msg, load "+o.load)')"
    else
      BURST_FAILED[$pair]=$((BURST_FAILED[$pair] + 1))
    fi
  done
done
for pair in "${pairs[@]}"; do
  if ((BURST_FAILED[$pair] == 0)); then
    v6m_ok "$pair: $ROUNDS bursts of $MSGS chats, every one delivered, no error reply"
  fi
done

memory after_burst

# What the module's route/remote hook does per stanza to a .v6.alt peer
# (v6alt.decode + policy.decide), timed inside the running sender server: the
# same code as bench/codec.lua's route_check, but in Prosody's Lua state.
inproc='>local v = require "mod_s2s_v6mesh.v6alt"; local p = require "mod_s2s_v6mesh.policy"
local name, pol, n = "'"${S_DOM[vb]}"'", p.new_policy(true, {}), 20000
collectgarbage("collect"); local t0 = os.clock()
for _ = 1, n do v.decode(name) end
local t1 = os.clock()
for _ = 1, n do p.decide(pol, v.decode(name)) end
local t2 = os.clock()
return string.format("decode_us=%.3f route_check_us=%.3f", (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6)'
if prosody_shell va "$(tr '\n' ' ' <<<"$inproc")" && [[ $V6M_OUT =~ decode_us=([0-9.]+)\ route_check_us=([0-9.]+) ]]; then
  raw "{\"kind\":\"inprocess\",\"server\":\"va\",\"name\":\"${S_DOM[vb]}\",\"calls\":20000,\"decode_us\":${BASH_REMATCH[1]},\"route_check_us\":${BASH_REMATCH[2]}}"
else
  v6m_not_ok "route check timed inside Prosody" "$V6M_OUT $V6M_ERR"
fi

# Attribution (BENCH_ATTRIBUTE=0 skips it): the v6alt pair again, alternating
# bursts with the real policy.decide and with policy.decide replaced (in the
# sender's running Lua state, through the admin shell) by a function that
# returns a constant "allowed" decision. The difference in the sender's CPU per
# chat is what policy.decide costs on the stanza path. Only the bench does
# this; the module is restored after each stubbed burst.
if [[ ${BENCH_ATTRIBUTE:-1} == 1 ]]; then
  step "attribution: v6alt bursts with and without policy.decide on the sender"
  SENDER[attr_v6alt]=va RECEIVER[attr_v6alt]=vb
  SENDER[attr_v6alt_nodecide]=va RECEIVER[attr_v6alt_nodecide]=vb
  stub='>local p = require "mod_s2s_v6mesh.policy"; if not rawget(_G, "bench_decide") then rawset(_G, "bench_decide", p.decide) end; local d = { address = "", use_tls = true, trust_all_certs = true }; p.decide = function() return d end; return "stubbed"'
  unstub='>local p = require "mod_s2s_v6mesh.policy"; p.decide = rawget(_G, "bench_decide") or p.decide; return "restored"'
  for ((round = 1; round <= ${BENCH_ATTRIBUTE_ROUNDS:-3}; round++)); do
    burst attr_v6alt "$round" "$MSGS" "attr$round-real" || v6m_not_ok "attribution burst (real decide) $round"
    if prosody_shell va "$stub" && [[ $V6M_OUT == *stubbed* ]]; then
      burst attr_v6alt_nodecide "$round" "$MSGS" "attr$round-stub" || v6m_not_ok "attribution burst (stubbed decide) $round"
    else
      v6m_not_ok "stub policy.decide on va" "$V6M_OUT $V6M_ERR"
    fi
    prosody_shell va "$unstub" && [[ $V6M_OUT == *restored* ]] || v6m_not_ok "restore policy.decide on va" "$V6M_OUT $V6M_ERR"
  done
fi

# ------------------------------------------------------------------ 4. failure
step "failure: error replies"
label=${S_DOM[vb]%.v6.alt}
if [[ $label == *-* ]]; then
  run=$((26 + 1 - ${#label}))
  uncompressed="${label%%-*}$(printf 'a%.0s' $(seq 1 "$run"))${label#*-}.v6.alt"
else
  uncompressed="${label:0:25}x.v6.alt" # (no hyphen to expand: an invalid character instead)
fi
bounce_case() { # CASE SERVER TO COUNT TIMEOUT
  local case=$1 s=$2 to=$3 count=$4 timeout=$5 out=$V6M_TMP/bounce-$1.out
  mapfile -t sargs < <(svc "$s" alice pw-alice)
  flood "$s" bounce "${sargs[@]}" --to "$to" --count "$count" --tag "b-$case" --timeout "$timeout" >"$out" 2>"$out.err"
  local line
  while read -r line; do
    raw "{\"kind\":\"bounce\",\"case\":\"$case\",\"to\":\"$to\",\"sample\":$line}"
  done < <(grep '"event":"bounce"' "$out")
}
bounce_check() { # CASE COUNT (in this shell: the no-server cases ran in subshells)
  local out=$V6M_TMP/bounce-$1.out
  if [[ $(grep -c '"event":"bounce"' "$out") == "$2" ]]; then
    v6m_ok "$1: an error reply to each of $2 chats ($(grep -m1 -o '"condition":"[^"]*"' "$out"))"
  else
    v6m_not_ok "$1: error reply" "$(tail -n 2 "$out" "$out.err" | tr '\n' ' ')"
  fi
}
# The two "nobody there" cases wait for a TCP connect timeout: run them side by side.
bounce_case v6alt_no_server va "bob@$dead_v6" 1 120 &
p1=$!
bounce_case classic_no_server ca "bob@dead.$DOM" 1 120 &
p2=$!
bounce_case v6alt_malformed va "bob@$uncompressed" "$BOUNCES" 20
bounce_case v6alt_special va "bob@$(v6alt_name ::1)" "$BOUNCES" 20
bounce_case classic_nxdomain ca "bob@nx.$DOM" "$BOUNCES" 20
wait "$p1" "$p2"
bounce_check v6alt_malformed "$BOUNCES"
bounce_check v6alt_special "$BOUNCES"
bounce_check classic_nxdomain "$BOUNCES"
bounce_check v6alt_no_server 1
bounce_check classic_no_server 1

raw "{\"kind\":\"dns\",\"phase\":\"end\",\"queries\":$(grep -c 'query\[' "$V6M_TMP/dnsmasq.log"),\"v6alt_queries\":$(grep 'query\[' "$V6M_TMP/dnsmasq.log" | grep -c 'v6\.alt'),\"trap_packets\":$(dns_count)}"
raw "{\"kind\":\"end\",\"seconds\":$SECONDS,\"load_at_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"

for s in "${servers[@]}"; do
  if grep -q 'stack traceback' "$(prosody_log "$s")"; then v6m_not_ok "no Lua traceback in $s's log"; fi
done
# Both kinds of pair authenticate the same way: TLS, then SASL EXTERNAL.
for pair in "${pairs[@]}"; do
  r=${RECEIVER[$pair]}
  ext=$(grep -c "Accepting SASL EXTERNAL identity from ${S_DOM[${SENDER[$pair]}]}" "$(prosody_log "$r")")
  dlb=$(grep -ci 'dialback' "$(prosody_log "$r")")
  ciphers=$(grep -h 's2sin.*Stream encrypted' "$(prosody_log "$r")" | grep -oE 'TLSv[0-9.]+ with [A-Z0-9_]+' | sort -u | tr '\n' ';')
  raw "{\"kind\":\"auth\",\"pair\":\"$pair\",\"sasl_external\":$ext,\"dialback_lines\":$dlb,\"s2s_tls\":\"$ciphers\"}"
  if ((ext > 0 && dlb == 0)); then
    v6m_ok "$pair: s2s authenticated with SASL EXTERNAL ($ext times), no dialback, $ciphers"
  else
    v6m_not_ok "$pair: s2s authenticated with SASL EXTERNAL" "$ext EXTERNAL, $dlb dialback lines"
  fi
done
fi # ---- the six servers done

# ------------------------------------------------------------------ 6. DNS (SPEC §6)
# v6alt-dnsd (Lua 5.4, LuaJIT), the in-Prosody listener and dnsmasq under
# dnsperf, then the listener's cost to the stanza path: bench/dns.sh.
# shellcheck source=../bench/dns.sh
source "$root/bench/dns.sh"
if [[ $ONLY == dns ]]; then
  # Re-run of the DNS part only: keep the other figures of the last full run,
  # replace its DNS figures (as BENCH_ONLY=codec does for the codec).
  if [[ -f $results/raw.jsonl ]] && grep -q '"kind":"burst"' "$results/raw.jsonl"; then
    grep -vE '"kind":"(dns_machine|dnsperf|dnscost)"|"pair":"dnscost_' "$results/raw.jsonl" >"$V6M_TMP/merged.jsonl"
    grep -E '"kind":"(dns_machine|dnsperf|dnscost)"|"pair":"dnscost_' "$RAW" | sed 's/^{"kind":"\([a-z_]*\)",/{"kind":"\1","rerun":true,/' >>"$V6M_TMP/merged.jsonl"
    RAW=$V6M_TMP/merged.jsonl
  fi
fi
[[ $ONLY == all && ${BENCH_VOLUME:-1} == 1 ]] && { bash "$root/bench/volume.sh" || v6m_not_ok "bench/volume.sh: bad input at volume (bench-results/volume.json)"; } # BENCH_VOLUME=0 skips it
report || v6m_not_ok "report"
step "done in ${SECONDS}s; raw samples and bench.json in $results/"
v6m_finish
