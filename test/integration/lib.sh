# shellcheck shell=bash
# test/integration/lib.sh — shared harness for the integration tests.
#
# Source it from a test script, then:
#
#   v6m_setup SUITE_NAME          temp dir, cleanup trap (EXIT INT TERM), counters
#   mesh_create                   hub namespace with a bridge + the DNS trap
#   node_add NAME IPV6            a namespace on the bridge with that one address
#   node_addr_add NAME IPV6       another address on an existing node
#   node_hosts_add NAME IP HOST.. an /etc/hosts line seen only inside that node
#   node_exec NAME CMD...         run a command (as root) inside the node
#   dns_count / dns_queries       DNS packets seen since mesh_create (count / text)
#   dns_canary NODE               a query the trap must record (the control of "0 DNS packets")
#   syn_count_start NODE          tcpdump inside NODE (all interfaces, lo too) for TCP SYNs to port 5269
#   syn_list NODE / syn_count NODE [ERE]   those SYNs so far: "SRC DST SPORT" lines (one per connection) / how many (matching ERE)
#   prosody_create [opts] NAME VERSION DOMAIN IPV6 [EXTRA_GLOBAL_LUA]   (VERSION: see V6M_VERSIONS)
#   prosody_add_host NAME ALIAS DOMAIN [IPV6]   another VirtualHost in NAME, usable as server ALIAS
#   prosody_family VERSION        13 or 0.12: the release line a build behaves like
#   prosody_install_rock NAME ROCKFILE|ROCKS_SERVER_DIR [ROCK_NAME]
#   prosody_start NAME / prosody_stop NAME / prosody_restart NAME
#   prosody_shell NAME ARGS...    -> exit code; output in V6M_OUT / V6M_ERR
#   prosody_ctl NAME ARGS...      any prosodyctl command, same conventions
#   prosody_adduser NAME USER PASS
#   prosody_module_loaded NAME MODULE   (asks the running server)
#   prosody_log NAME              path of the server's debug log
#   prosody_log_grep NAME ERE     / prosody_log_wait NAME ERE [SECONDS] / prosody_log_tail NAME [N]
#   client_run NODE ARGS...       run client.mjs inside NODE (foreground; output in V6M_OUT)
#   client_start NODE OUTFILE ARGS...   same in the background; prints nothing, sets V6M_CLIENT_PID
#   client_wait_for OUTFILE ERE [SECONDS]   wait for a line in a background client's output
#   client_wait PID [SECONDS]     exit code of a background client
#   chat_check FROM_SRV FUSER FPASS TO_SRV TUSER TPASS BODY [TIMEOUT]   one result line
#   client_printed OUTFILE ERE / client_expect DESC OUTFILE ERE   a background client's output: test / one check
#   send_probe SRV USER PASS TO_JID [TIMEOUT]   a chat expecting an error: P_RC, P_COND, P_TEXT, P_MS
#   v6alt_name IPV6               the name, computed by the shipped Lua in dist/
#   v6m_find_rock / v6m_find_rocks_server   build/rocks (or $V6M_ROCK / $V6M_ROCKS_SERVER)
#   v6m_use_rock                  sets $rock to a private copy of the rock (exits if none)
#   v6m_ok / v6m_not_ok / v6m_check / v6m_check_eq    results (see README.md)
#   v6m_build_rock / v6m_make_ca NAME   benchmarks: a private rock from dist/ ($rock), a CA ($ca)
#   logs_lack DESC ERE SRV...     per server: no line of its whole log matches ERE
#   cert_fingerprint CERT / cert_reason VERSION   a certificate's SHA1 pin / Prosody's word for a self-signed one
#   v6m_third_party_plugins MODULE...   ../shared/third-party modules, copied for plugin_paths ($V6M_PLUGINS)
#   say / note / ere / json_get / log_lines / log_since / no_lua_errors / check_dns_zero
#                                 small helpers the suites share
#
# V6M_DNS_LISTEN=1 turns on the module's DNS listener (port 5390 on the
# server's address) in every server prosody_create makes with the module.
#
# Names of everything created carry V6M_ID (default v6m<pid>); cleanup removes
# exactly those, also on failure or Ctrl-C. Set V6M_KEEP=1 to keep the temp dir.
#
# Functions that report through V6M_OUT / V6M_ERR / V6M_CLIENT_PID must not be
# called inside $(...): the variables would be lost with the subshell.

V6M_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
V6M_REPO=$(cd "$V6M_LIB_DIR/../.." && pwd)
V6M_ID=${V6M_ID:-v6m$$}
# A ULA /64 for the mesh ("mes" + 01), clear of documentation and special ranges.
V6M_PREFIX=${V6M_PREFIX:-fd6d:6573:6801}
V6M_HUB_IP=${V6M_PREFIX}::53
V6M_HUB_NS=$V6M_ID-hub
V6M_PROSODY_012_ROOT=${V6M_PROSODY_012_ROOT:-/opt/v6mesh-prosody-0.12}
V6M_PROSODY_BUILT_ROOT=${V6M_PROSODY_BUILT_ROOT:-/opt/v6mesh-prosody}
V6M_START_TIMEOUT=${V6M_START_TIMEOUT:-30}
V6M_SHELL_TIMEOUT=${V6M_SHELL_TIMEOUT:-30}
V6M_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The system's programs first, in the suites too: a python3 shim (pyenv) in
# front takes seconds per start and lacks Debian's Python packages (slixmpp).
PATH=$V6M_PATH:$PATH
V6M_NODE=${V6M_NODE:-$(command -v node || echo node)}

V6M_TMP=
V6M_SUITE=
V6M_PASSED=0
V6M_FAILED=0
V6M_FINISHED=0
V6M_CLEANED=0
V6M_OUT=
V6M_ERR=
V6M_CLIENT_PID=

# ---------------------------------------------------------------- messages

v6m_log() { printf '# %s\n' "$*" >&2; }
v6m_die() {
  v6m_log "FATAL: $*"
  v6m_not_ok "harness: $*"
  exit 1
}

# ---------------------------------------------------------------- results

v6m_ok() {
  V6M_PASSED=$((V6M_PASSED + 1))
  printf 'ok - %s\n' "$1"
}

# v6m_not_ok DESCRIPTION [REASON]
v6m_not_ok() {
  V6M_FAILED=$((V6M_FAILED + 1))
  if [[ -n ${2:-} ]]; then
    printf 'not ok - %s (%s)\n' "$1" "$2"
  else
    printf 'not ok - %s\n' "$1"
  fi
}

# v6m_check DESCRIPTION CMD... : ok when CMD exits 0.
v6m_check() {
  local desc=$1 rc=0
  shift
  "$@" || rc=$?
  if ((rc == 0)); then v6m_ok "$desc"; else v6m_not_ok "$desc" "exit $rc: $*"; fi
  return "$rc"
}

# v6m_check_eq DESCRIPTION EXPECTED ACTUAL
v6m_check_eq() {
  if [[ $2 == "$3" ]]; then
    v6m_ok "$1"
  else
    v6m_not_ok "$1" "expected '$2', got '$3'"
    return 1
  fi
}

# Prints the per-suite line and appends "<suite> <passed> <failed>" to
# $V6M_RESULTS. Called by the EXIT trap if the script did not call it.
v6m_finish() {
  ((V6M_FINISHED)) && return 0
  V6M_FINISHED=1
  if ((V6M_PASSED + V6M_FAILED == 0)); then
    v6m_not_ok "$V6M_SUITE: no checks ran"
  fi
  printf '%s: %d passed, %d failed\n' "$V6M_SUITE" "$V6M_PASSED" "$V6M_FAILED"
  if [[ -n ${V6M_RESULTS:-} ]]; then
    printf '%s %d %d\n' "$V6M_SUITE" "$V6M_PASSED" "$V6M_FAILED" >>"$V6M_RESULTS"
  fi
}

# ---------------------------------------------------------------- setup / cleanup

v6m_setup() {
  V6M_SUITE=$1
  trap 'v6m__on_exit' EXIT
  trap 'v6m__on_signal INT 130' INT
  trap 'v6m__on_signal TERM 143' TERM
  [[ $(id -u) == 0 ]] || v6m_die "must run as root (network namespaces)"
  local tool
  for tool in ip setpriv tcpdump openssl node lua5.4 luarocks timeout ss; do
    command -v "$tool" >/dev/null || v6m_die "missing tool: $tool (run scripts/install-deps.sh)"
  done
  id prosody >/dev/null 2>&1 || v6m_die "user prosody missing (run scripts/install-deps.sh)"
  V6M_TMP=$(mktemp -d "/tmp/$V6M_ID.XXXXXX") || v6m_die "mktemp failed"
  chmod 755 "$V6M_TMP"
  mkdir -p "$V6M_TMP/state" "$V6M_TMP/node" "$V6M_TMP/srv"
  : >"$V6M_TMP/state/netns"
  : >"$V6M_TMP/state/etc"
  : >"$V6M_TMP/state/pids"
  v6m_log "$V6M_SUITE: run id $V6M_ID, temp dir $V6M_TMP"
}

v6m__on_signal() {
  trap - INT TERM
  v6m_not_ok "$V6M_SUITE: interrupted by SIG$1"
  exit "$2"
}

v6m__on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  v6m_cleanup
  v6m_finish
  if ((V6M_FAILED > 0 && rc == 0)); then rc=1; fi
  exit "$rc"
}

# Remember a pid this run started, so cleanup can end it.
v6m__track_pid() { echo "$1" >>"$V6M_TMP/state/pids"; }

v6m__kill_pid() { # pid: TERM, wait up to 10 s, then KILL
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

v6m_cleanup() {
  ((V6M_CLEANED)) && return 0
  V6M_CLEANED=1
  [[ -n $V6M_TMP && -d $V6M_TMP/state ]] || return 0
  local name pid ns dir
  # 1. servers, politely
  for dir in "$V6M_TMP"/srv/*/; do
    [[ -f $dir/pid ]] || continue
    name=$(basename "$dir")
    prosody_stop "$name" >/dev/null 2>&1
  done
  # 2. everything else this run started (clients, tcpdump, ...)
  while read -r pid; do
    [[ -n $pid ]] && v6m__kill_pid "$pid"
  done < <(tac "$V6M_TMP/state/pids")
  # 3. anything still inside our namespaces was started by this run
  while read -r ns; do
    [[ -n $ns ]] || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null
    done
  done <"$V6M_TMP/state/netns"
  # 4. namespaces (removing a node namespace removes its veth pair, too)
  while read -r ns; do
    [[ -n $ns ]] && ip netns del "$ns" 2>/dev/null
  done < <(tac "$V6M_TMP/state/netns")
  # 5. /etc/netns/<ns> directories
  while read -r dir; do
    [[ $dir == /etc/netns/"$V6M_ID"-* ]] && rm -rf -- "$dir"
  done <"$V6M_TMP/state/etc"
  # /etc/netns itself only if this run created it and nobody else uses it now
  if [[ -f $V6M_TMP/state/etc-netns-created ]]; then rmdir /etc/netns 2>/dev/null || true; fi
  if [[ ${V6M_KEEP:-0} == 1 ]]; then
    v6m_log "kept $V6M_TMP"
  else
    rm -rf -- "$V6M_TMP"
  fi
}

# ---------------------------------------------------------------- mesh

v6m__ns() { echo "$V6M_ID-$1"; }

v6m__netns_add() {
  ip netns add "$1" || v6m_die "ip netns add $1 failed"
  echo "$1" >>"$V6M_TMP/state/netns"
  ip -n "$1" link set lo up
}

# The hub: a namespace holding the bridge, one address ($V6M_HUB_IP) that every
# node uses as its DNS server and default gateway, and nothing listening on it.
# tcpdump on the bridge records every DNS packet any node sends, wherever to.
mesh_create() {
  [[ -n $V6M_TMP ]] || v6m_die "call v6m_setup first"
  v6m__netns_add "$V6M_HUB_NS"
  # The hub is a dead end: it forwards nothing, so nothing leaves the mesh.
  ip netns exec "$V6M_HUB_NS" sysctl -qw net.ipv6.conf.all.forwarding=0 net.ipv4.ip_forward=0
  ip -n "$V6M_HUB_NS" link add br0 type bridge mcast_snooping 0 || v6m_die "bridge"
  ip -n "$V6M_HUB_NS" link set br0 up
  ip -n "$V6M_HUB_NS" addr add "$V6M_HUB_IP/64" dev br0 nodad
  : >"$V6M_TMP/state/addrs"
  dns_trap_start
}

dns_trap_start() {
  local pcap=$V6M_TMP/dns.pcap err=$V6M_TMP/tcpdump.err i
  ip netns exec "$V6M_HUB_NS" tcpdump -i br0 -n -U --immediate-mode -Z root -w "$pcap" \
    'port 53 or port 853 or port 5353' 2>"$err" &
  V6M_DNS_TRAP_PID=$!
  v6m__track_pid "$V6M_DNS_TRAP_PID"
  for ((i = 0; i < 100; i++)); do
    grep -q 'listening on' "$err" 2>/dev/null && return 0
    kill -0 "$V6M_DNS_TRAP_PID" 2>/dev/null || break
    sleep 0.1
  done
  v6m_die "DNS trap (tcpdump) did not start: $(cat "$err")"
}

# Number of DNS packets (port 53/853/5353, UDP or TCP, any direction) seen on
# the bridge since mesh_create, besides dns_canary's.
dns_count() {
  sleep 0.2 # let the capture write what is in flight
  tcpdump -n -r "$V6M_TMP/dns.pcap" 2>/dev/null | grep -vcF "canary-$V6M_ID."
}

# dns_canary NODE — one DNS query from NODE for a name that only this asks,
# and a check that the trap recorded it: the positive control of a "0 DNS
# packets" check (dns_count leaves the canary out).
dns_canary() {
  local name=canary-$V6M_ID.invalid i
  node_exec "$1" dig +time=1 +tries=1 AAAA "$name" >/dev/null 2>&1
  for ((i = 0; i < 20; i++)); do
    if dns_queries | grep -qF "$name"; then
      v6m_ok "instrument: the DNS trap recorded a canary query from $1 ($name)"
      return 0
    fi
    sleep 0.1
  done
  v6m_not_ok "instrument: the DNS trap recorded a canary query from $1" "no packet for $name"
  return 1
}

# The DNS packets themselves, one line each (shows the queried names).
dns_queries() {
  tcpdump -n -r "$V6M_TMP/dns.pcap" 2>/dev/null || v6m__sigpipe_ok
}

# For a reader at the head of a pipeline: its status, except that being cut
# off by SIGPIPE (exit 141, a `grep -q` that found its line and left) is not a
# failure — under pipefail it would turn that match into a false "no match".
v6m__sigpipe_ok() { (($? == 141)); }

# syn_count_start NODE — records, inside NODE and on every interface (lo
# too), each TCP SYN without ACK to port 5269: every connection attempt that
# starts or ends in the node, whatever the address (::1, 127.0.0.1, ...).
syn_count_start() {
  local node=$1 dir=$V6M_TMP/node/$1
  [[ -d $dir ]] || v6m_die "syn_count_start: no node $node"
  # (tcp[...] cannot index IPv6 in libpcap: the flags are read from the text.)
  v6m__node_capture "$node" syn 'tcp dst port 5269'
}

# v6m__node_capture NODE NAME FILTER — tcpdump inside NODE on every interface
# into $V6M_TMP/node/NODE/NAME.pcap (once per run); waits until it listens.
v6m__node_capture() {
  local node=$1 name=$2 filter=$3 dir=$V6M_TMP/node/$1 i
  [[ -f $dir/$name.pid ]] && return 0
  node_exec "$node" tcpdump -i any -n -U --immediate-mode -Z root -w "$dir/$name.pcap" \
    "$filter" 2>"$dir/$name.err" &
  echo $! >"$dir/$name.pid"
  v6m__track_pid "$(cat "$dir/$name.pid")"
  for ((i = 0; i < 100; i++)); do
    grep -q 'listening on' "$dir/$name.err" 2>/dev/null && return 0
    sleep 0.1
  done
  v6m_die "tcpdump ($name) in $node did not start: $(cat "$dir/$name.err")"
}

# syn_list NODE — "SRC DST SPORT" for each connection attempt seen so far,
# oldest first (a SYN seen twice, e.g. on lo, or retransmitted counts once).
syn_list() {
  sleep 0.3 # let the capture write what is in flight
  tcpdump -n -r "$V6M_TMP/node/$1/syn.pcap" 2>/dev/null | grep -F 'Flags [S],' |
    sed -E 's/^.* IP6? ([^ ]+)\.([0-9]+) > ([^ ]+)\.5269: .*/\1 \3 \2/' |
    awk '!seen[$0]++'
}

# syn_count NODE [ERE] — how many of syn_list's lines (matching ERE).
syn_count() {
  syn_list "$1" | grep -cE -- "${2:-.}"
}

# Adds IPV6 to node NAME's eth0 and host routes between it and every other
# address on the mesh (so any address, in any range, works on the one bridge).
v6m__mesh_addr() {
  local name=$1 ip=$2 ns other_name other_ip other_ns
  ns=$(v6m__ns "$name")
  ip -n "$ns" addr add "$ip/128" dev eth0 nodad || v6m_die "cannot add $ip to $name"
  while read -r other_name other_ip; do
    [[ -n $other_name ]] || continue
    other_ns=$(v6m__ns "$other_name")
    if [[ $other_name != "$name" ]]; then
      ip -n "$ns" -6 route replace "$other_ip/128" dev eth0
      ip -n "$other_ns" -6 route replace "$ip/128" dev eth0
    fi
  done <"$V6M_TMP/state/addrs"
  ip -n "$V6M_HUB_NS" -6 route replace "$ip/128" dev br0
  echo "$name $ip" >>"$V6M_TMP/state/addrs"
}

# node_add NAME IPV6 — a namespace plugged into the bridge with one address.
node_add() {
  local name=$1 ip=$2 ns port idx etc
  [[ $name =~ ^[a-z0-9]+$ ]] || v6m_die "node name must be [a-z0-9]+: $name"
  [[ -d $V6M_TMP/node/$name ]] && v6m_die "node $name exists"
  ns=$(v6m__ns "$name")
  idx=$(($(find "$V6M_TMP/node" -mindepth 1 -maxdepth 1 | wc -l) + 1))
  port=p$idx
  mkdir -p "$V6M_TMP/node/$name"
  v6m__netns_add "$ns"
  ip -n "$V6M_HUB_NS" link add "$port" type veth peer name eth0 netns "$ns" || v6m_die "veth for $name"
  ip -n "$V6M_HUB_NS" link set "$port" master br0
  ip -n "$V6M_HUB_NS" link set "$port" up
  ip -n "$ns" link set eth0 up
  ip -n "$ns" -6 route add "$V6M_HUB_IP/128" dev eth0
  ip -n "$ns" -6 route add default via "$V6M_HUB_IP" dev eth0
  v6m__mesh_addr "$name" "$ip"
  echo "$ip" >"$V6M_TMP/node/$name/ip"
  # Name resolution inside the node: a DNS server address where nothing answers.
  etc=/etc/netns/$ns
  if [[ ! -d /etc/netns ]]; then
    mkdir -p /etc/netns
    echo /etc/netns >"$V6M_TMP/state/etc-netns-created"
  fi
  mkdir -p "$etc"
  echo "$etc" >>"$V6M_TMP/state/etc"
  printf '# %s: nothing answers here; every query is counted\nnameserver %s\n' \
    "$V6M_ID" "$V6M_HUB_IP" >"$etc/resolv.conf"
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$etc/hosts"
  chmod 644 "$etc/resolv.conf" "$etc/hosts"
}

node_addr_add() { v6m__mesh_addr "$1" "$2"; }

# node_hosts_add NAME IP HOSTNAME... — only that node sees it (/etc/hosts there).
node_hosts_add() {
  local name=$1 ns
  shift
  ns=$(v6m__ns "$name")
  echo "$*" >>"/etc/netns/$ns/hosts"
}

node_ip() { cat "$V6M_TMP/node/$1/ip"; }

node_exec() {
  local ns
  ns=$(v6m__ns "$1")
  shift
  ip netns exec "$ns" "$@"
}

# node_ping FROM IPV6 — one ICMPv6 echo, 2 s deadline.
node_ping() { node_exec "$1" ping -6 -c 1 -W 2 "$2" >/dev/null 2>&1; }

# ---------------------------------------------------------------- prosody

v6m__srv() { echo "$V6M_TMP/srv/$1"; }
v6m__srv_get() { cat "$(v6m__srv "$1")/$2"; }

# The Prosody builds the harness knows (scripts/install-deps.sh installs them):
#   13           13.0.1 from bookworm-backports, Lua 5.4 (/usr/bin)
#   0.12         0.12.3 from bookworm, Lua 5.4, unpacked in $V6M_PROSODY_012_ROOT
#   0.12-lua5.1  0.12.3 built from source for PUC Lua 5.1  (scripts/build-prosody.sh)
#   0.12-luajit  0.12.3 built from source for LuaJIT
#   trunk        trunk (2025-05-13) built from source for Lua 5.4
V6M_VERSIONS="13 0.12 0.12-lua5.1 0.12-luajit trunk"
v6m__bin() { # VERSION PROGRAM
  case $1 in
    13) echo "/usr/bin/$2" ;;
    0.12) echo "$V6M_PROSODY_012_ROOT/usr/bin/$2" ;;
    0.12-lua5.1 | 0.12-luajit | trunk) echo "$V6M_PROSODY_BUILT_ROOT-$1/bin/$2" ;;
    *) v6m_die "unknown Prosody version '$1' (one of: $V6M_VERSIONS)" ;;
  esac
}

# prosody_family VERSION — the release line whose behaviour a build shares:
# 13 (13, trunk) or 0.12 (every 0.12 build), for checks of Prosody's own texts.
prosody_family() {
  case $1 in
    13 | trunk) echo 13 ;;
    0.12 | 0.12-*) echo 0.12 ;;
    *) v6m_die "unknown Prosody version '$1' (one of: $V6M_VERSIONS)" ;;
  esac
}

# Runs a command as the prosody user inside the server's namespace, with a
# clean environment and HOME in the server dir (luarocks writes a cache there).
v6m__as_prosody() {
  local name=$1 dir ns
  shift
  dir=$(v6m__srv "$name")
  ns=$(v6m__ns "$(v6m__srv_get "$name" node)")
  # PROSODYCTL_LOG_LEVEL: 0.12 on Lua 5.1 warns about Lua 5.1 on every call.
  (cd "$dir" && ip netns exec "$ns" setpriv --reuid=prosody --regid=prosody --init-groups \
    env -i HOME="$dir" PATH="$V6M_PATH" LANG=C.UTF-8 PROSODYCTL_LOG_LEVEL=error "$@")
}

v6m__lua_str() { # a Lua string literal
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# prosody_create [--no-module] [--modules "m1 m2"] [--tail LUA] [--node NODE]
#                NAME VERSION DOMAIN IPV6 [EXTRA_GLOBAL_LUA]
#   NAME      server name; also its node's name unless --node is given (the node
#             is created if missing, else IPV6 is added to it if it lacks it)
#   VERSION   13 or 0.12
#   EXTRA_GLOBAL_LUA  appended to the global section (may override the defaults)
#   --tail    Lua appended after the VirtualHost (components, host options)
#   --modules extra modules for modules_enabled
#   --no-module  leave "s2s_v6mesh" out of modules_enabled
prosody_create() {
  local with_module=1 extra_modules="" tail="" node=""
  while [[ ${1:-} == --* ]]; do
    case $1 in
      --no-module) with_module=0; shift ;;
      --node) node=$2; shift 2 ;;
      --modules) extra_modules=$2; shift 2 ;;
      --tail) tail=$2; shift 2 ;;
      *) v6m_die "prosody_create: unknown option $1" ;;
    esac
  done
  local name=$1 version=$2 domain=$3 ip=$4 extra=${5:-}
  local dir mod mods cfg ifaces
  node=${node:-$name}
  v6m__bin "$version" prosody >/dev/null
  dir=$(v6m__srv "$name")
  [[ -e $dir ]] && v6m_die "server $name exists"
  if [[ ! -d $V6M_TMP/node/$node ]]; then
    node_add "$node" "$ip"
  elif ! grep -qx "$node $ip" "$V6M_TMP/state/addrs"; then
    node_addr_add "$node" "$ip"
  fi
  mkdir -p "$dir/data" "$dir/certs"
  echo "$version" >"$dir/version"
  echo "$domain" >"$dir/domain"
  echo "$ip" >"$dir/ip"
  echo "$node" >"$dir/node"
  # Loopback too, but only for the first server of a node (ports would clash).
  ifaces="\"$ip\""
  if [[ ! -f $V6M_TMP/node/$node/loopback ]]; then
    echo "$name" >"$V6M_TMP/node/$node/loopback"
    ifaces+=", \"::1\""
  fi

  v6m__self_signed "$dir/certs" "$domain"

  mods='"roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "admin_shell"; "admin_socket";'
  for mod in $extra_modules; do mods+=" \"$mod\";"; done
  ((with_module)) && mods+=' "s2s_v6mesh";'

  # Defaults; any option that EXTRA_GLOBAL_LUA assigns is left out here, so
  # overriding one causes no "Duplicate option" warning.
  local defaults=(
    "pidfile = \"$dir/prosody.pid\""
    "data_path = \"$dir/data\""
    "installer_plugin_path = \"$dir/data/custom_plugins\""
    "admin_socket = \"$dir/data/prosody.sock\""
    "log = { debug = \"$dir/prosody.log\" }"
    "interfaces = { $ifaces }"
    "local_interfaces = { $ifaces }"
    "c2s_ports = { 5222 }"
    "s2s_ports = { 5269 }"
    "c2s_direct_tls_ports = { }"
    "s2s_direct_tls_ports = { }"
    "http_ports = { }"
    "https_ports = { }"
    "c2s_require_encryption = false"
    "allow_unencrypted_plain_auth = true"
    "s2s_require_encryption = true"
    "s2s_secure_auth = true"
    "certificates = \"$dir/certs\""
    "ssl = { certificate = \"$dir/certs/$domain.crt\"; key = \"$dir/certs/$domain.key\"; }"
    "modules_enabled = { $mods }"
  )
  # V6M_DNS_LISTEN=1: every server with the module also serves .v6.alt names
  # over DNS on its own address (SPEC 6), so a suite shows that nothing else
  # changes with the in-Prosody listener on.
  if ((with_module)) && [[ ${V6M_DNS_LISTEN:-0} == 1 ]]; then
    defaults+=("s2s_v6mesh_dns_listen = { \"[$ip]:5390\" }")
  fi
  local line key
  cfg=$dir/prosody.cfg.lua
  {
    echo "-- Generated by test/integration/lib.sh for run $V6M_ID (server $name, Prosody $version)."
    echo "-- c2s allows plaintext so the test client needs no trust setup; s2s is strict."
    for line in "${defaults[@]}"; do
      key=${line%% *}
      grep -Eq "^[[:space:]]*$key[[:space:]]*=" <<<"$extra" || echo "$line"
    done
    if [[ -n $extra ]]; then printf -- '-- extra global config\n%s\n' "$extra"; fi
    echo
    echo "VirtualHost $(v6m__lua_str "$domain")"
    if [[ -n $tail ]]; then printf '%s\n' "$tail"; fi
  } >"$cfg"
  chown -R prosody:prosody "$dir"
  chmod 750 "$dir"
  chmod 600 "$dir/certs/$domain.key"
}

# prosody_add_host NAME ALIAS DOMAIN [IPV6] — one more VirtualHost DOMAIN in
# server NAME (before it starts), with a certificate of its own. With IPV6,
# that address goes on NAME's node and into its interfaces. ALIAS is then a
# server name for the helpers that take one (client_args, prosody_adduser,
# chat_check, send_probe, prosody_log): the same Prosody, as DOMAIN, reached
# at IPV6 (without IPV6: at NAME's address).
prosody_add_host() {
  local name=$1 alias=$2 domain=$3 ip=${4:-} dir adir node f
  dir=$(v6m__srv "$name")
  adir=$(v6m__srv "$alias")
  [[ -e $adir ]] && v6m_die "server $alias exists"
  node=$(v6m__srv_get "$name" node)
  if [[ -n $ip ]]; then
    grep -qx "$node $ip" "$V6M_TMP/state/addrs" || node_addr_add "$node" "$ip"
    sed -i -E "s/^interfaces = \{ /interfaces = { \"$ip\", /" "$dir/prosody.cfg.lua"
  fi
  v6m__self_signed "$dir/certs" "$domain"
  printf '\nVirtualHost %s\n    ssl = { certificate = %s; key = %s; }\n' "$(v6m__lua_str "$domain")" \
    "$(v6m__lua_str "$dir/certs/$domain.crt")" "$(v6m__lua_str "$dir/certs/$domain.key")" >>"$dir/prosody.cfg.lua"
  mkdir -p "$adir"
  cp "$dir/version" "$dir/node" "$adir/"
  echo "$domain" >"$adir/domain"
  echo "${ip:-$(cat "$dir/ip")}" >"$adir/ip"
  for f in prosody.cfg.lua prosody.log data certs; do ln -s "$dir/$f" "$adir/$f"; done
  chown -R prosody:prosody "$dir/certs"
  chown -h prosody:prosody "$adir" "$adir"/*
  chmod 600 "$dir/certs/$domain.key"
}

# cert_fingerprint CERTFILE — "AB:CD:..." (SHA1, as operators copy it from openssl).
cert_fingerprint() { openssl x509 -noout -fingerprint -sha1 -in "$1" | sed 's/^[^=]*=//'; }

# cert_reason VERSION — what Prosody's own certificate check says about a
# self-signed certificate.
cert_reason() {
  case $(prosody_family "$1") in
    13) echo "self-signed" ;;
    *) echo "not trusted" ;;
  esac
}

# v6m_third_party_plugins MODULE... — copies each third-party module (Debian
# does not package them; ../shared/third-party beside the repo, or
# $V6M_THIRD_PARTY) into this run's temp dir, where user prosody can read it
# wherever the checkout lives; sets V6M_PLUGINS, the dir for plugin_paths.
# A missing module is a failed check and ends the suite.
v6m_third_party_plugins() {
  local from=${V6M_THIRD_PARTY:-$V6M_REPO/../shared/third-party} mod src
  V6M_PLUGINS=$V6M_TMP/third-party
  for mod in "$@"; do
    src=$from/$mod/$mod.lua
    if [[ ! -r $src ]]; then
      v6m_not_ok "third-party module $mod found" "no $src (set V6M_THIRD_PARTY)"
      exit 1
    fi
    mkdir -p "$V6M_PLUGINS/$mod"
    cp "$src" "$V6M_PLUGINS/$mod/" || v6m_die "cannot copy $src"
    note "$mod from $src"
  done
  chmod -R a+rX "$V6M_PLUGINS"
}

# v6m__self_signed DIR DOMAIN — DIR/DOMAIN.crt and .key, self-signed for DOMAIN and *.DOMAIN.
v6m__self_signed() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=$2" -addext "subjectAltName=DNS:$2,DNS:*.$2" \
    -keyout "$1/$2.key" -out "$1/$2.crt" >/dev/null 2>&1 ||
    v6m_die "openssl failed for $2"
}

# prosody_install_rock NAME ROCKFILE|ROCKS_SERVER_DIR [ROCK_NAME]
#   A file: prosodyctl install FILE; a directory: prosodyctl install
#   --server=DIR ROCK_NAME (default mod_s2s_v6mesh). Runs as prosody in the
#   server's namespace (no network beyond the mesh). Output in V6M_OUT/V6M_ERR.
prosody_install_rock() {
  local name=$1 src=$2 rock=${3:-mod_s2s_v6mesh} dir version ctl abs rc=0
  dir=$(v6m__srv "$name")
  version=$(v6m__srv_get "$name" version)
  ctl=$(v6m__bin "$version" prosodyctl)
  abs=$(cd "$(dirname "$src")" && pwd)/$(basename "$src")
  [[ -e $abs ]] || { V6M_ERR="no such rock or rocks dir: $src"; return 1; }
  # The prosody user must be able to read it; else install from a copy.
  if ! v6m__as_prosody "$name" test -r "$abs" 2>/dev/null ||
    { [[ -d $abs ]] && ! v6m__as_prosody "$name" test -x "$abs" 2>/dev/null; }; then
    mkdir -p "$dir/incoming"
    cp -r "$abs" "$dir/incoming/"
    abs=$dir/incoming/$(basename "$abs")
    chown -R prosody:prosody "$dir/incoming"
  fi
  local args=(install "$abs")
  [[ -d $abs ]] && args=(install "--server=$abs" "$rock")
  # luarocks would also search its default servers on the Internet (DNS
  # queries, timeouts). A user config naming only an empty local rocks server
  # keeps the install offline ("rocks_servers = {}" would get the defaults
  # merged back in).
  if [[ ! -f $dir/no-rocks/manifest ]]; then
    mkdir -p "$dir/no-rocks"
    luarocks-admin make-manifest "$dir/no-rocks" >/dev/null 2>&1
  fi
  echo "rocks_servers = { \"$dir/no-rocks\" }" >"$dir/luarocks-config.lua"
  chown -R prosody:prosody "$dir/no-rocks" "$dir/luarocks-config.lua"
  V6M_OUT=$(v6m__as_prosody "$name" env LUAROCKS_CONFIG="$dir/luarocks-config.lua" \
    timeout 120 "$ctl" --config "$dir/prosody.cfg.lua" "${args[@]}" 2>"$dir/install.err") || rc=$?
  V6M_ERR=$(cat "$dir/install.err")
  # prosodyctl 13 exits 0 even when luarocks found nothing to install.
  if ((rc == 0)) && grep -q '^Error:' <<<"$V6M_OUT$V6M_ERR"; then rc=1; fi
  if ((rc == 0)) && [[ $rock == mod_s2s_v6mesh ]] &&
    ! compgen -G "$dir/data/custom_plugins/share/lua/*/mod_s2s_v6mesh/mod_s2s_v6mesh.lua" >/dev/null; then
    V6M_ERR+=$'
prosodyctl install reported success, but mod_s2s_v6mesh.lua is not in custom_plugins'
    rc=1
  fi
  return "$rc"
}

# prosody_install_start NAME... — for each server: installs $rock with
# prosody_install_rock and starts it, one check each; a failure reports and
# ends the suite (nothing after it could run).
prosody_install_start() {
  local n
  for n in "$@"; do
    if ! prosody_install_rock "$n" "$rock"; then
      v6m_not_ok "$n: prosodyctl install $(basename "$rock")" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
      exit 1
    fi
    v6m_check "$n: Prosody $(prosody_version "$n") installed the rock and started" prosody_start "$n" || exit 1
  done
}

# prosody_start NAME — inside its namespace as prosody, in the foreground (-F)
# as a child of this shell; waits for the admin socket and port 5269.
prosody_start() {
  local name=$1 dir version bin ns pid i
  dir=$(v6m__srv "$name")
  version=$(v6m__srv_get "$name" version)
  bin=$(v6m__bin "$version" prosody)
  ns=$(v6m__ns "$(v6m__srv_get "$name" node)")
  if prosody_running "$name"; then
    v6m_log "prosody $name is already running"
    return 1
  fi
  rm -f "$dir/data/prosody.sock"
  (cd "$dir" && exec ip netns exec "$ns" setpriv --reuid=prosody --regid=prosody --init-groups \
    env -i HOME="$dir" PATH="$V6M_PATH" LANG=C.UTF-8 "$bin" --config "$dir/prosody.cfg.lua" -F \
    >>"$dir/stdout.log" 2>&1) &
  pid=$!
  echo "$pid" >"$dir/pid"
  for ((i = 0; i < V6M_START_TIMEOUT * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null
      v6m__start_failed "$name" "exited during startup"
      rm -f "$dir/pid"
      return 1
    fi
    if [[ -S $dir/data/prosody.sock ]] &&
      [[ -n $(ip netns exec "$ns" ss -Hltn 'sport = :5269' 2>/dev/null) ]]; then
      return 0
    fi
    sleep 0.1
  done
  v6m__start_failed "$name" "not ready after ${V6M_START_TIMEOUT}s"
  return 1
}

v6m__start_failed() {
  local dir
  dir=$(v6m__srv "$1")
  v6m_log "prosody $1 ($(v6m__srv_get "$1" version)): $2; log tail:"
  tail -n 30 "$dir/prosody.log" 2>/dev/null | sed 's/^/#   /' >&2
  if [[ -s $dir/stdout.log ]]; then
    v6m_log "stdout/stderr:"
    tail -n 15 "$dir/stdout.log" | sed 's/^/#   /' >&2
  fi
}

prosody_stop() {
  local name=$1 dir pid
  dir=$(v6m__srv "$name")
  [[ -f $dir/pid ]] || return 0
  pid=$(cat "$dir/pid")
  v6m__kill_pid "$pid"
  rm -f "$dir/pid"
}

prosody_restart() { prosody_stop "$1" && prosody_start "$1"; }

prosody_running() {
  local dir
  dir=$(v6m__srv "$1")
  [[ -f $dir/pid ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

# prosody_ctl NAME ARGS... — that version's prosodyctl --config ... ARGS,
# inside the namespace as prosody. Returns its exit code; V6M_OUT / V6M_ERR.
prosody_ctl() {
  local name=$1 dir version ctl rc=0
  shift
  dir=$(v6m__srv "$name")
  version=$(v6m__srv_get "$name" version)
  ctl=$(v6m__bin "$version" prosodyctl)
  V6M_OUT=$(v6m__as_prosody "$name" timeout "$V6M_SHELL_TIMEOUT" "$ctl" --config "$dir/prosody.cfg.lua" "$@" 2>"$dir/ctl.err") || rc=$?
  V6M_ERR=$(cat "$dir/ctl.err")
  return "$rc"
}

prosody_shell() {
  local name=$1
  shift
  prosody_ctl "$name" shell "$@"
}

prosody_adduser() {
  local name=$1 user=$2 pass=$3
  prosody_ctl "$name" register "$user" "$(v6m__srv_get "$name" domain)" "$pass"
}

# prosody_module_loaded NAME MODULE — loaded globally or on the server's host
# (asks the running server: module:list()).
prosody_module_loaded() {
  local name=$1 mod=$2 where
  for where in "*" "$(prosody_domain "$name")"; do
    prosody_shell "$name" "module:list(\"$where\")" || continue
    grep -Eq "^[[:space:]]+$mod\$" <<<"$V6M_OUT" && return 0
  done
  return 1
}

prosody_domain() { v6m__srv_get "$1" domain; }
prosody_ip() { v6m__srv_get "$1" ip; }
prosody_version() { v6m__srv_get "$1" version; }
prosody_log() { echo "$(v6m__srv "$1")/prosody.log"; }
prosody_log_grep() { grep -Eq -- "$2" "$(prosody_log "$1")" 2>/dev/null; }
prosody_log_tail() { tail -n "${2:-30}" "$(prosody_log "$1")" 2>/dev/null; }

# prosody_log_wait NAME ERE [SECONDS]
prosody_log_wait() {
  local i
  for ((i = 0; i < ${3:-10} * 10; i++)); do
    prosody_log_grep "$1" "$2" && return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- XMPP client

# Default client arguments for USER on server NAME: service, domain, user, pass.
client_args() { # NAME USER PASS
  printf '%s\n' --service "xmpp://[$(prosody_ip "$1")]:5222" --domain "$(prosody_domain "$1")" \
    --user "$2" --pass "$3"
}

v6m__client_cmd() { # NODE ARGS... -> runs node client.mjs inside NODE (as root)
  local ns
  ns=$(v6m__ns "$1")
  shift
  # exec: only ever called in a subshell (client_run's $(...), client_start's &),
  # so that a background client's pid is node itself and a kill reaches it.
  exec ip netns exec "$ns" env -i HOME="$V6M_TMP" PATH="$V6M_PATH" "$V6M_NODE" "$V6M_LIB_DIR/client.mjs" "$@"
}

# client_run NODE SUBCOMMAND ARGS... — foreground. Exit code of the client;
# stdout (JSON lines) in V6M_OUT, stderr in V6M_ERR.
client_run() {
  local rc=0 err=$V6M_TMP/client.err
  V6M_OUT=$(v6m__client_cmd "$@" 2>"$err") || rc=$?
  V6M_ERR=$(cat "$err")
  return "$rc"
}

# client_start NODE OUTFILE SUBCOMMAND ARGS... — background; V6M_CLIENT_PID.
client_start() {
  local node=$1 outfile=$2
  shift 2
  v6m__client_cmd "$node" "$@" >"$outfile" 2>"$outfile.err" &
  V6M_CLIENT_PID=$!
  v6m__track_pid "$V6M_CLIENT_PID"
}

# client_wait_for OUTFILE ERE [SECONDS]
client_wait_for() {
  local i
  for ((i = 0; i < ${3:-15} * 10; i++)); do
    grep -Eq -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# client_wait PID [SECONDS] — exit code of a background client (124 on timeout).
client_wait() {
  local pid=$1 i rc=0
  for ((i = 0; i < ${2:-30} * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" || rc=$?
      return "$rc"
    fi
    sleep 0.1
  done
  v6m__kill_pid "$pid"
  return 124
}

# send_probe SRV USER PASS TO_JID [TIMEOUT]
#   sends one chat with --expect-error; sets P_RC (client exit), P_COND, P_TEXT,
#   P_MS (elapsed_ms of the error reply, or of the timeout).
send_probe() {
  local srv=$1 user=$2 pass=$3 to=$4 timeout=${5:-10} line
  local -a args
  mapfile -t args < <(client_args "$srv" "$user" "$pass")
  P_RC=0
  client_run "$(v6m__srv_get "$srv" node)" send "${args[@]}" --to "$to" --body "probe $RANDOM" --expect-error --timeout "$timeout" || P_RC=$?
  line=$(grep -E '"event":"(error-reply|timeout|unexpected-reply|connect-error)"' <<<"$V6M_OUT" | tail -n 1)
  P_COND=$(json_get "$line" condition)
  P_TEXT=$(json_get "$line" text)
  P_MS=$(json_get "$line" elapsed_ms)
  [[ -n $P_MS ]] || P_MS=-1
}

# client_printed OUTFILE ERE — a background client printed a matching line.
client_printed() { grep -Eq -- "$2" "$1" 2>/dev/null; }

# client_expect DESC OUTFILE ERE — one check on a client's output; a failure
# shows the client's presences, errors and stderr.
client_expect() {
  if client_printed "$2" "$3"; then
    v6m_ok "$1"
  else
    v6m_not_ok "$1" "$(grep -E '"event":"(muc-presence|error-reply|connect-error|client-error|room-config-error)"' "$2" 2>/dev/null |
      head -n 3 | tr '\n' ' ')$(head -c 200 "$2.err" 2>/dev/null | tr '\n' ' ')"
  fi
}

# chat_check FROM_SRV FROM_USER FROM_PASS TO_SRV TO_USER TO_PASS BODY [TIMEOUT]
# One result line: the receiver (online first, in TO_SRV's node) must get BODY
# from FROM_USER (in FROM_SRV's node) within TIMEOUT seconds (default 30). On
# failure the reason carries the sender's error reply, if any.
chat_check() {
  local from=$1 fuser=$2 fpass=$3 to=$4 tuser=$5 tpass=$6 body=$7 timeout=${8:-30}
  local desc out pid rc=0 why
  local -a rargs sargs
  desc="chat $fuser@$(prosody_domain "$from") -> $tuser@$(prosody_domain "$to") delivered"
  out=$V6M_TMP/recv-$to-$tuser.$RANDOM.out
  mapfile -t rargs < <(client_args "$to" "$tuser" "$tpass")
  mapfile -t sargs < <(client_args "$from" "$fuser" "$fpass")
  client_start "$(v6m__srv_get "$to" node)" "$out" recv "${rargs[@]}" --count 1 --timeout "$timeout"
  pid=$V6M_CLIENT_PID
  if ! client_wait_for "$out" '"presence-sent"' 30; then
    v6m_not_ok "$desc" "receiver did not get online: $(cat "$out" "$out.err" | tr '\n' ' ')"
    v6m__kill_pid "$pid"
    return 1
  fi
  client_run "$(v6m__srv_get "$from" node)" send "${sargs[@]}" --to "$tuser@$(prosody_domain "$to")" \
    --body "$body" --timeout "$timeout" --linger-ms 300
  why=$(grep -E '"(error-reply|connect-error|client-error|timeout)"' <<<"$V6M_OUT" | head -n 1)
  client_wait "$pid" $((timeout + 5)) || rc=$?
  # (BODY is matched as JSON text: keep it free of quotes and backslashes.)
  if ((rc == 0)) && grep -qF "\"body\":\"$body\"" "$out"; then
    v6m_ok "$desc"
    return 0
  fi
  local got="receiver exit $rc"
  ((rc == 2)) && got="nothing received in ${timeout}s"
  v6m_not_ok "$desc" "$got; sender: ${why:-no error reply}"
  return 1
}

# ---------------------------------------------------------------- benchmark helpers

# v6m_build_rock — a private rock built from dist/ in this run's temp dir, so
# a benchmark is independent of build/rocks and of an `npm run rock` that runs
# meanwhile; sets $rock. Dies when luarocks fails.
v6m_build_rock() {
  local src=$V6M_TMP/rocksrc version
  mkdir -p "$src/dist"
  cp -r "$V6M_REPO/dist/mod_s2s_v6mesh" "$src/dist/"
  cp -r "$V6M_REPO/bin" "$V6M_REPO/contrib" "$src/" # the rockspec installs bin/v6alt-dnsd and contrib/ (SPEC 6)
  version=$(cd "$V6M_REPO" && node -p 'require("./package.json").version')
  sed -e "s|@VERSION@|$version|" -e "s|@SOURCE@|$src|" "$V6M_REPO/rockspecs/mod_s2s_v6mesh-scm-1.rockspec.in" \
    >"$src/mod_s2s_v6mesh-$version-1.rockspec"
  (cd "$src" && luarocks --lua-version=5.4 make --tree="$V6M_TMP/rocktree" --pack-binary-rock \
    "mod_s2s_v6mesh-$version-1.rockspec") >"$V6M_TMP/rock.log" 2>&1 || v6m_die "rock build: $(tail -n 5 "$V6M_TMP/rock.log")"
  rock=$src/mod_s2s_v6mesh-$version-1.all.rock
  [[ -f $rock ]] || v6m_die "no rock built"
  chmod -R a+rX "$src"
}

# v6m_make_ca NAME — a CA (CN "mod_s2s_v6mesh NAME CA") in $V6M_TMP/ca, so that
# Prosody verifies the certificates of classic names itself; sets $ca
# (ca.crt readable by prosody, ca.key).
v6m_make_ca() {
  ca=$V6M_TMP/ca
  mkdir -p "$ca"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=mod_s2s_v6mesh $1 CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$ca/ca.key" -out "$ca/ca.crt" >/dev/null 2>&1 || v6m_die "CA"
  chmod 755 "$ca"
  chmod 644 "$ca/ca.crt"
}

# ---------------------------------------------------------------- suite helpers

say() { printf '# --- [%3d s] %s\n' "$SECONDS" "$*"; } # a step, with the seconds since the suite began
note() { printf '#     %s\n' "$*"; }
ere() { sed 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$1"; } # TEXT quoted for grep -E

# json_get JSON_LINE KEY — the value of KEY in one JSON object ("" when absent).
json_get() {
  python3 -c 'import json,sys
try: d = json.loads(sys.argv[1])
except Exception: d = {}
v = d.get(sys.argv[2])
print("" if v is None else v)' "$1" "$2"
}

log_lines() { wc -l <"$(prosody_log "$1")"; } # SRV: lines in its log so far
log_since() { tail -n +"$(($2 + 1))" "$(prosody_log "$1")" || v6m__sigpipe_ok; } # SRV FROM_LINE

# no_lua_errors SRV FROM_LINE DESC — no traceback or error line in SRV's log since FROM_LINE.
no_lua_errors() {
  local bad
  bad=$(log_since "$1" "$2" | grep -E $'[Tt]raceback|\terror\t' | head -n 3)
  if [[ -z $bad ]]; then v6m_ok "$3"; else v6m_not_ok "$3" "$(tr '\n\t' '  ' <<<"$bad")"; fi
}

# logs_lack DESC ERE SRV... — one check per server: its log exists and no
# line of it matches ERE (a missing log fails, it does not pass).
logs_lack() {
  local desc=$1 ere=$2 n log
  shift 2
  for n in "$@"; do
    log=$(prosody_log "$n")
    if [[ ! -s $log ]]; then
      v6m_not_ok "$n: $desc" "no log at $log"
    elif grep -Eq -- "$ere" "$log"; then
      v6m_not_ok "$n: $desc" "$(grep -m2 -E -- "$ere" "$log" | tr '\n\t' '  ' | cut -c1-300)"
    else
      v6m_ok "$n: $desc"
    fi
  done
}

# check_dns_zero DESC — the DNS trap has seen no packet since mesh_create.
check_dns_zero() {
  local n
  n=$(dns_count)
  if ((n == 0)); then
    v6m_ok "$1: 0 DNS packets"
  else
    v6m_not_ok "$1: 0 DNS packets" "$n counted: $(dns_queries | grep -oE '(A|AAAA|SRV)\? [^ ]+' | sort -u | head -n 6 | tr '\n' ' ')"
  fi
}

# ---------------------------------------------------------------- the module

# v6alt_name IPV6 — the .v6.alt name, computed by the shipped Lua (dist/).
v6alt_name() {
  (cd "$V6M_REPO" && V6M_ARG=$1 lua5.4 -e 'package.path="dist/?.lua;dist/?/init.lua;"..package.path
    local name, err = require("mod_s2s_v6mesh.v6alt").ip_to_name(os.getenv("V6M_ARG"))
    if not name then io.stderr:write(tostring(err), "\n"); os.exit(1) end
    print(name)')
}

# The rock to test: $V6M_ROCK if set, else the newest build/rocks/*.rock.
v6m_find_rock() {
  if [[ -n ${V6M_ROCK:-} ]]; then
    echo "$V6M_ROCK"
    return 0
  fi
  local f
  f=$(ls -t "$V6M_REPO"/build/rocks/mod_s2s_v6mesh-*.rock 2>/dev/null | head -n 1)
  [[ -n $f ]] && echo "$f"
}

# v6m_use_rock — sets $rock to a private copy (in this run's temp dir) of the
# rock under test, or reports a failed check and exits when there is none.
# The copy keeps a run independent of a build-rock.sh that runs meanwhile.
v6m_use_rock() {
  local found
  found=$(v6m_find_rock)
  if [[ -z $found ]]; then
    v6m_not_ok "rock exists" "no build/rocks/mod_s2s_v6mesh-*.rock: run npm run rock"
    exit 1
  fi
  cp "$found" "$V6M_TMP/" || v6m_die "cannot copy $found"
  rock=$V6M_TMP/$(basename "$found")
}

# The rocks server dir to test: $V6M_ROCKS_SERVER if set, else build/rocks
# (it must hold a luarocks manifest).
v6m_find_rocks_server() {
  local d=${V6M_ROCKS_SERVER:-$V6M_REPO/build/rocks}
  [[ -f $d/manifest ]] && echo "$d"
}

# ---------------------------------------------------------------- resolver and servers without the module
# Added for resolver-peers.sh (SPEC §6): the .v6.alt resolver (v6alt-dnsd with
# dnsmasq in front) for some nodes, DNS counts by host, and ejabberd (Debian's
# 23.01) as a server without the module.
#
#   dns_count_match FILTER...     like dns_count, only packets also matching a tcpdump filter
#   dns_queries_match FILTER...   those packets, one line each
#   node_use_dns NODE IP          NODE's resolv.conf names IP (port 53) instead of the dead hub
#   resolver_start NODE [IP]      v6alt-dnsd on [IP]:5390 (default: NODE's address) and dnsmasq on port 53 in front
#   node_dns_start NODE           tcpdump inside NODE (all interfaces, lo too) for DNS, the resolver's port 5390 included
#   node_dns_count NODE / node_dns_queries NODE   those packets so far (count / text)
#   ejabberd_create NAME DOMAIN IPV6 [EXTRA_YAML]   config, certificate, spool, logs in the temp dir
#   ejabberd_start NAME / ejabberd_stop NAME        foreground process in its namespace; clean stop
#   ejabberd_ctl NAME ARGS...     its ejabberdctl (exit code; output in V6M_OUT / V6M_ERR)
#   ejabberd_adduser NAME USER PASS
#   ejabberd_log NAME             path of its ejabberd.log

dns_count_match() {
  sleep 0.2 # let the capture write what is in flight
  tcpdump -n -r "$V6M_TMP/dns.pcap" "$@" 2>/dev/null | wc -l
}

dns_queries_match() {
  tcpdump -n -r "$V6M_TMP/dns.pcap" "$@" 2>/dev/null || v6m__sigpipe_ok
}

node_use_dns() {
  local ns
  ns=$(v6m__ns "$1")
  [[ -f /etc/netns/$ns/resolv.conf ]] || v6m_die "node_use_dns: no node $1"
  printf '# %s: the .v6.alt resolver (dnsmasq, port 53)\nnameserver %s\n' "$V6M_ID" "$2" \
    >"/etc/netns/$ns/resolv.conf"
}

# v6m_dnsd_copy — sets DNSD_BIN and DNSD_LUA_PATH for running v6alt-dnsd as
# nobody: a copy of bin/v6alt-dnsd and dist/ in this run's temp dir (once per
# run), which nobody can read wherever the checkout lives (a root clone under
# /root is mode 700). $V6M_DNSD, if set, names another launcher.
v6m_dnsd_copy() {
  local dir=$V6M_TMP/dnsd
  if [[ ! -d $dir ]]; then
    mkdir -p "$dir/bin"
    cp "$V6M_REPO/bin/v6alt-dnsd" "$dir/bin/" && cp -r "$V6M_REPO/dist" "$dir/dist" || v6m_die "cannot copy v6alt-dnsd to $dir"
    chmod -R a+rX "$dir"
  fi
  DNSD_BIN=${V6M_DNSD:-$dir/bin/v6alt-dnsd}
  DNSD_LUA_PATH="$dir/dist/?.lua;;"
}

# resolver_start NODE [IP] — inside NODE, on its address (or IP, another
# address of the node: e.g. when the node's server has its own DNS listener on
# [its address]:5390): v6alt-dnsd on port 5390
# (bin/v6alt-dnsd of this repo, Lua 5.4, modules from dist/, --allow the mesh
# /64, run as nobody from v6m_dnsd_copy) and dnsmasq on port 53 with only
# server=/v6.alt/ADDR#5390 and rebind-domain-ok=/v6.alt/ (plus
# stop-dns-rebind, as on many routers): no upstream, so every other name is
# REFUSED. Both tracked (cleanup ends them). Files in $V6M_TMP/node/NODE/:
# dnsd.log, dnsmasq.conf, dnsmasq.log.
resolver_start() {
  local node=$1 dir ip ns i
  dir=$V6M_TMP/node/$node
  [[ -d $dir ]] || v6m_die "resolver_start: no node $node"
  ip=${2:-$(node_ip "$node")}
  ns=$(v6m__ns "$node")
  v6m_dnsd_copy
  [[ -f $DNSD_BIN ]] || v6m_die "resolver_start: no $DNSD_BIN"
  command -v dnsmasq >/dev/null || v6m_die "missing tool: dnsmasq (run scripts/install-deps.sh)"
  ip netns exec "$ns" setpriv --reuid=nobody --regid=nogroup --clear-groups \
    env -i PATH="$V6M_PATH" LUA_PATH="$DNSD_LUA_PATH" \
    lua5.4 "$DNSD_BIN" --listen "[$ip]:5390" --listen "[::1]:5390" \
    --allow "$V6M_PREFIX::/64" >"$dir/dnsd.log" 2>&1 &
  echo $! >"$dir/dnsd.pid"
  v6m__track_pid "$(cat "$dir/dnsd.pid")"
  for ((i = 0; i < 100; i++)); do
    [[ -n $(ip netns exec "$ns" ss -Hlun "sport = :5390" 2>/dev/null) ]] && break
    kill -0 "$(cat "$dir/dnsd.pid")" 2>/dev/null || v6m_die "v6alt-dnsd exited: $(cat "$dir/dnsd.log")"
    sleep 0.1
  done
  ((i < 100)) || v6m_die "v6alt-dnsd not listening after 10 s: $(cat "$dir/dnsd.log")"
  cat >"$dir/dnsmasq.conf" <<EOF
# dnsmasq in front of v6alt-dnsd (generated by lib.sh resolver_start, run $V6M_ID)
port=53
listen-address=$ip
bind-interfaces
no-resolv
no-hosts
no-poll
server=/v6.alt/$ip#5390
rebind-domain-ok=/v6.alt/
stop-dns-rebind
log-queries
log-facility=$dir/dnsmasq.log
pid-file=$dir/dnsmasq.pid
user=root
group=root
EOF
  ip netns exec "$ns" dnsmasq --keep-in-foreground --conf-file="$dir/dnsmasq.conf" \
    2>"$dir/dnsmasq.err" &
  echo $! >"$dir/dnsmasq.fg.pid"
  v6m__track_pid "$(cat "$dir/dnsmasq.fg.pid")"
  for ((i = 0; i < 100; i++)); do
    [[ -n $(ip netns exec "$ns" ss -Hlun "sport = :53" 2>/dev/null) ]] && return 0
    kill -0 "$(cat "$dir/dnsmasq.fg.pid")" 2>/dev/null || break
    sleep 0.1
  done
  v6m_die "dnsmasq did not start: $(cat "$dir/dnsmasq.err")"
}

# node_dns_start NODE — records, inside NODE and on every interface (lo too),
# every DNS packet: ports 53, 853 and 5353, and 5390 (the .v6.alt resolver's,
# resolver_start). The hub's trap (dns_count) cannot see a resolver that runs
# inside the node itself; this capture does.
node_dns_start() {
  local node=$1 dir=$V6M_TMP/node/$1
  [[ -d $dir ]] || v6m_die "node_dns_start: no node $node"
  v6m__node_capture "$node" dns 'port 53 or port 853 or port 5353 or port 5390'
}

# node_dns_queries NODE — the packets node_dns_start recorded, one line each
# (on lo a packet may show up twice: in and out).
node_dns_queries() {
  sleep 0.3 # let the capture write what is in flight
  tcpdump -n -r "$V6M_TMP/node/$1/dns.pcap" 2>/dev/null || v6m__sigpipe_ok
}

node_dns_count() { node_dns_queries "$1" | grep -c .; }

v6m__ejd() { echo "$V6M_TMP/ejabberd/$1"; }

# ejabberd_create NAME DOMAIN IPV6 [EXTRA_YAML] — node NAME (created if
# missing) gets an ejabberd for DOMAIN: c2s and s2s on IPV6 only, STARTTLS
# offered on c2s (not required), required on s2s, dialback enabled, internal
# auth with plain passwords, a self-signed certificate for DOMAIN and
# *.DOMAIN. Its own config dir (ejabberd.yml, ejabberdctl.cfg), spool and log
# dir, Erlang node ejabberd@localhost on a fixed distribution port in the
# namespace (no epmd) and a private cookie. EXTRA_YAML is appended (top-level
# keys).
ejabberd_create() {
  local name=$1 domain=$2 ip=$3 extra=${4:-} dir
  dir=$(v6m__ejd "$name")
  [[ -e $dir ]] && v6m_die "ejabberd $name exists"
  command -v ejabberdctl >/dev/null || v6m_die "missing tool: ejabberdctl (run scripts/install-deps.sh)"
  if [[ ! -d $V6M_TMP/node/$name ]]; then
    node_add "$name" "$ip"
  elif ! grep -qx "$name $ip" "$V6M_TMP/state/addrs"; then
    node_addr_add "$name" "$ip"
  fi
  mkdir -p "$dir/conf" "$dir/spool" "$dir/logs"
  echo "$domain" >"$dir/domain"
  echo "$ip" >"$dir/ip"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/CN=$domain" -addext "subjectAltName=DNS:$domain,DNS:*.$domain" \
    -keyout "$dir/conf/key.pem" -out "$dir/conf/cert.pem" >/dev/null 2>&1 ||
    v6m_die "openssl failed for $domain"
  cat "$dir/conf/cert.pem" "$dir/conf/key.pem" >"$dir/conf/$domain.pem"
  rm -f "$dir/conf/key.pem"
  # Erlang's resolver settings: none of its own; it reads the namespace's
  # /etc/resolv.conf. (The file must exist, or every ejabberdctl call warns.)
  echo '%% empty: Erlang defaults (native lookup, /etc/resolv.conf)' >"$dir/conf/inetrc"
  cat >"$dir/conf/ejabberdctl.cfg" <<EOF
# Generated by test/integration/lib.sh for run $V6M_ID (ejabberd $name).
ERLANG_NODE=ejabberd@localhost
# No epmd: the node listens for ejabberdctl on this port of its namespace only.
ERL_DIST_PORT=5210
ERL_OPTIONS="-setcookie $(openssl rand -hex 16) -env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_BYPASS_WARNINGS=true
EOF
  cat >"$dir/conf/ejabberd.yml" <<EOF
# Generated by test/integration/lib.sh for run $V6M_ID (ejabberd $name).
hosts:
  - "$domain"
loglevel: info
log_rotate_count: 0
certfiles:
  - "$dir/conf/$domain.pem"
listen:
  -
    port: 5222
    ip: "$ip"
    module: ejabberd_c2s
    access: c2s
    starttls: true
  -
    port: 5269
    ip: "$ip"
    module: ejabberd_s2s_in
s2s_use_starttls: required
auth_method: internal
auth_password_format: plain
acme:
  auto: false
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_s2s_dialback: {}
$extra
EOF
  chown -R ejabberd:ejabberd "$dir"
  chmod 700 "$dir/conf"
}

v6m__ejabberdctl() { # NAME ARGS... — ejabberdctl with NAME's dirs, inside its namespace
  local name=$1 dir
  shift
  dir=$(v6m__ejd "$name")
  (cd / && ip netns exec "$(v6m__ns "$name")" env -i PATH="$V6M_PATH" LANG=C.UTF-8 HOME="$dir" \
    ejabberdctl --config-dir "$dir/conf" --spool "$dir/spool" --logs "$dir/logs" "$@")
}

# ejabberd_ctl NAME ARGS... — exit code; output in V6M_OUT / V6M_ERR.
ejabberd_ctl() {
  local name=$1 dir rc=0
  shift
  dir=$(v6m__ejd "$name")
  V6M_OUT=$(v6m__ejabberdctl "$name" "$@" 2>"$dir/ctl.err") || rc=$?
  V6M_ERR=$(cat "$dir/ctl.err")
  return "$rc"
}

ejabberd_adduser() { ejabberd_ctl "$1" register "$2" "$(cat "$(v6m__ejd "$1")/domain")" "$3"; }
ejabberd_log() { echo "$(v6m__ejd "$1")/logs/ejabberd.log"; }
ejabberd_domain() { cat "$(v6m__ejd "$1")/domain"; }
ejabberd_ip() { cat "$(v6m__ejd "$1")/ip"; }

# ejabberd_start NAME — `ejabberdctl foreground` (it runs the node as user
# ejabberd) in the background; waits until `ejabberdctl status` says started
# and port 5269 listens. The Erlang VM's pid is tracked: cleanup sends it
# SIGTERM, which stops the node cleanly.
ejabberd_start() {
  local name=$1 dir ns pid beam i
  dir=$(v6m__ejd "$name")
  ns=$(v6m__ns "$name")
  v6m__ejabberdctl "$name" foreground >>"$dir/stdout.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/fg.pid"
  v6m__track_pid "$pid"
  for ((i = 0; i < V6M_START_TIMEOUT * 5; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      v6m_log "ejabberd $name exited during startup; log tail:"
      tail -n 20 "$dir/stdout.log" "$dir/logs/ejabberd.log" 2>/dev/null | sed 's/^/#   /' >&2
      return 1
    fi
    if [[ -n $(ip netns exec "$ns" ss -Hltn 'sport = :5269' 2>/dev/null) ]] &&
      ejabberd_ctl "$name" status && grep -q 'is started' <<<"$V6M_OUT"; then
      beam=$(pgrep -x beam.smp | while read -r p; do
        [[ $(ip netns identify "$p" 2>/dev/null) == "$ns" ]] &&
          tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- '-sname ejabberd@localhost' && echo "$p"
      done | head -n 1)
      if [[ -n $beam ]]; then
        echo "$beam" >"$dir/beam.pid"
        v6m__track_pid "$beam"
      fi
      return 0
    fi
    sleep 0.2
  done
  v6m_log "ejabberd $name not ready after ${V6M_START_TIMEOUT}s; log tail:"
  tail -n 20 "$dir/stdout.log" "$dir/logs/ejabberd.log" 2>/dev/null | sed 's/^/#   /' >&2
  return 1
}

# ejabberd_stop NAME — `ejabberdctl stop`, then waits (up to 20 s) for the VM
# to exit; SIGTERM to it after that.
ejabberd_stop() {
  local name=$1 dir beam i
  dir=$(v6m__ejd "$name")
  [[ -f $dir/fg.pid ]] || return 0
  ejabberd_ctl "$name" stop >/dev/null 2>&1
  beam=$(cat "$dir/beam.pid" 2>/dev/null)
  for ((i = 0; i < 200; i++)); do
    kill -0 "$(cat "$dir/fg.pid")" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $beam ]] && v6m__kill_pid "$beam"
  v6m__kill_pid "$(cat "$dir/fg.pid")"
  rm -f "$dir/fg.pid" "$dir/beam.pid"
  ((i < 200))
}

# ---------------------------------------------------------------- faults
# Added for bench/faults.sh (issue 11, "Faults"): a server killed with a
# signal, a node's link taken down and brought back.
#
#   prosody_kill NAME [SIGNAL]    SIGNAL (default KILL) to the server's process; waits for it to exit
#   node_link_down NODE / node_link_up NODE   eth0 down / up again with its addresses and routes

# prosody_kill NAME [SIGNAL] — sends SIGNAL (KILL, TERM, ...) to the server
# (the process prosody_start started: Prosody itself), waits up to 20 s for it
# to exit (SIGKILL after that) and forgets the pid, so prosody_start can start
# it again. prosody_start must have run in this shell (the server is its child).
prosody_kill() {
  local name=$1 sig=${2:-KILL} dir pid i
  dir=$(v6m__srv "$name")
  [[ -f $dir/pid ]] || return 0
  pid=$(cat "$dir/pid")
  # (stderr off: bash would report the killed job as "Killed ( cd ... )")
  {
    kill -s "$sig" "$pid"
    for ((i = 0; i < 200; i++)); do
      kill -0 "$pid" || break
      sleep 0.1
    done
    ((i < 200)) || kill -KILL "$pid"
    wait "$pid"
  } 2>/dev/null
  rm -f "$dir/pid"
  return 0
}

# node_link_down NODE — `ip link set eth0 down` inside NODE. The node keeps
# its addresses (keep_addr_on_down, set here first; by default Linux drops a
# downed interface's IPv6 addresses), but the kernel drops the routes over
# eth0: node_link_up puts them back.
node_link_down() {
  local ns
  ns=$(v6m__ns "$1")
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.keep_addr_on_down=1
  ip -n "$ns" link set eth0 down
}

# node_link_up NODE — eth0 up again, with the routes node_add and
# node_addr_add made: the hub, the default route, a host route to every
# other address on the mesh.
node_link_up() {
  local node=$1 ns other_name other_ip i
  ns=$(v6m__ns "$node")
  ip -n "$ns" link set eth0 up
  for ((i = 0; i < 50; i++)); do
    ip -n "$ns" link show eth0 | grep -q 'state UP' && break
    sleep 0.1
  done
  ip -n "$ns" -6 route replace "$V6M_HUB_IP/128" dev eth0
  ip -n "$ns" -6 route replace default via "$V6M_HUB_IP" dev eth0
  while read -r other_name other_ip; do
    [[ -n $other_name && $other_name != "$node" ]] || continue
    ip -n "$ns" -6 route replace "$other_ip/128" dev eth0
  done <"$V6M_TMP/state/addrs"
}

# ---------------------------------------------------------------- many servers at once
# Added for bench/scale.sh: start and stop many servers concurrently. Each
# Prosody is a child of this shell, as prosody_start makes it (so bash reaps
# it when it exits; one started from a background subshell is left to PID 1,
# which may leave a zombie that prosody_stop waits 10 s for).
#
#   prosody_start_many NAME...   starts them all, then waits (V6M_START_TIMEOUT)
#                                until each has its admin socket and port 5269;
#                                returns how many did not (their log tails to stderr)
#   prosody_stop_many NAME...    SIGTERM to all at once, waits up to 20 s, KILL after

prosody_start_many() {
  local name dir version bin ns i bad=0 pending pid
  local -A ready=()
  for name in "$@"; do
    dir=$(v6m__srv "$name")
    version=$(v6m__srv_get "$name" version)
    bin=$(v6m__bin "$version" prosody)
    ns=$(v6m__ns "$(v6m__srv_get "$name" node)")
    if prosody_running "$name"; then
      v6m_log "prosody $name is already running"
      ready[$name]=1
      continue
    fi
    rm -f "$dir/data/prosody.sock"
    (cd "$dir" && exec ip netns exec "$ns" setpriv --reuid=prosody --regid=prosody --init-groups \
      env -i HOME="$dir" PATH="$V6M_PATH" LANG=C.UTF-8 "$bin" --config "$dir/prosody.cfg.lua" -F \
      >>"$dir/stdout.log" 2>&1) &
    echo "$!" >"$dir/pid"
  done
  for ((i = 0; i < V6M_START_TIMEOUT * 10; i++)); do
    pending=0
    for name in "$@"; do
      [[ -n ${ready[$name]:-} ]] && continue
      dir=$(v6m__srv "$name")
      pid=$(cat "$dir/pid" 2>/dev/null)
      if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
        v6m__start_failed "$name" "exited during startup"
        rm -f "$dir/pid"
        ready[$name]=failed
        bad=$((bad + 1))
        continue
      fi
      if [[ -S $dir/data/prosody.sock ]] &&
        [[ -n $(ip netns exec "$(v6m__ns "$(v6m__srv_get "$name" node)")" ss -Hltn 'sport = :5269' 2>/dev/null) ]]; then
        ready[$name]=1
      else
        pending=1
      fi
    done
    ((pending)) || return "$bad"
    sleep 0.1
  done
  for name in "$@"; do
    if [[ -z ${ready[$name]:-} ]]; then
      v6m__start_failed "$name" "not ready after ${V6M_START_TIMEOUT}s"
      bad=$((bad + 1))
    fi
  done
  return "$bad"
}

prosody_stop_many() {
  local name dir pid i left
  local -a pids=()
  for name in "$@"; do
    dir=$(v6m__srv "$name")
    [[ -f $dir/pid ]] || continue
    pid=$(cat "$dir/pid")
    rm -f "$dir/pid"
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for ((i = 0; i < 200; i++)); do
    left=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
    ((left)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  return 0
}
