#!/usr/bin/env bash
# bench/scale.sh [N...] — the scale benchmark (issue 11, "Scale"). Run as root.
#
#   sudo bash bench/scale.sh            # N = 10 20 40
#   sudo bash bench/scale.sh 10 20      # other sizes
#
# For each N: N Prosody 13 servers, each in its own namespace with one address
# (the nodes s1..sN of one mesh, reused for every N and mode), each with two
# users (alice, bob). Every user sends one chat to the same-named user on
# every other server: N * 2 * (N - 1) chats over N * (N - 1) ordered server
# pairs (3,120 over 1,560 for N = 40). Three naming modes, one after the other
# (only one mode's servers run at a time):
#
#   v6alt         servers v1..vN named by the .v6.alt names of their addresses,
#                 with mod_s2s_v6mesh; self-signed certificates (trusted by address)
#   classic       servers c1..cN on the same nodes and addresses, named
#                 cK.scale.example, found through one dnsmasq (SRV + AAAA) in its
#                 own namespace that every node's resolv.conf names; no module;
#                 certificates signed by a CA made for the run (ssl.cafile)
#   classic_20ms  the same classic servers (restarted), the resolver's link
#                 delayed by 20 ms: `tc qdisc add dev eth0 root netem delay 20ms`
#                 in the resolver's namespace, or, on kernels without sch_netem,
#                 bench/scale-dnsdelay.py (every answer sent 20 ms late) on a
#                 second address of the resolver, named by every resolv.conf
#
# All servers: Prosody 13 from lib.sh's prosody_create defaults
# (s2s_require_encryption, s2s_secure_auth: SASL EXTERNAL, no dialback), log
# level info, accounts in internal_plain (written before start: no prosodyctl
# per user), and bench/mod_scale_probe.lua, which samples the Lua heap and, on
# SIGUSR1, writes heap and s2s-session counts (no admin shell per server).
#
# Per N and mode: the N servers start concurrently; one Node process
# (bench/scale.mjs) in its own node logs in all 2N users, then writes every
# chat in one tick; time = first write -> last chat received. Then: SIGUSR1 to
# every server (probe line), VmHWM / VmRSS from /proc, DNS packets seen by the
# harness's trap on the bridge during the mode (dns_count), queries in
# dnsmasq's log. Servers stop concurrently before the next mode.
#
# Output: a table on stdout, bench-results/scale.json (summary) and
# bench-results/scale-raw.jsonl. Knobs: SCALE_ROUNDS (every mode that often
# per N, the order rotated; default 3 for N <= 20, 2 above; the table shows
# medians), SCALE_TIMEOUT (s, per mode, 240),
# SCALE_DELAY_MS (20), SCALE_MODES ("v6alt classic classic_20ms").
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
# shellcheck source=../test/integration/lib.sh
source test/integration/lib.sh

SIZES=("$@")
((${#SIZES[@]})) || SIZES=(10 20 40)
MAXN=0
for n in "${SIZES[@]}"; do
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 2 && n <= 250)) || { echo "scale.sh: bad N '$n' (2..250)" >&2; exit 64; }
  ((n > MAXN)) && MAXN=$n
done
TIMEOUT=${SCALE_TIMEOUT:-240}
ROUNDS_SET=${SCALE_ROUNDS:-}
DELAY_MS=${SCALE_DELAY_MS:-20}
read -r -a MODES <<<"${SCALE_MODES:-v6alt classic classic_20ms}"
results=$root/bench-results
mkdir -p "$results"

v6m_setup scale
SECONDS=0
RAW=$V6M_TMP/scale-raw.jsonl
: >"$RAW"
raw() { printf '%s\n' "$1" >>"$RAW"; }
step() { printf '# [%3ds] %s\n' "$SECONDS" "$*" >&2; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
srv_pid() { cat "$V6M_TMP/srv/$1/pid" 2>/dev/null; }
cpu_ns() { # PID: CPU time (ns) used so far, all threads (schedstat)
  local f a sum=0
  for f in /proc/"$1"/task/*/schedstat; do
    read -r a _ <"$f" 2>/dev/null && sum=$((sum + a))
  done
  echo "$sum"
}

raw "$(printf '{"kind":"machine","git_head":"%s","nproc":%d,"cpu":"%s","mem_total_kb":%d,"kernel":"%s","prosody":"%s","node":"%s","date":"%s","load_at_start":"%s","sizes":"%s"}' \
  "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- dist 2>/dev/null || echo +modified-dist)" \
  "$(nproc)" "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" \
  "$(uname -r)" "$(dpkg-query -W -f='${Version}' prosody 2>/dev/null)" "$(node --version)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "${SIZES[*]}")"

# ------------------------------------------------------------------ rock (from dist/, as scripts/bench.sh does)
step "building the rock from dist/ (in the temp dir)"
v6m_build_rock

# The probe module, readable by the prosody user.
probe=$V6M_TMP/probe
mkdir -p "$probe"
cp bench/mod_scale_probe.lua "$probe/"
chmod -R a+rX "$probe"

# ------------------------------------------------------------------ mesh
step "mesh: $MAXN server nodes, a resolver node, a client node"
mesh_create
P=$V6M_PREFIX
DOM=scale.example
ip_of() { printf '%s::5ca1:%x' "$P" "$1"; }
DNS_IP=$P::5ca1:d53
DNS_IP2=$P::5ca1:d54 # the delayed resolver, when netem is missing
CLI_IP=$P::5ca1:c11
node_add dns "$DNS_IP"
node_add cli "$CLI_IP"
for ((k = 1; k <= MAXN; k++)); do
  node_add "s$k" "$(ip_of "$k")"
done
DNS_NS=$V6M_ID-dns

# How to delay the resolver's link: netem if this kernel has it.
DELAY_HOW=netem
if ! ip netns exec "$DNS_NS" tc qdisc add dev eth0 root netem delay "${DELAY_MS}ms" 2>"$V6M_TMP/netem.err"; then
  DELAY_HOW=proxy
  node_addr_add dns "$DNS_IP2"
  step "no netem here ($(tr '\n' ' ' <"$V6M_TMP/netem.err")): the delay is bench/scale-dnsdelay.py on [$DNS_IP2]:53"
else
  ip netns exec "$DNS_NS" tc qdisc del dev eth0 root
fi
raw "{\"kind\":\"delay\",\"how\":\"$DELAY_HOW\",\"ms\":$DELAY_MS}"

# Every node knows every other node's link-layer address (permanent
# neighbour entries, the same for all modes). Without them the N * (N - 1)
# simultaneous first contacts begin with a storm of multicast neighbour
# solicitations through the hub's bridge (flooded to every port); on a busy
# machine some went unanswered and connects failed with "No route to host"
# (seen at N = 40). The benchmark measures federation, not NDP.
step "permanent neighbour entries in every node"
declare -A MAC
while read -r nd _; do
  [[ -n $nd && -z ${MAC[$nd]:-} ]] && MAC[$nd]=$(ip -n "$V6M_ID-$nd" link show eth0 | awk '/link\/ether/ {print $2}')
done <"$V6M_TMP/state/addrs"
for nd in "${!MAC[@]}"; do
  while read -r other oip; do
    [[ -n $other && $other != "$nd" ]] && echo "neigh replace $oip lladdr ${MAC[$other]} dev eth0 nud permanent"
  done <"$V6M_TMP/state/addrs" >"$V6M_TMP/neigh-$nd.batch"
  ip -n "$V6M_ID-$nd" -batch "$V6M_TMP/neigh-$nd.batch" || v6m_die "neighbour entries in $nd"
done

# ------------------------------------------------------------------ certificates, servers
step "CA and $((2 * MAXN)) server configurations (v1..v$MAXN with the module, c1..c$MAXN without)"
v6m_make_ca scale

declare -A S_DOM S_IP
# internal_plain account files, written before the server ever starts.
write_accounts() { # SERVER DOMAIN
  local dir=$V6M_TMP/srv/$1 enc u
  enc=$(SCALE_HOST=$2 lua5.4 -e 'io.write((os.getenv("SCALE_HOST"):gsub("%W", function(c) return string.format("%%%02x", c:byte()) end)))')
  mkdir -p "$dir/data/$enc/accounts"
  for u in alice bob; do
    printf 'return {\n\t["password"] = "pw-%s";\n};\n' "$u" >"$dir/data/$enc/accounts/$u.dat"
  done
  chown -R prosody:prosody "$dir/data"
}
for ((k = 1; k <= MAXN; k++)); do
  ip=$(ip_of "$k")
  # Neither server of a node listens on ::1 (prosody_create gives loopback to
  # the first server of a node only): v and c servers are configured alike.
  echo none >"$V6M_TMP/node/s$k/loopback"
  for kind in v c; do
    s=$kind$k
    dir=$V6M_TMP/srv/$s
    if [[ $kind == v ]]; then dom=$(v6alt_name "$ip") || v6m_die "v6alt_name $ip"; else dom=c$k.$DOM; fi
    S_DOM[$s]=$dom
    S_IP[$s]=$ip
    extra="log = { info = \"$dir/prosody.log\" }
ssl = { certificate = \"$dir/certs/$dom.crt\"; key = \"$dir/certs/$dom.key\"; cafile = \"$ca/ca.crt\" }
plugin_paths = { \"$probe\" }
authentication = \"internal_plain\"
scale_probe_file = \"$dir/probe.jsonl\""
    opt=(--modules scale_probe)
    [[ $kind == c ]] && opt+=(--no-module)
    prosody_create "${opt[@]}" --node "s$k" "$s" 13 "$dom" "$ip" "$extra"
    if [[ $kind == c ]]; then # a CA-signed certificate instead of the self-signed one
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$dom" \
        -keyout "$dir/certs/$dom.key" -out "$dir/certs/$dom.csr" >/dev/null 2>&1 &&
        openssl x509 -req -in "$dir/certs/$dom.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
          -days 30 -extfile <(printf 'subjectAltName=DNS:%s,DNS:*.%s\nbasicConstraints=CA:FALSE\n' "$dom" "$dom") \
          -out "$dir/certs/$dom.crt" >/dev/null 2>&1 || v6m_die "certificate for $dom"
      chown prosody:prosody "$dir/certs/$dom.key" "$dir/certs/$dom.crt"
      chmod 600 "$dir/certs/$dom.key"
    fi
    write_accounts "$s" "$dom"
  done
done

# The module: installed with prosodyctl into v1, the installed tree copied to
# the other v servers (the same files; one luarocks run instead of N).
step "prosodyctl install of the rock (v1), copied to v2..v$MAXN"
prosody_install_rock v1 "$rock" || v6m_die "install on v1: $V6M_ERR"
for ((k = 2; k <= MAXN; k++)); do
  rm -rf "$V6M_TMP/srv/v$k/data/custom_plugins"
  cp -a "$V6M_TMP/srv/v1/data/custom_plugins" "$V6M_TMP/srv/v$k/data/"
done

# ------------------------------------------------------------------ the resolver
step "dnsmasq in its own namespace: SRV + AAAA for c1..c$MAXN.$DOM"
dnsconf=$V6M_TMP/dnsmasq.conf
dnslog=$V6M_TMP/dnsmasq.log
{
  echo "no-resolv"
  echo "no-hosts"
  echo "no-poll"
  echo "bind-interfaces"
  echo "listen-address=$DNS_IP"
  echo "listen-address=::1"
  echo "port=53"
  echo "local=/$DOM/"
  echo "local-ttl=0"
  echo "log-queries"
  echo "log-facility=$dnslog"
  echo "user=root"
  echo "group=root"
  echo "pid-file="
  for ((k = 1; k <= MAXN; k++)); do
    echo "host-record=c$k.$DOM,$(ip_of "$k")"
    echo "srv-host=_xmpp-server._tcp.c$k.$DOM,c$k.$DOM,5269,0,5"
  done
} >"$dnsconf"
ip netns exec "$DNS_NS" dnsmasq --keep-in-foreground --conf-file="$dnsconf" 2>"$V6M_TMP/dnsmasq.err" &
v6m__track_pid $!
for ((i = 0; i < 50; i++)); do
  ip netns exec "$DNS_NS" ss -Hlun 'sport = :53' | grep -qF "$DNS_IP" && break
  sleep 0.1
done
ip netns exec "$DNS_NS" ss -Hlun 'sport = :53' | grep -qF "$DNS_IP" || v6m_die "dnsmasq: $(cat "$V6M_TMP/dnsmasq.err")"
use_resolver() { # IP: every server node's resolv.conf names it
  local k
  for ((k = 1; k <= MAXN; k++)); do node_use_dns "s$k" "$1"; done
}
use_resolver "$DNS_IP"
got=$(node_exec s1 getent ahostsv6 "c2.$DOM" | awk 'NR == 1 {print $1}')
v6m_check_eq "s1 resolves c2.$DOM through the resolver node" "$(ip_of 2)" "$got"
if [[ $DELAY_HOW == proxy ]]; then
  ip netns exec "$DNS_NS" python3 "$root/bench/scale-dnsdelay.py" "$DNS_IP2" ::1 53 "$DELAY_MS" \
    >"$V6M_TMP/dnsdelay.out" 2>"$V6M_TMP/dnsdelay.err" &
  v6m__track_pid $!
  client_wait_for "$V6M_TMP/dnsdelay.out" '^ready' 10 || v6m_die "scale-dnsdelay.py: $(cat "$V6M_TMP/dnsdelay.err")"
fi
# Measure what a query costs from a server node, direct and delayed.
dig_ms() { # RESOLVER-IP -> ms of an SRV query from s1 (the median of 5)
  local i
  for ((i = 0; i < 5; i++)); do
    node_exec s1 dig +tries=1 +time=2 @"$1" SRV "_xmpp-server._tcp.c2.$DOM" | awk '/Query time/ {print $4}'
  done | sort -n | sed -n 3p
}
delay_on() {
  if [[ $DELAY_HOW == netem ]]; then
    ip netns exec "$DNS_NS" tc qdisc add dev eth0 root netem delay "${DELAY_MS}ms"
  else
    use_resolver "$DNS_IP2"
  fi
}
delay_off() {
  if [[ $DELAY_HOW == netem ]]; then
    ip netns exec "$DNS_NS" tc qdisc del dev eth0 root 2>/dev/null
  else
    use_resolver "$DNS_IP"
  fi
}
if command -v dig >/dev/null; then
  q0=$(dig_ms "$DNS_IP")
  delay_on
  q1=$(dig_ms "$([[ $DELAY_HOW == proxy ]] && echo "$DNS_IP2" || echo "$DNS_IP")")
  delay_off
  raw "{\"kind\":\"dig\",\"direct_ms\":${q0:-null},\"delayed_ms\":${q1:-null}}"
  step "one SRV query from s1: ${q0:-?} ms direct, ${q1:-?} ms with the delay"
fi

# ------------------------------------------------------------------ one run
start_servers() { # PREFIX N — concurrently (lib.sh prosody_start_many)
  local k names=()
  for ((k = 1; k <= $2; k++)); do names+=("$1$k"); done
  prosody_start_many "${names[@]}"
}
stop_servers() { # PREFIX N
  local k names=()
  for ((k = 1; k <= $2; k++)); do names+=("$1$k"); done
  prosody_stop_many "${names[@]}"
}

run_mode() { # N MODE ROUND [ATTEMPT] — returns 1 if not every chat arrived
  local n=$1 mode=$2 round=$3 attempt=${4:-1} pfx=v k s pid tag out servers_json dns0 dns1 dnsq0 dnsq1 t_start t_clients
  [[ $mode == classic* ]] && pfx=c
  tag=scale-$n-$mode-r$round-a$attempt
  out=$V6M_TMP/$tag.out
  servers_json=$V6M_TMP/$tag.json
  [[ $mode == classic_20ms ]] && delay_on
  dns0=$(dns_count)
  dnsq0=$(grep -c 'query\[' "$dnslog" 2>/dev/null)
  for ((k = 1; k <= n; k++)); do
    : >"$V6M_TMP/srv/$pfx$k/probe.jsonl"
    chown prosody:prosody "$V6M_TMP/srv/$pfx$k/probe.jsonl"
  done
  t_start=$SECONDS
  if ! start_servers "$pfx" "$n"; then
    v6m_not_ok "N=$n $mode: all $n servers started" "see the servers' logs"
    stop_servers "$pfx" "$n"
    [[ $mode == classic_20ms ]] && delay_off
    return 1
  fi
  {
    printf '['
    for ((k = 1; k <= n; k++)); do
      ((k > 1)) && printf ','
      printf '{"ip":"%s","domain":"%s"}' "${S_IP[$pfx$k]}" "${S_DOM[$pfx$k]}"
    done
    printf ']\n'
  } >"$servers_json"
  step "N=$n $mode: $n servers up in $((SECONDS - t_start)) s (load $(cut -d' ' -f1 /proc/loadavg)); $((2 * n)) users send $((2 * n * (n - 1))) chats"
  t_clients=$SECONDS
  # CPU time of every server (all threads, ns) before the clients start.
  local -A cpu0=()
  for ((k = 1; k <= n; k++)); do cpu0[$k]=$(cpu_ns "$(srv_pid "$pfx$k")"); done
  local load0
  load0=$(cut -d' ' -f1 /proc/loadavg)
  node_exec cli env -i HOME="$V6M_TMP" PATH="$V6M_PATH" "$V6M_NODE" "$root/bench/scale.mjs" \
    --servers "$servers_json" --tag "$tag" --timeout "$TIMEOUT" >"$out" 2>"$out.err"
  local rc=$? done_line
  done_line=$(grep -m1 '"event":"done"' "$out")
  # Prosody CPU spent from the logins to the last chat, all servers together.
  local cpu_total=0 c1
  for ((k = 1; k <= n; k++)); do
    c1=$(cpu_ns "$(srv_pid "$pfx$k")")
    cpu_total=$((cpu_total + ${c1:-0} - ${cpu0[$k]:-0}))
  done
  # Probe every server (one SIGUSR1 each), then read /proc.
  for ((k = 1; k <= n; k++)); do
    pid=$(srv_pid "$pfx$k")
    [[ -n $pid ]] && kill -USR1 "$pid"
  done
  for ((i = 0; i < 100; i++)); do
    local missing=0
    for ((k = 1; k <= n; k++)); do [[ -s $V6M_TMP/srv/$pfx$k/probe.jsonl ]] || missing=1; done
    ((missing)) || break
    sleep 0.1
  done
  local per="" line
  for ((k = 1; k <= n; k++)); do
    s=$pfx$k
    pid=$(srv_pid "$s")
    line=$(head -n 1 "$V6M_TMP/srv/$s/probe.jsonl")
    [[ -n $per ]] && per+=","
    local hwm rss
    hwm=$(hwm_kb "$pid")
    rss=$(rss_kb "$pid")
    per+="{\"server\":\"$s\",\"vmhwm_kb\":${hwm:-null},\"vmrss_kb\":${rss:-null},\"probe\":${line:-null},\"tracebacks\":$(grep -c 'stack traceback' "$(prosody_log "$s")")}"
  done
  dns1=$(dns_count)
  dnsq1=$(grep -c 'query\[' "$dnslog" 2>/dev/null)
  raw "{\"kind\":\"run\",\"n\":$n,\"mode\":\"$mode\",\"round\":$round,\"attempt\":$attempt,\"rc\":$rc,\"load_before\":$load0,\"load_after\":$(cut -d' ' -f1 /proc/loadavg),\"client_seconds\":$((SECONDS - t_clients)),\"servers_cpu_ms\":$((cpu_total / 1000000)),\"dns_packets\":$((dns1 - dns0)),\"dnsmasq_queries\":$((dnsq1 - dnsq0)),\"online\":$(grep -m1 '"event":"online"' "$out" || echo null),\"result\":${done_line:-null},\"servers\":[$per]}"
  local good=0
  [[ $rc == 0 && -n $done_line ]] && good=1
  if ((!good && attempt == 1)); then
    note "N=$n $mode round $round: attempt 1 failed (rc $rc: ${done_line:-$(tail -n 2 "$out" | tr '\n' ' ')}); one more attempt"
  elif ((good)); then
    v6m_ok "N=$n $mode round $round: all $((2 * n * (n - 1))) chats delivered ($(json_get "$done_line" elapsed_ms) ms from the first send to the last arrival)"
  else
    v6m_not_ok "N=$n $mode round $round: all $((2 * n * (n - 1))) chats delivered" "rc $rc: ${done_line:-$(tail -n 3 "$out" "$out.err" | tr '\n' ' ')}"
  fi
  if [[ $mode == v6alt ]]; then
    if ((dns1 - dns0 == 0)); then v6m_ok "N=$n v6alt round $round: 0 DNS packets"; else v6m_not_ok "N=$n v6alt round $round: 0 DNS packets" "$((dns1 - dns0)) counted"; fi
  fi
  stop_servers "$pfx" "$n"
  [[ $mode == classic_20ms ]] && delay_off
  step "N=$n $mode round $round done: $(json_get "$done_line" delivered)/$((2 * n * (n - 1))) in $(json_get "$done_line" elapsed_ms) ms, $((dns1 - dns0)) DNS packets"
  ((good))
}

# Rounds: each round runs every mode once, the order rotated from round to
# round (so no mode is always first after a quiet or a busy moment).
for n in "${SIZES[@]}"; do
  ROUNDS=${ROUNDS_SET:-$((n <= 20 ? 3 : 2))}
  for ((round = 1; round <= ROUNDS; round++)); do
    m=${#MODES[@]}
    for ((j = 0; j < m; j++)); do
      mode=${MODES[$(((j + round - 1) % m))]}
      run_mode "$n" "$mode" "$round" 1 || run_mode "$n" "$mode" "$round" 2
    done
  done
done
raw "{\"kind\":\"end\",\"seconds\":$SECONDS,\"load_at_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"

cp "$RAW" "$results/scale-raw.jsonl"
node bench/scale-report.mjs "$RAW" "$results/scale.json" || v6m_not_ok "scale report"
step "done in ${SECONDS}s; raw samples and scale.json in $results/"
v6m_finish
