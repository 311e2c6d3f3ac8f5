#!/usr/bin/env bash
# Bad input at volume (issue 11; BENCHMARKS.md, "Bad input at volume"). Run as root.
#
#   bash bench/volume.sh                 # ~6 minutes; scripts/bench.sh runs it too
#   VOL_ONLY=fuzz bash bench/volume.sh   # only part 1
#
# 1. bench/names-fuzz.lua: VOL_FUZZ_NAMES (1,000,000) random and mutated names
#    through v6alt.decode, strict and lax, on lua5.1, lua5.4 and luajit (the
#    properties are listed at the top of that file); same sequence on every Lua.
# 2. Real servers: Prosody 13 "a" with the module (users alice and carol) and
#    "b" (user dave). alice sends one chat to each of VOL_DESTS (100,000)
#    distinct .v6.alt destinations within VOL_SECONDS (60): half well-formed
#    names of addresses in a /64 where nothing listens (the hub drops the
#    SYNs, so each costs Prosody an s2sout session until its 20-s connect
#    timeout), 30% names of special-purpose addresses (refused by the module's
#    policy), 20% non-canonical names (uncompressed, padding bits, misplaced
#    '-'; refused by the strict decoder). Meanwhile carol chats with dave@b
#    every second (bench/volume.mjs latency). a's Lua heap (prosodyctl shell),
#    the module's refusal cache (read through debug.getupvalue from its
#    route/remote hook), Prosody's pending s2sout sessions and their queued
#    stanzas, VmRSS and open fds are sampled before, every VOL_PROBE_EVERY s
#    during, and after.
#
# Prints a summary and writes bench-results/volume.json (and volume-raw.jsonl).
# Knobs: VOL_FUZZ_NAMES VOL_DESTS VOL_SECONDS VOL_PROBE_EVERY=2 VOL_ONLY=all|fuzz|servers
#   VOL_MIX="10 50 40"  percent unreachable / special-purpose / non-canonical names
#   VOL_SENDQ=N         s2s_send_queue_size on a (default: Prosody's, 32768; see below)
#   VOL_TAG=volume      results in bench-results/$VOL_TAG.json and $VOL_TAG-raw.jsonl
# VOL_ONLY=servers keeps the fuzz figures of the last bench-results/volume-raw.jsonl.
#
# Why only 10% unreachable by default: Prosody 13 gives every new s2sout session
# a send queue made with util.queue.new(s2s_send_queue_size), which preallocates
# the whole array (32,768 slots = 512 KiB on Lua 5.4) and holds it until the
# connection attempt ends (20 s connect timeout here). 50,000 such names in a
# minute would keep ~16,000 sessions = ~8 GiB of heap alive at once (and the
# collector traverses every slot of every queue); 10,000 keep ~1.7 GiB.
# That is Prosody's cost, reported apart from the module's own tables.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
# shellcheck source=../test/integration/lib.sh
source test/integration/lib.sh

FUZZ_NAMES=${VOL_FUZZ_NAMES:-1000000}
DESTS=${VOL_DESTS:-100000}
SPRAY_SECONDS=${VOL_SECONDS:-60}
PROBE_EVERY=${VOL_PROBE_EVERY:-2}
ONLY=${VOL_ONLY:-all}
read -r MIX_U MIX_S MIX_N <<<"${VOL_MIX:-10 50 40}"
SENDQ=${VOL_SENDQ:-}
TAG=${VOL_TAG:-volume}
results=$root/bench-results
mkdir -p "$results"

v6m_setup bench-volume
SECONDS=0
RAW=$V6M_TMP/volume-raw.jsonl
: >"$RAW"
raw() { printf '%s\n' "$1" >>"$RAW"; }
step() { printf '# [%3ds] %s\n' "$SECONDS" "$*" >&2; }
now_ms() { date +%s%3N; }
cpu_ns() { # PID: CPU time used so far, all threads (schedstat, ns)
  local f a sum=0
  for f in /proc/"$1"/task/*/schedstat; do
    read -r a _ <"$f" && sum=$((sum + a))
  done
  echo "$sum"
}

raw "$(printf '{"kind":"machine","git_head":"%s","nproc":%d,"cpu":"%s","mem_total_kb":%d,"kernel":"%s","lua51":"%s","lua54":"%s","luajit":"%s","prosody":"%s","node":"%s","date":"%s","load_at_start":"%s","ulimit_n":%s}' \
  "$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- dist 2>/dev/null || echo +modified-dist)" \
  "$(nproc)" "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" \
  "$(uname -r)" "$(lua5.1 -v 2>&1 | awk '{print $2}')" "$(lua5.4 -v 2>&1 | awk '{print $2}')" "$(luajit -v 2>&1 | awk '{print $2}')" \
  "$(dpkg-query -W -f='${Version}' prosody 2>/dev/null)" "$(node --version)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "$(ulimit -n)")"
raw "{\"kind\":\"settings\",\"fuzz_names\":$FUZZ_NAMES,\"dests\":$DESTS,\"seconds\":$SPRAY_SECONDS,\"mix_percent\":{\"unreachable\":$MIX_U,\"special\":$MIX_S,\"noncanonical\":$MIX_N},\"s2s_send_queue_size\":${SENDQ:-null}}"
if [[ $ONLY == servers && -f $results/volume-raw.jsonl ]]; then
  grep '"kind":"names_fuzz"' "$results/volume-raw.jsonl" | sed 's/^{"kind":"names_fuzz",/{"kind":"names_fuzz","earlier_run":true,/; s/"earlier_run":true,"earlier_run":true,/"earlier_run":true,/' >>"$RAW"
fi

# ------------------------------------------------------------------ 1. names through decode
if [[ $ONLY == all || $ONLY == fuzz ]]; then
  digests=""
  for lua in lua5.1 lua5.4 luajit; do
    step "names fuzz: $FUZZ_NAMES names on $lua"
    rc=0
    out=$("$lua" bench/names-fuzz.lua dist "$FUZZ_NAMES") || rc=$?
    grep -v '^{' <<<"$out" | sed 's/^/#   /' >&2
    line=$(grep '^{"kind":"names_fuzz"' <<<"$out" | tail -n 1)
    [[ -n $line ]] && raw "$line"
    if ((rc == 0)) && [[ -n $line ]]; then
      v6m_ok "names fuzz on $lua: $FUZZ_NAMES names, 0 Lua errors, 0 property violations"
    else
      v6m_not_ok "names fuzz on $lua" "exit $rc: $(grep -E 'violations|^  P[0-9]' <<<"$out" | head -n 3 | tr '\n' ' ')"
    fi
    digests+="$(grep -oE '"digest":[0-9]+' <<<"$line") "
  done
  if [[ $(tr ' ' '\n' <<<"$digests" | grep -v '^$' | sort -u | wc -l) == 1 ]]; then
    v6m_ok "names fuzz: the same sequence on every Lua (${digests%% *})"
  else
    v6m_not_ok "names fuzz: the same sequence on every Lua" "$digests"
  fi
fi

summarize() { python3 "$V6M_TMP/summary.py" "$RAW" "$results/$TAG.json"; }
cat >"$V6M_TMP/summary.py" <<'PY'
import json, sys, statistics
raw = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = {"machine": next((r for r in raw if r["kind"] == "machine"), None)}
out["fuzz"] = [r for r in raw if r["kind"] == "names_fuzz"]
for r in out["fuzz"]:
    print("fuzz %-20s %9d names  strict ok %7d  lax ok %7d  Lua errors %d  violations %d  strict %7.0f/s  lax %7.0f/s  checked %6.0f names/s"
          % (r["lua"], r["names"], r["strict_accepted"], r["lax_accepted"], r["lua_errors"], r["violations"],
             r["strict_per_s"], r["lax_per_s"], r["checked_per_s"]))
probes = [r for r in raw if r["kind"] == "probe"]
spray = next((r for r in raw if r["kind"] == "spray"), None)
lats = [r for r in raw if r["kind"] == "lat"]
if spray:
    out["spray"] = spray
    t0, t1 = spray["start_ms"], spray["end_send_ms"]
    t2 = max(spray.get("last_reply_ms") or t1, t1)
    print("spray: %d chats to distinct destinations in %.1f s (%.0f/s); %d error replies, %d without reply; last reply %.1f s after the last send"
          % (spray["sent"], (t1 - t0) / 1000, spray["sent"] / max((t1 - t0) / 1000, 1e-9), spray["replies"], spray["no_reply"], (t2 - t1) / 1000))
    for k, v in spray["by_kind"].items():
        print("  %-14s sent %6d  replies %s  reply ms %s" % (k, v["sent"], v["conditions"], v["reply_ms"]))
    def q(a, p):
        s = sorted(a); return s[min(len(s) - 1, max(0, -(-int(p * len(s) * 1000) // 1000) - 1))] if s else None
    def st(a):
        return {"n": len(a), "median": round(statistics.median(a), 1), "p99": round(q(a, 0.99), 1), "max": round(max(a), 1)} if a else None
    phases = {"before": [l["ms"] for l in lats if l["sent_ms"] < t0],
              "during_send": [l["ms"] for l in lats if t0 <= l["sent_ms"] <= t1],
              "until_last_reply": [l["ms"] for l in lats if t1 < l["sent_ms"] <= t2],
              "after": [l["ms"] for l in lats if l["sent_ms"] > t2]}
    out["latency"] = {k: st(v) for k, v in phases.items()}
    out["latency_all_during"] = st(phases["during_send"] + phases["until_last_reply"])
    done = next((r for r in raw if r["kind"] == "latency-done"), None)
    out["latency_done"] = done
    for k, v in out["latency"].items():
        print("latency carol@a -> dave@b %-17s %s" % (k, v))
    if done:
        print("latency chats: sent %d, received %d, error replies %d, late/pending %d" % (done["sent"], done["received"], done["error_replies"], done["pending"]))
cpu = next((r for r in raw if r["kind"] == "cpu"), None)
if cpu:
    out["cpu"] = cpu
    out["a_cpu_us_per_destination"] = round(cpu["a_cpu_ms"] * 1000 / cpu["dests"], 1)
    print("a's CPU from the first write to the last reply: %.1f s, %.1f us per destination" % (cpu["a_cpu_ms"] / 1000, out["a_cpu_us_per_destination"]))
if probes:
    out["probes"] = probes
    for p in probes:
        print("probe %-8s t=%6.1fs heap %8.0f KiB  rss %8d KiB  fds %6d  s2sout %6d  queued %6d  refusal cache %5s entries (count %5s)%s"
              % (p["phase"], p.get("t_rel_s", 0), p["heap_kb"], p["rss_kb"], p["fds"], p["s2sout"], p["sendq"],
                 p["refusal_entries"], p["refusal_count"], "  [after full GC]" if p.get("gc") else ""))
    during = [p for p in probes if p["phase"] == "during"]
    if during:
        out["max_during"] = {k: max(p[k] for p in during if isinstance(p[k], (int, float))) for k in
                             ("heap_kb", "rss_kb", "fds", "s2sout", "sendq", "refusal_entries", "refusal_count")}
        print("max during:", out["max_during"])
        base = [p["heap_kb"] for p in probes if p["phase"] == "before" and p.get("gc")]
        if base:
            per = [(p["heap_kb"] - min(base)) / p["s2sout"] for p in during if p["s2sout"] >= 100]
            if per:
                out["heap_kb_per_pending_s2sout"] = round(statistics.median(per), 1)
                print("Lua heap above the baseline per pending s2sout session (median of samples with >= 100): %.1f KiB" % out["heap_kb_per_pending_s2sout"])
json.dump(out, open(sys.argv[2], "w"), indent=1)
PY

if [[ $ONLY == fuzz ]]; then
  cp "$RAW" "$results/$TAG-raw.jsonl"
  summarize
  v6m_finish
  exit
fi

# ------------------------------------------------------------------ 2. the servers
step "building the rock from dist/ (in the temp dir)"
v6m_build_rock

step "mesh and two Prosody 13 servers"
mesh_create
P=$V6M_PREFIX
ip_a=$P::a
ip_b=$P::b
dom_a=$(v6alt_name "$ip_a")
dom_b=$(v6alt_name "$ip_b")
for s in a b; do
  dir=$V6M_TMP/srv/$s
  ip=$ip_a dom=$dom_a
  [[ $s == b ]] && ip=$ip_b dom=$dom_b
  # Info-level log: debug logging of 100,000 stanzas would be the benchmark.
  extra="log = { info = \"$dir/prosody.log\" }"
  [[ $s == a && -n $SENDQ ]] && extra+=$'\n'"s2s_send_queue_size = $SENDQ"
  prosody_create "$s" 13 "$dom" "$ip" "$extra"
  prosody_install_rock "$s" "$rock" || v6m_die "install on $s: $V6M_ERR"
  prosody_start "$s" || v6m_die "server $s did not start"
done
prosody_adduser a alice pw-alice || v6m_die "adduser alice"
prosody_adduser a carol pw-carol || v6m_die "adduser carol"
prosody_adduser b dave pw-dave || v6m_die "adduser dave"
pid_a=$(cat "$V6M_TMP/srv/a/prosody.pid")
log0=$(log_lines a)
chat_check a carol pw-carol b dave pw-dave "warm-up" 30 || v6m_die "no federation between a and b"

step "destinations: $DESTS names"
dests=$V6M_TMP/dests.tsv
V6M_N=$DESTS V6M_PFX=$P V6M_MIX="$MIX_U $MIX_S" lua5.4 -e '
package.path = "dist/?.lua;" .. package.path
local v6 = require "mod_s2s_v6mesh.v6alt"
local N = tonumber(os.getenv("V6M_N"))
local state = 7331
local function rnd() state = (state * 16807) % 2147483647; return state end
local function rb() return math.floor(rnd() / 8388608) % 256 end
local function be32(i) return string.char(math.floor(i / 16777216) % 256, math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256) end
-- the unreachable /64: <mesh prefix>:dead::/64 (outside the hub s /64; nothing routes it)
local g = {}
for h in string.gmatch(os.getenv("V6M_PFX"), "[^:]+") do g[#g + 1] = tonumber(h, 16) end
local dead = string.char(math.floor(g[1] / 256), g[1] % 256, math.floor(g[2] / 256), g[2] % 256, math.floor(g[3] / 256), g[3] % 256, 0xde, 0xad)
local function unreachable(i)
  if i % 2 == 0 then return dead .. string.rep("\0", 4) .. be32(i) end -- ::i (a run: names with -)
  return dead .. be32(i) .. string.char(rb(), rb(), rb(), rb())          -- dense host part
end
local specials = {
  function(i) return string.rep("\0", 10) .. "\255\255" .. be32(i) end,                  -- ::ffff:a.b.c.d
  function(i) return "\32\2" .. be32(i) .. string.rep("\0", 9) .. "\1" end,              -- 2002::/16 6to4
  function(i) return "\32\1\0\0" .. string.rep("\0", 8) .. be32(i) end,                  -- 2001::/32 Teredo
  function(i) return "\255\14" .. string.rep("\0", 10) .. be32(i) end,                   -- ff0e:: multicast
  function(i) return "\254\128" .. string.rep("\0", 10) .. be32(i) end,                  -- fe80:: link-local
  function(i) return "\0\100\255\155" .. string.rep("\0", 8) .. be32(i) end,             -- 64:ff9b::/96 NAT64
}
local ALPHA = "abcdefghijklmnopqrstuvwxyz234567"
local function noncanonical(i)
  local name = v6.encode(dead .. "\1\0\0\0" .. be32(i)) -- another part of the dead /64
  local label = name:sub(1, -8)
  local h = label:find("-", 1, true)
  local k = i % 3
  if h and k == 0 then return label:sub(1, h - 1) .. string.rep("a", 27 - #label) .. label:sub(h + 1) .. ".v6.alt", "uncompressed" end
  if h and k == 1 and 27 - #label >= 3 then return label:sub(1, h - 1) .. "a-" .. label:sub(h + 1) .. ".v6.alt", "misplaced-hyphen" end
  local last = ALPHA:find(label:sub(-1), 1, true) -- value + 1
  return label:sub(1, -2) .. ALPHA:sub(last + 1, last + 1) .. ".v6.alt", "padding-bits"
end
local mu, ms = string.match(os.getenv("V6M_MIX"), "(%d+) (%d+)")
mu, ms = tonumber(mu), tonumber(mu) + tonumber(ms)
local out = {}
for i = 1, N do
  local k = rnd() % 100
  if k < mu then out[i] = "unreachable\tv" .. i .. "@" .. v6.encode(unreachable(i))
  elseif k < ms then out[i] = "special\tv" .. i .. "@" .. v6.encode(specials[1 + i % #specials](i))
  else local n, why = noncanonical(i); out[i] = "noncanonical\tv" .. i .. "@" .. n end
end
io.write(table.concat(out, "\n"), "\n")' >"$dests" || v6m_die "destination list"
uniq_hosts=$(cut -f2 "$dests" | cut -d@ -f2 | sort -u | wc -l)
v6m_check_eq "$DESTS distinct destination names" "$DESTS" "$uniq_hosts"
note "$(cut -f1 "$dests" | sort | uniq -c | tr '\n' ' ')"
# Worst case of the module's refusal cache: 4096 packed addresses -> verdicts, on Lua 5.4.
cache_kb=$(lua5.4 -e 'collectgarbage("collect"); local b = collectgarbage("count"); local t = {}
for i = 1, 4096 do t[string.char(0xfd, 0x6d, i % 256, math.floor(i / 256), 1,2,3,4,5,6,7,8,9,10,11,12)] = false end
collectgarbage("collect"); print(string.format("%.0f", collectgarbage("count") - b))')
raw "{\"kind\":\"cache_estimate\",\"entries\":4096,\"kb_lua54\":$cache_kb}"

# probe PHASE GC(0|1): a's Lua heap, the module's refusal cache for a's host
# (through the upvalues of its route/remote hook), a's s2sout sessions and
# their queued stanzas; VmRSS and open fds from /proc.
probe_lua() {
  local gc=""
  (($2)) && gc='collectgarbage("collect");'
  printf '>%slocal D=%s;local h=prosody.hosts[D];local n,q=0,0;for _,s in pairs(h.s2sout) do n=n+1;if s.sendq then q=q+s.sendq.count() end end;local sf;for _,f in ipairs(h.events.get_handlers("route/remote") or {}) do for i=1,80 do local k,v=debug.getupvalue(f,i);if not k then break end;if k=="settingsFor" then sf=v end end end;local ent,cnt,tot="null","null",0;if sf then for j=1,20 do local k,v=debug.getupvalue(sf,j);if not k then break end;if k=="settingsByHost" then if v[D] then local e=0;for _ in pairs(v[D].refusals) do e=e+1 end;ent=e;cnt=v[D].refusalCount end;for _,x in pairs(v) do for _ in pairs(x.refusals) do tot=tot+1 end end end end end;return ("PROBE heap_kb=%%d s2sout=%%d sendq=%%d refusal_entries=%%s refusal_count=%%s refusal_all_hosts=%%d"):format(math.floor(collectgarbage("count")),n,q,tostring(ent),tostring(cnt),tot)' \
    "$gc" "$(v6m__lua_str "$dom_a")"
}
t_start_ms=$(now_ms)
probe() { # PHASE GC
  local t line rss fds kv
  t=$(now_ms)
  if prosody_shell a "$(probe_lua "$1" "$2")" && line=$(grep -o 'PROBE .*' <<<"$V6M_OUT"); then
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid_a/status")
    fds=$(find "/proc/$pid_a/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    kv=$(sed -E 's/^PROBE //; s/([a-z0-9_]+)=([^ ]+)/"\1":\2/g; s/ /,/g' <<<"$line")
    raw "{\"kind\":\"probe\",\"phase\":\"$1\",\"gc\":$2,\"t_ms\":$t,\"t_rel_s\":$(((t - t_start_ms) / 100))e-1,\"shell_ms\":$(($(now_ms) - t)),\"rss_kb\":$rss,\"fds\":$fds,\"load1\":$(cut -d' ' -f1 /proc/loadavg),$kv}"
  else
    raw "{\"kind\":\"probe_failed\",\"phase\":\"$1\",\"t_ms\":$t,\"out\":$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1][:300]))' "$V6M_OUT $V6M_ERR")}"
  fi
}

step "before: three probes after a full collection"
for _ in 1 2 3; do probe before 1; sleep 1; done
grep -q '"kind":"probe","phase":"before"' "$RAW" || v6m_die "probe failed: $(tail -n 1 "$RAW")"
grep '"phase":"before"' "$RAW" | tail -n 1 | grep -q '"refusal_entries":null' &&
  v6m_not_ok "probe reads the module's refusal cache" "settingsFor/settingsByHost not found among the route/remote hook's upvalues"

vol() { # NODE ARGS... : bench/volume.mjs inside that node
  local node=$1
  shift
  node_exec "$node" env -i HOME="$V6M_TMP" PATH="$V6M_PATH" "$V6M_NODE" "$root/bench/volume.mjs" "$@"
}
lat_out=$V6M_TMP/latency.out
stop_file=$V6M_TMP/latency.stop
vol a latency --service "xmpp://[$ip_a]:5222" --domain "$dom_a" --user carol --pass pw-carol --to "dave@$dom_b" \
  --rservice "xmpp://[$ip_b]:5222" --rdomain "$dom_b" --ruser dave --rpass pw-dave --interval 1000 \
  --stop-file "$stop_file" --seconds 900 >"$lat_out" 2>"$lat_out.err" &
lat_pid=$!
v6m__track_pid "$lat_pid"
client_wait_for "$lat_out" '"latency-ready"' 30 || v6m_die "latency client: $(cat "$lat_out" "$lat_out.err" | tail -n 3)"
step "latency client running; 10 s of baseline"
sleep 10

step "spray: $DESTS destinations in ${SPRAY_SECONDS}s, then until every chat has its reply"
spray_out=$V6M_TMP/spray.out
vol a spray --service "xmpp://[$ip_a]:5222" --domain "$dom_a" --user alice --pass pw-alice --names "$dests" \
  --seconds "$SPRAY_SECONDS" --linger 90 >"$spray_out" 2>"$spray_out.err" &
spray_pid=$!
v6m__track_pid "$spray_pid"
cpu0=$(cpu_ns "$pid_a")
while kill -0 "$spray_pid" 2>/dev/null; do
  probe during 0
  sleep "$PROBE_EVERY"
done
wait "$spray_pid"
cpu1=$(cpu_ns "$pid_a")
# a's CPU time (all threads) from the first write to the last error reply (plus
# the probes' shell commands and up to 90 s of the idle wait for replies)
raw "{\"kind\":\"cpu\",\"a_cpu_ms\":$(((cpu1 - cpu0) / 1000000)),\"dests\":$DESTS}"
grep -E '"event":"spray"' "$spray_out" | sed 's/^{"event":"spray",/{"kind":"spray",/' >>"$RAW"
grep -q '"kind":"spray"' "$RAW" || v6m_not_ok "spray finished" "$(tail -n 3 "$spray_out" "$spray_out.err" | tr '\n' ' ')"

step "after: s2sout sessions drain, three probes after a full collection"
for ((i = 0; i < 60; i++)); do
  probe after 0
  tail -n 1 "$RAW" | grep -q '"s2sout":[01],' && break
  sleep 1
done
for _ in 1 2 3; do probe after 1; sleep 1; done
sleep 10 # latency after
touch "$stop_file"
client_wait "$lat_pid" 30
grep -E '"event":"lat"' "$lat_out" | sed 's/^{"event":"lat",/{"kind":"lat",/' >>"$RAW"
grep -E '"event":"latency-done"' "$lat_out" | sed 's/^{"event":"latency-done",/{"kind":"latency-done",/' >>"$RAW"

# ------------------------------------------------------------------ checks
cp "$RAW" "$results/$TAG-raw.jsonl"
summarize | tee "$V6M_TMP/summary.txt"
python3 - "$results/$TAG.json" "$cache_kb" >"$V6M_TMP/checks.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
sp, probes = d.get("spray"), d.get("probes", [])
def line(ok, desc, why=""):
    print(("ok - " if ok else "not ok - ") + desc + ("" if ok or not why else " (" + why + ")"))
if sp:
    bk = sp["by_kind"]
    line(sp["no_reply"] == 0 and sp["non_error_replies"] == 0, "every one of %d chats got an error reply" % sp["sent"],
         "%d without reply, %d non-error replies" % (sp["no_reply"], sp["non_error_replies"]))
    exp = {"unreachable": "remote-server-not-found", "special": "policy-violation", "noncanonical": "remote-server-not-found"}
    for k, c in exp.items():
        v = bk.get(k, {"sent": 0, "conditions": {}})
        line(v["conditions"].get(c, 0) == v["sent"], "%s: all %d answered %s" % (k, v["sent"], c), json.dumps(v["conditions"]))
    # Not a check: reply times run from alice's write, so they include the time
    # a chat waited in her TCP stream while a fell behind (see BENCHMARKS.md).
    for k in ("special", "noncanonical", "unreachable"):
        r = bk.get(k, {}).get("reply_ms") or {}
        print("# %s: error reply %s ms after the write (median), p99 %s, max %s" % (k, r.get("median"), r.get("p99"), r.get("max")))
    print("# a took the %d chats at %.0f/s (alice wrote for %.1f s; last reply %.1f s after the first write)" % (
        sp["sent"], sp["sent"] / ((sp["last_reply_ms"] - sp["start_ms"]) / 1000), (sp["end_send_ms"] - sp["start_ms"]) / 1000,
        (sp["last_reply_ms"] - sp["start_ms"]) / 1000))
m = d.get("max_during") or {}
ent = [p["refusal_entries"] for p in probes if isinstance(p.get("refusal_entries"), int)]
cnt = [p["refusal_count"] for p in probes if isinstance(p.get("refusal_count"), int)]
line(bool(ent) and max(ent) <= 4096 and max(cnt) <= 4096, "module's refusal cache stays at most 4096 entries (max sampled %s entries, count %s, %d samples)" % (max(ent or [None]), max(cnt or [None]), len(ent)))
before = [p for p in probes if p["phase"] == "before" and p["gc"]]
after = [p for p in probes if p["phase"] == "after" and p["gc"]]
if before and after:
    b, a = min(p["heap_kb"] for p in before), min(p["heap_kb"] for p in after)
    line(a - b < 2048 + int(sys.argv[2]), "Lua heap after (full GC) within 2 MiB + one full refusal cache of before: %d -> %d KiB (%+d)" % (b, a, a - b))
    line(after[-1]["s2sout"] <= 1, "pending s2sout sessions gone afterwards (%d left)" % after[-1]["s2sout"])
ld = d.get("latency_done") or {}
line(ld.get("sent", 0) > 0 and ld.get("received") == ld.get("sent") and ld.get("error_replies") == 0,
     "carol's chats to dave@b all delivered during the run (%s of %s, %s error replies)" % (ld.get("received"), ld.get("sent"), ld.get("error_replies")))
dl = d.get("latency_all_during") or {}
line(bool(dl) and dl["max"] < 5000, "latency while the spray runs: median %s ms, p99 %s ms, max %s ms (max under 5 s)" % (dl.get("median"), dl.get("p99"), dl.get("max")))
PY
while IFS= read -r l; do
  case $l in
    "# "*) note "${l#\# }" ;;
    "ok - "*) v6m_ok "${l#ok - }" ;;
    "not ok - "*) v6m_not_ok "${l#not ok - }" ;;
  esac
done <"$V6M_TMP/checks.txt"
no_lua_errors a "$log0" "no Lua error or traceback in a's log"
check_dns_zero "the whole run"
errs=$(log_since a "$log0" | grep -cE $'\twarn\t|\terror\t')
note "a's log since the start: $(log_since a "$log0" | wc -l) lines, $errs warn/error lines; by message:"
log_since a "$log0" | awk -F'\t' '{print $2 "\t" $3}' | sed -E 's/[a-zA-Z0-9-]+\.v6\.alt/NAME/g; s/[0-9]+/N/g' | cut -c1-90 | sort | uniq -c | sort -rn | head -n 12 | sed 's/^/#       /'
cp "$RAW" "$results/$TAG-raw.jsonl"
step "done in ${SECONDS}s; bench-results/$TAG.json"
v6m_finish
