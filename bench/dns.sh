# shellcheck shell=bash disable=SC2154,SC2034 # root, rock, SENDER, RECEIVER... belong to scripts/bench.sh
# bench/dns.sh — the DNS section of scripts/bench.sh (sourced by it, after the
# other sections; uses its helpers: raw, step, burst, flood, svc, srv_pid,
# cpu_ns and the harness in test/integration/lib.sh). See BENCHMARKS.md.
#
#   1. Queries per second and latency under dnsperf (UDP, one client, 100
#      queries outstanding, BENCH_DNS_SECONDS each, one server at a time) of
#        dnsmasq       the same AAAA and SRV records from a hosts file
#                      (addn-hosts + srv-host, local=/v6.alt/, no upstream)
#        dnsd-lua5.4   bin/v6alt-dnsd on Lua 5.4
#        dnsd-luajit   bin/v6alt-dnsd on LuaJIT
#        prosody       the in-Prosody listener (s2s_v6mesh_dns_listen) of
#                      Prosody 13 with the module
#      each in its own namespace on the mesh, port 5390, dnsperf in another;
#      the same query file (bench/dns-queries.lua: BENCH_DNS_NAMES distinct
#      names). A second pass sends only the AAAA queries, with a dnsmasq that
#      has only the hosts file (dnsmasq-hosts): srv-host records are a list
#      dnsmasq walks for every query. Ratios are taken to that pass's dnsmasq.
#   2. The listener's cost: bursts of BENCH_DNS_MSGS chats from the Prosody
#      with the listener (da) to another (db), per round once with the
#      listener idle, once while dnsperf sends it BENCH_DNS_COST_QPS queries/s,
#      and once while dnsperf sends the same rate to v6alt-dnsd in another
#      namespace (control: the load generator's own CPU, no work in Prosody);
#      before that, Prosody's CPU time idle and at that query rate with no
#      stanzas (the load-independent figure), and v6alt-dnsd's at that rate.
#
# Knobs: BENCH_DNS=0 skips it; BENCH_DNS_SECONDS=10 BENCH_DNS_NAMES=10000
# BENCH_DNS_ROUNDS=5 BENCH_DNS_MSGS=10000 BENCH_DNS_COST_QPS=1000.

if [[ ${BENCH_DNS:-1} == 1 ]]; then
  DNS_SECONDS=${BENCH_DNS_SECONDS:-10}
  DNS_NAMES=${BENCH_DNS_NAMES:-10000}
  DNS_ROUNDS=${BENCH_DNS_ROUNDS:-5}
  DNS_MSGS=${BENCH_DNS_MSGS:-10000}
  DNS_COST_QPS=${BENCH_DNS_COST_QPS:-1000}
  dns_t0=$SECONDS
  command -v dnsperf >/dev/null || v6m_die "missing tool: dnsperf (run scripts/install-deps.sh)"
  command -v dig >/dev/null || v6m_die "missing tool: dig (run scripts/install-deps.sh)"
  step "DNS: query file, dnsmasq, v6alt-dnsd (lua5.4, luajit), Prosody with the listener"

  # Addresses ::d0 .. ::db of the mesh prefix: clear of the six servers' ::a .. ::f and ::dead.
  declare -A DNS_IP=([cl]=$P::d0 [dnsmasq]=$P::d1 [dnsmasq-hosts]=$P::d4 [dnsd-lua5.4]=$P::d2 [dnsd-luajit]=$P::d3 [prosody]=$P::da)
  dnsdir=$V6M_TMP/dns
  mkdir -p "$dnsdir"
  chmod 755 "$dnsdir"
  gen=$(lua5.4 bench/dns-queries.lua dist "$DNS_NAMES" "$dnsdir") || v6m_die "bench/dns-queries.lua failed"
  chmod 644 "$dnsdir"/*
  grep ' AAAA$' "$dnsdir/queries.txt" >"$dnsdir/queries-aaaa.txt"
  qdigest=$(sha256sum "$dnsdir/queries.txt" | cut -c1-16)
  node_add dcl "${DNS_IP[cl]}"

  # dnsmasq: the same records from files, nothing else (no upstream, no
  # /etc/hosts, no logging; names under v6.alt it does not have: NXDOMAIN).
  # Two of them: "dnsmasq" has every record (hosts file + one srv-host line
  # per SRV name); "dnsmasq-hosts" only the hosts file, for the AAAA-only
  # pass: dnsmasq keeps srv-host records in a list it walks for every
  # query, AAAA too, so 2,000 of them cost it about 60% of its rate.
  declare -A DMQ_PID
  for v in dnsmasq dnsmasq-hosts; do
    node_add "${v//-/}" "${DNS_IP[$v]}"
    {
      echo "# $v answering the benchmark's .v6.alt names from files (bench/dns.sh, run $V6M_ID)"
      echo "port=5390"
      echo "listen-address=${DNS_IP[$v]}"
      printf '%s\n' bind-interfaces no-resolv no-hosts no-poll no-negcache local=/v6.alt/ local-ttl=3600
      echo "addn-hosts=$dnsdir/hosts"
      [[ $v == dnsmasq ]] && echo "conf-file=$dnsdir/srv.conf"
      printf '%s\n' user=root group=root pid-file=
    } >"$dnsdir/$v.conf"
    # (ip netns exec, not node_exec: $! must be dnsmasq itself, whose CPU time is read)
    ip netns exec "$(v6m__ns "${v//-/}")" dnsmasq --keep-in-foreground --conf-file="$dnsdir/$v.conf" 2>"$dnsdir/$v.err" &
    DMQ_PID[$v]=$!
    v6m__track_pid "${DMQ_PID[$v]}"
  done

  # v6alt-dnsd as nobody, as lib.sh's resolver_start runs it.
  declare -A DNSD_PID
  v6m_dnsd_copy
  for lua in lua5.4 luajit; do
    node_add "d${lua//./}" "${DNS_IP[dnsd-$lua]}"
    ip netns exec "$(v6m__ns "d${lua//./}")" setpriv --reuid=nobody --regid=nogroup --clear-groups \
      env -i PATH="$V6M_PATH" LUA_PATH="$DNSD_LUA_PATH" \
      "$lua" "$DNSD_BIN" --listen "[${DNS_IP[dnsd-$lua]}]:5390" --allow "$P::/64" --ttl 3600 \
      >"$dnsdir/dnsd-$lua.log" 2>&1 &
    DNSD_PID[$lua]=$!
    v6m__track_pid "${DNSD_PID[$lua]}"
  done

  # Prosody 13 with the module and the listener (da, also the sender of
  # part 2), and a receiver without the listener (db).
  add_server da "$P::da" "$(v6alt_name "$P::da")" 1
  add_server db "$P::db" "$(v6alt_name "$P::db")" 1
  for s in da db; do
    extra="log = { info = \"$V6M_TMP/srv/$s/prosody.log\" }"
    [[ $s == da ]] && extra+="
s2s_v6mesh_dns_listen = { \"[${S_IP[da]}]:5390\" }
s2s_v6mesh_dns_allow = { \"$P::/64\" }
s2s_v6mesh_dns_ttl = 3600"
    V6M_DNS_LISTEN=0 prosody_create "$s" 13 "${S_DOM[$s]}" "${S_IP[$s]}" "$extra"
    prosody_install_rock "$s" "$rock" || v6m_die "install on $s: $V6M_ERR"
    prosody_start "$s" || v6m_die "server $s did not start"
  done
  prosody_adduser da alice pw-alice || v6m_die "adduser on da"
  prosody_adduser db bob pw-bob || v6m_die "adduser on db"

  # Every server listening on UDP 5390.
  declare -A DNS_NODE=([dnsmasq]=dnsmasq [dnsmasq-hosts]=dnsmasqhosts [dnsd-lua5.4]=dlua54 [dnsd-luajit]=dluajit [prosody]=da)
  declare -A DNS_SRV_PID=([dnsmasq]=${DMQ_PID[dnsmasq]} [dnsmasq-hosts]=${DMQ_PID[dnsmasq-hosts]} [dnsd-lua5.4]=${DNSD_PID[lua5.4]} [dnsd-luajit]=${DNSD_PID[luajit]} [prosody]=$(srv_pid da))
  dns_servers=(dnsmasq dnsd-lua5.4 dnsd-luajit prosody)
  for d in "${dns_servers[@]}" dnsmasq-hosts; do
    for ((i = 0; i < 100; i++)); do
      [[ -n $(node_exec "${DNS_NODE[$d]}" ss -Hlun "sport = :5390") ]] && break
      sleep 0.1
    done
    ((i < 100)) || v6m_die "$d not listening on UDP 5390: $(cat "$dnsdir"/*.err "$dnsdir"/*.log 2>/dev/null | tail -n 5)"
  done

  # The same answer from each: one query of each kind, answer sections
  # compared (name, TTL, class, type, data).
  mapfile -t samples < <(awk '$2 == "AAAA" && $1 ~ /^[a-z0-9-]+\.v6\.alt$/ {print; exit}' "$dnsdir/queries.txt"
    awk '$2 == "AAAA" && $1 ~ /^[a-z]+\.[a-z0-9-]+\.v6\.alt$/ {print; exit}' "$dnsdir/queries.txt"
    awk '$2 == "SRV" {print; exit}' "$dnsdir/queries.txt")
  for q in "${samples[@]}"; do
    ref=
    same=1
    for d in "${dns_servers[@]}"; do
      # shellcheck disable=SC2086
      got=$(node_exec dcl dig @"${DNS_IP[$d]}" -p 5390 +tries=1 +time=2 +noall +answer $q | tr -s ' \t' ' ' | tr '[:upper:]' '[:lower:]')
      [[ -z $ref ]] && ref=$got
      [[ -n $got && $got == "$ref" ]] || { same=0; note "$d: '$got' (dnsmasq: '$ref')"; }
    done
    if ((same)); then v6m_ok "DNS: $q answered the same by all four ($ref)"; else v6m_not_ok "DNS: $q answered the same by all four"; fi
  done

  raw "$(printf '{"kind":"dns_machine","date":"%s","load_before":"%s","dnsperf":"%s","dnsmasq":"%s","queries":"%s","queries_sha256_16":"%s","seconds":%d,"settings":"%s"}' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(dnsperf -h 2>&1 | sed -n 's/^Version //p')" \
    "$(dnsmasq --version | head -n 1 | awk '{print $3}')" "$gen" "$qdigest" "$DNS_SECONDS" \
    "dnsperf -m udp -c 1 -T 1 -q 100 -t 5 -l $DNS_SECONDS -v (UDP, 1 client, 100 outstanding, max throughput)")"

  # dnsperf_json OUTFILE -> the summary of one dnsperf run as JSON fields
  # (latency percentiles from the per-query lines of -v, when present).
  dnsperf_json() {
    local f=$1 pct
    pct=$(awk '$1 == ">" && $2 != "T" {print $NF}' "$f" | sort -g | awk '{a[NR] = $1} END {
      if (NR == 0) {print "null null null"; exit}
      i50 = int(NR * 0.50); if (i50 < 1) i50 = 1; i99 = int(NR * 0.99); if (i99 < 1) i99 = 1; i999 = int(NR * 0.999); if (i999 < 1) i999 = 1
      printf "%.3f %.3f %.3f\n", a[i50] * 1000, a[i99] * 1000, a[i999] * 1000}')
    awk -v pct="$pct" '
      /Queries sent:/ {sent = $3}
      /Queries completed:/ {completed = $3}
      /Queries lost:/ {lost = $3}
      /Queries interrupted:/ {interrupted = $3}
      /Response codes:/ {sub(/^ *Response codes: */, ""); codes = $0}
      /Run time \(s\):/ {runtime = $4}
      /Queries per second:/ {qps = $4}
      /Average Latency \(s\):/ {avg = $4; gsub(/[(,]/, "", $6); min = $6; gsub(/[)]/, "", $8); max = $8}
      /Latency StdDev \(s\):/ {sd = $4}
      END {
        split(pct, p, " ")
        printf "\"sent\":%d,\"completed\":%d,\"lost\":%d,\"interrupted\":%d,\"codes\":\"%s\",\"run_s\":%s,\"qps\":%s,", sent, completed, lost, interrupted, codes, runtime == "" ? "null" : runtime, qps == "" ? "null" : qps
        printf "\"avg_ms\":%s,\"min_ms\":%s,\"max_ms\":%s,\"stddev_ms\":%s,\"p50_ms\":%s,\"p99_ms\":%s,\"p999_ms\":%s",
          avg == "" ? "null" : avg * 1000, min == "" ? "null" : min * 1000, max == "" ? "null" : max * 1000, sd == "" ? "null" : sd * 1000, p[1], p[2], p[3]
      }' "$f"
  }

  # -------------------------------------------------------------- 6.1 throughput
  # Pass "mixed": the whole query file, dnsmasq with every record. Pass
  # "aaaa": the AAAA queries only, dnsmasq with the hosts file only.
  for pass in mixed aaaa; do
    qf=$dnsdir/queries.txt
    servers_of_pass=("${dns_servers[@]}")
    if [[ $pass == aaaa ]]; then
      qf=$dnsdir/queries-aaaa.txt
      servers_of_pass=(dnsmasq-hosts dnsd-lua5.4 dnsd-luajit prosody)
    fi
    step "DNS: pass $pass ($(wc -l <"$qf") names), ${DNS_SECONDS} s per server"
    for d in "${servers_of_pass[@]}"; do
      node_exec dcl dnsperf -s "${DNS_IP[$d]}" -p 5390 -d "$qf" -m udp -c 1 -T 1 -q 100 -l 1 >/dev/null 2>&1 # warm-up
      load=$(cut -d' ' -f1 /proc/loadavg)
      pid=${DNS_SRV_PID[$d]}
      c0=$(cpu_ns "$pid")
      node_exec dcl dnsperf -s "${DNS_IP[$d]}" -p 5390 -d "$qf" -m udp -c 1 -T 1 -q 100 -t 5 -l "$DNS_SECONDS" -v \
        >"$dnsdir/perf-$pass-$d.out" 2>&1
      c1=$(cpu_ns "$pid")
      line="{\"kind\":\"dnsperf\",\"pass\":\"$pass\",\"server\":\"$d\",\"load_before\":$load,$(dnsperf_json "$dnsdir/perf-$pass-$d.out"),\"server_cpu_ns\":$((c1 - c0))}"
      raw "$line"
      if [[ $line == *'"codes":"NOERROR '*'(100.00%)"'* ]]; then
        step "  $pass $d: $(jget "$line" qps | cut -d. -f1) queries/s, avg $(jget "$line" avg_ms) ms, p99 $(jget "$line" p99_ms) ms, lost $(jget "$line" lost)"
        v6m_ok "DNS ($pass): $d answered $(jget "$line" completed) queries in ${DNS_SECONDS} s, all NOERROR"
      else
        v6m_not_ok "DNS ($pass): $d answered every query NOERROR" "$(grep -E 'Response codes|Queries (sent|lost)' "$dnsdir/perf-$pass-$d.out" | tr -s ' \n' ' ')"
      fi
      # 700,000 lines of -v output: keep the summary only.
      grep -v '^>' "$dnsdir/perf-$pass-$d.out" >"$dnsdir/perf-$pass-$d.summary" && rm -f "$dnsdir/perf-$pass-$d.out"
    done
  done

  # -------------------------------------------------------------- 6.2 the listener's cost
  # a) Prosody's CPU time with the listener idle and while it answers
  #    BENCH_DNS_COST_QPS queries/s, no stanzas: what the queries cost it,
  #    independent of other load on the machine (schedstat CPU time).
  #    The same rate at v6alt-dnsd (Lua 5.4) for comparison: its CPU time.
  dapid=$(srv_pid da)
  for ((rep = 1; rep <= 2; rep++)); do
    c0=$(cpu_ns "$dapid")
    t0=$(date +%s%N)
    sleep 3
    c1=$(cpu_ns "$dapid")
    t1=$(date +%s%N)
    raw "{\"kind\":\"dnscost\",\"phase\":\"cpu\",\"mode\":\"idle\",\"rep\":$rep,\"wall_ns\":$((t1 - t0)),\"cpu_ns\":$((c1 - c0))}"
    out=$dnsdir/cpu-$rep.out
    c0=$(cpu_ns "$dapid")
    t0=$(date +%s%N)
    node_exec dcl dnsperf -s "${DNS_IP[prosody]}" -p 5390 -d "$dnsdir/queries.txt" -m udp -c 1 -T 1 -Q "$DNS_COST_QPS" -l 4 >"$out" 2>&1
    c1=$(cpu_ns "$dapid")
    t1=$(date +%s%N)
    raw "{\"kind\":\"dnscost\",\"phase\":\"cpu\",\"mode\":\"listener\",\"rep\":$rep,\"wall_ns\":$((t1 - t0)),\"cpu_ns\":$((c1 - c0)),$(dnsperf_json "$out")}"
    c0=$(cpu_ns "${DNSD_PID[lua5.4]}")
    t0=$(date +%s%N)
    node_exec dcl dnsperf -s "${DNS_IP[dnsd-lua5.4]}" -p 5390 -d "$dnsdir/queries.txt" -m udp -c 1 -T 1 -Q "$DNS_COST_QPS" -l 4 >"$out" 2>&1
    c1=$(cpu_ns "${DNSD_PID[lua5.4]}")
    t1=$(date +%s%N)
    raw "{\"kind\":\"dnscost\",\"phase\":\"cpu\",\"mode\":\"dnsd\",\"rep\":$rep,\"wall_ns\":$((t1 - t0)),\"cpu_ns\":$((c1 - c0)),$(dnsperf_json "$out")}"
  done
  step "  Prosody CPU, no stanzas: $(grep '"phase":"cpu"' "$RAW" | node -e '
    const rows = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
    const per = (m) => rows.filter((r) => r.mode === m).map((r) => r.cpu_ns / r.wall_ns * 100);
    console.log("idle " + per("idle").map((x) => x.toFixed(2)).join("/") + " %, at '"$DNS_COST_QPS"' q/s " + per("listener").map((x) => x.toFixed(2)).join("/") + " % of a CPU (v6alt-dnsd at that rate: " + per("dnsd").map((x) => x.toFixed(2)).join("/") + " %)")')"
  # b) stanza bursts with the listener idle / busy / dnsperf busy elsewhere.
  step "DNS: listener cost, $DNS_ROUNDS rounds x 3 x $DNS_MSGS chats (idle / $DNS_COST_QPS q/s to the listener / to v6alt-dnsd)"
  SENDER[dnscost_idle]=da RECEIVER[dnscost_idle]=db
  SENDER[dnscost_listener]=da RECEIVER[dnscost_listener]=db
  SENDER[dnscost_control]=da RECEIVER[dnscost_control]=db
  declare -A COST_TARGET=([dnscost_listener]=prosody [dnscost_control]=dnsd-lua5.4)
  cost_modes=(dnscost_idle dnscost_listener dnscost_control)
  burst dnscost_idle 0 1000 "dnswarm" || v6m_not_ok "DNS cost: warm-up burst"
  for ((round = 1; round <= DNS_ROUNDS; round++)); do
    for ((k = 0; k < 3; k++)); do
      mode=${cost_modes[$(((k + round - 1) % 3))]}
      dp=
      if [[ $mode != dnscost_idle ]]; then
        out=$dnsdir/cost-$mode-$round.out
        ip netns exec "$(v6m__ns dcl)" dnsperf -s "${DNS_IP[${COST_TARGET[$mode]}]}" -p 5390 -d "$dnsdir/queries.txt" -m udp -c 1 -T 1 \
          -Q "$DNS_COST_QPS" -l 600 >"$out" 2>&1 &
        dp=$!
        v6m__track_pid "$dp"
        sleep 0.3
      fi
      ok=1
      burst "$mode" "$round" "$DNS_MSGS" "dns$round-$mode" || ok=0
      bline=$(tail -n 1 "$RAW")
      if [[ -n $dp ]]; then
        kill -INT "$dp" 2>/dev/null
        wait "$dp" 2>/dev/null
        raw "{\"kind\":\"dnscost\",\"pair\":\"$mode\",\"round\":$round,\"target\":\"${COST_TARGET[$mode]}\",$(dnsperf_json "$out")}"
      fi
      if ((ok)); then
        step "  round $round $mode: $(node -e 'const o=JSON.parse(require("fs").readFileSync(0));console.log(Math.round(o.count/((o.recv.last_ms-o.send.start_ms)/1000))+" msg/s, sender CPU "+(o.sender_server_cpu_ns/1000/o.count).toFixed(1)+" us/msg")' <<<"$bline")"
      else
        v6m_not_ok "DNS cost: burst $mode round $round"
      fi
    done
  done
  if prosody_running da && ! grep -q 'stack traceback' "$(prosody_log da)"; then
    v6m_ok "DNS: Prosody with the listener still running, no Lua traceback in its log"
  else
    v6m_not_ok "DNS: Prosody with the listener still running, no Lua traceback in its log"
  fi
  for lua in lua5.4 luajit; do
    if kill -0 "${DNSD_PID[$lua]}" 2>/dev/null; then
      v6m_ok "DNS: v6alt-dnsd ($lua) still running"
    else
      v6m_not_ok "DNS: v6alt-dnsd ($lua) still running" "$(cat "$dnsdir/dnsd-$lua.log")"
    fi
  done
  raw "{\"kind\":\"dns_machine\",\"phase\":\"end\",\"seconds\":$((SECONDS - dns_t0)),\"load_at_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
  step "DNS section done in $((SECONDS - dns_t0)) s"
fi
