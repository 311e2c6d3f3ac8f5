#!/usr/bin/env bash
# The module over a real Yggdrasil overlay (yggdrasil 0.5 from bookworm-backports).
#
#   sudo bash test/integration/yggdrasil.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# Two Yggdrasil nodes, each a harness node on the hub's bridge (so the DNS
# trap sees whatever DNS they send) with its own daemon (root, its own tun,
# no multicast, admin socket in the temp dir), peered over their mesh ULAs:
#   Y1  Prosody VERSION_A on Y1's 200::/7 address, the name of that address,
#       a MUC component groups.<name>; also the router of Y1's 300::/64
#   Y2  Prosody VERSION_B on Y2's 200::/7 address, with mod_s2s_auth_fingerprint
#       (a real third-party module: $V6M_THIRD_PARTY, default ../shared/third-party,
#       copied into the temp dir)
#   S   Prosody VERSION_A on <Y1's subnet>::2, a "subnet host": its own namespace
#       with one veth to Y1's (<subnet>::1/64 there, forwarding on, S's default
#       route); its resolv.conf names the hub, so its DNS crosses Y1 onto the bridge
# Every server has the settings recommended for Yggdrasil:
#   s2s_v6mesh_trust_all_certs = false
#   s2s_v6mesh_ranges = { ["200::/8"] = { trust_all_certs = true } }
# so node addresses (200::/8, the whole address derived from the node's key)
# are trusted by address, subnet hosts (300::/8, only a /64 prefix derived
# from the key) are not: Y2 pins S's certificate (s2s_trusted_fingerprints);
# S needs no pin, Y2 is at a 200::/8 address.
#
#   0. The premises: the daemons peer and Y1 reaches Y2 through the overlay;
#      S reaches Y2 through Y1; a canary lookup from each of Y1, Y2 and S
#      reaches the DNS trap.
#   5. (first) Control: Y2 without the pin. A chat S -> Y2 and one Y2 -> S
#      are not delivered, each sender gets an error; Y2 logs that it left
#      S's certificate to Prosody (trust_all_certs off for S's 300:: address).
#      Then Y2 restarts with the pin.
#   1. Chats Y1 <-> Y2 and S <-> Y2, both ways; from the logs: Y1 and Y2 (and
#      S, for Y2) trusted the peer by address (range 200::/8), Y2 accepted S
#      by the pinned SHA-1 fingerprint and not by address.
#   2. MUC: bob@Y2 joins a room on groups.<Y1's name> where alice@Y1 is; he
#      gets her groupchat message.
#   3. The s2s traffic ran over the overlay: tcpdump on each node's tun saw
#      port-5269 packets between Y1 and Y2 and between S and Y2 (SYNs both
#      ways), and on the hub's bridge the only TCP was the Yggdrasil peering
#      port: no port-5269 packet.
#   4. 0 DNS packets on the bridge since the canaries; no Lua traceback.
set -uo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "integration-yggdrasil-$va-$vb"
SECONDS=0

# ------------------------------------------------------------------ helpers

# ygg_conf NODE LISTEN PEER: a config with a fresh key (the PrivateKey of
# `yggdrasil -genconf -json`) in the node's dir: no multicast, tun "ygg0", the
# admin socket in the node's dir, LISTEN / PEER ("" for none); the rest are
# yggdrasil's defaults.
ygg_conf() {
  local dir=$V6M_TMP/node/$1 key listen="" peer=""
  key=$(yggdrasil -genconf -json 2>"$dir/ygg.gen.err" | sed -nE 's/^ *"PrivateKey": *"([0-9a-f]+)",?$/\1/p')
  [[ ${#key} == 128 ]] || return 1
  [[ -n $2 ]] && listen="\"$2\""
  [[ -n $3 ]] && peer="\"$3\""
  (umask 077 && printf '%s\n' "{" \
    "  \"PrivateKey\": \"$key\"," \
    "  \"Listen\": [$listen]," \
    "  \"Peers\": [$peer]," \
    "  \"MulticastInterfaces\": []," \
    "  \"AdminListen\": \"unix://$dir/ygg-admin.sock\"," \
    "  \"IfName\": \"ygg0\"" \
    "}" >"$dir/ygg.conf")
}

# ygg_start NODE ADDRESS: the daemon (root) inside NODE, tracked for cleanup
# (SIGTERM: it removes its tun); waits until ADDRESS is on ygg0, usable.
ygg_start() {
  local node=$1 addr=$2 dir=$V6M_TMP/node/$1 ns i a
  ns=$(v6m__ns "$node")
  ip netns exec "$ns" yggdrasil -useconffile "$dir/ygg.conf" >"$dir/ygg.log" 2>&1 &
  echo $! >"$dir/ygg.pid"
  v6m__track_pid "$(cat "$dir/ygg.pid")"
  for ((i = 0; i < 100; i++)); do
    a=$(ip -n "$ns" -6 addr show dev ygg0 2>/dev/null | grep -F "inet6 $addr/")
    [[ -n $a && $a != *tentative* ]] && return 0
    kill -0 "$(cat "$dir/ygg.pid")" 2>/dev/null || break
    sleep 0.1
  done
  v6m_log "yggdrasil in $node: no $addr on ygg0; log:"
  tail -n 15 "$dir/ygg.log" | sed 's/^/#   /' >&2
  return 1
}

# reach FROM ADDR SECONDS: ping until one echo comes back.
reach() {
  local i
  for ((i = 0; i < $3; i++)); do
    node_exec "$1" ping -6 -c 1 -W 1 "$2" >/dev/null 2>&1 && return 0
  done
  return 1
}

# claim NODE IPV6: the address is NODE's, configured by this suite on an
# interface of NODE's own (the tun, S's veth), so that prosody_create --node
# uses it as is instead of adding it to eth0 with routes over the bridge.
# (Only after the last node_add: node_add routes every recorded address over
# the bridge.)
claim() { echo "$1 $2" >>"$V6M_TMP/state/addrs"; }

# capture NAME NS IFACE FILTER: tcpdump into $V6M_TMP/NAME.pcap, tracked.
capture() {
  local name=$1 ns=$2 i
  ip netns exec "$ns" tcpdump -i "$3" -n -U --immediate-mode -Z root -w "$V6M_TMP/$name.pcap" "$4" \
    2>"$V6M_TMP/$name.err" &
  v6m__track_pid $!
  for ((i = 0; i < 100; i++)); do
    grep -q 'listening on' "$V6M_TMP/$name.err" 2>/dev/null && return 0
    sleep 0.1
  done
  v6m_not_ok "tcpdump $name started" "$(cat "$V6M_TMP/$name.err")"
  return 1
}
# pcap_count NAME FILTER / pcap_lines NAME FILTER
pcap_lines() { tcpdump -n -r "$V6M_TMP/$1.pcap" "$2" 2>/dev/null; }
pcap_count() { pcap_lines "$@" | grep -c .; }
# syns NAME SRC DST: SYNs (no ACK) from SRC to DST port 5269.
syns() { pcap_lines "$1" "tcp dst port 5269 and src host $2 and dst host $3" | grep -cF 'Flags [S],'; }

# log_has SRV FROM_LINE GREP_OPTION PATTERN: a matching line in SRV's log since FROM_LINE.
log_has() { log_since "$1" "$2" | grep -q "${@:3}"; }

# refused_both_ways: bob@Y2 <-> carol@S with both receivers online; each
# chat must not arrive, each sender must get an error reply.
refused_both_ways() {
  local out_b=$V6M_TMP/ctl-recv-bob.out out_c=$V6M_TMP/ctl-recv-carol.out
  local out_sb=$V6M_TMP/ctl-send-bob.out out_sc=$V6M_TMP/ctl-send-carol.out
  local pid_rb pid_rc pid_sb pid_sc line entry desc sout rout body
  local -a bargs cargs
  mapfile -t bargs < <(client_args y2 bob pw-bob)
  mapfile -t cargs < <(client_args s carol pw-carol)
  client_start y2 "$out_b" recv "${bargs[@]}" --count 1 --timeout 14
  pid_rb=$V6M_CLIENT_PID
  client_start s "$out_c" recv "${cargs[@]}" --count 1 --timeout 14
  pid_rc=$V6M_CLIENT_PID
  client_wait_for "$out_b" '"presence-sent"' 15 && client_wait_for "$out_c" '"presence-sent"' 15 ||
    v6m_not_ok "control: bob and carol online" "$(cat "$out_b" "$out_c" | tr '\n' ' ' | cut -c1-300)"
  client_start s "$out_sc" send "${cargs[@]}" --to "bob@$dom_y2" --body "unpinned S to Y2" --expect-error --timeout 12
  pid_sc=$V6M_CLIENT_PID
  client_start y2 "$out_sb" send "${bargs[@]}" --to "carol@$dom_s" --body "Y2 to unpinned S" --expect-error --timeout 12
  pid_sb=$V6M_CLIENT_PID
  client_wait "$pid_sc" 16 >/dev/null
  client_wait "$pid_sb" 16 >/dev/null
  v6m__kill_pid "$pid_rb"
  v6m__kill_pid "$pid_rc"
  for entry in "S -> Y2|$out_sc|$out_b|unpinned S to Y2" "Y2 -> S|$out_sb|$out_c|Y2 to unpinned S"; do
    IFS='|' read -r desc sout rout body <<<"$entry"
    line=$(grep -E '"event":"(error-reply|timeout|unexpected-reply)"' "$sout" | tail -n 1)
    if ! grep -qF "$body" "$rout" && [[ $(json_get "$line" event) == error-reply ]]; then
      v6m_ok "control without the pin: $desc not delivered, sender told $(json_get "$line" condition) in $(json_get "$line" elapsed_ms) ms ($(json_get "$line" text | cut -c1-120))"
    else
      v6m_not_ok "control without the pin: $desc not delivered, with an error reply" \
        "receiver: $(grep -cF "$body" "$rout") received; sender: ${line:-nothing}"
    fi
  done
}

# ------------------------------------------------------------------ setup

command -v yggdrasil >/dev/null || { v6m_not_ok "yggdrasil installed" "run scripts/install-deps.sh"; exit 1; }
v6m_third_party_plugins mod_s2s_auth_fingerprint
v6m_use_rock
ygg_version=$(yggdrasil -version | awk '/^Build version/ {print $3}')

ula1=${V6M_PREFIX}::e1
ula2=${V6M_PREFIX}::e2
peer_port=14141
mesh_create
node_add y1 "$ula1"
node_add y2 "$ula2"
ns_y1=$(v6m__ns y1)
ns_s=$(v6m__ns s)
ygg_conf y1 "tcp://[$ula1]:$peer_port" "" && ygg_conf y2 "" "tcp://[$ula1]:$peer_port" ||
  v6m_die "yggdrasil -genconf: $(cat "$V6M_TMP"/node/*/ygg.gen.err)"
ygg1=$(yggdrasil -useconffile "$V6M_TMP/node/y1/ygg.conf" -address)
ygg2=$(yggdrasil -useconffile "$V6M_TMP/node/y2/ygg.conf" -address)
subnet1=$(yggdrasil -useconffile "$V6M_TMP/node/y1/ygg.conf" -subnet)
# "300:a:b:c::/64": the zeros compressed are always the trailing 64 bits.
[[ $subnet1 == 3*::/64 ]] || v6m_die "unexpected subnet '$subnet1'"
sub_gw=${subnet1%::/64}::1
ip_s=${subnet1%::/64}::2
dom_y1=$(v6alt_name "$ygg1") && dom_y2=$(v6alt_name "$ygg2") && dom_s=$(v6alt_name "$ip_s") ||
  { v6m_not_ok "names from dist/ (v6alt_name)" "run npm run build"; exit 1; }
svc=groups.$dom_y1
note "Y1: Prosody $va at [$ygg1] = $dom_y1 (+ $svc), yggdrasil on [$ula1]:$peer_port, subnet $subnet1"
note "Y2: Prosody $vb at [$ygg2] = $dom_y2, yggdrasil peering with Y1"
note "S:  Prosody $va at [$ip_s] = $dom_s, behind Y1 ([$sub_gw])"

# The captures run from before the first packet of the overlay.
capture bridge "$V6M_HUB_NS" br0 tcp
ygg_start y1 "$ygg1" && ygg_start y2 "$ygg2" || { v6m_not_ok "yggdrasil $ygg_version daemons started"; exit 1; }
capture tun1 "$ns_y1" ygg0 'tcp port 5269'
capture tun2 "$(v6m__ns y2)" ygg0 'tcp port 5269'
t0=$SECONDS
if reach y1 "$ygg2" 20; then
  v6m_ok "yggdrasil $ygg_version: Y1 [$ygg1] and Y2 [$ygg2] peered over [$ula1]:$peer_port; Y1 pings Y2 through the overlay (after $((SECONDS - t0)) s)"
else
  v6m_not_ok "yggdrasil $ygg_version: Y1 pings Y2 through the overlay" \
    "$(tail -n 5 "$V6M_TMP/node/y1/ygg.log" "$V6M_TMP/node/y2/ygg.log" | tr '\n' ' ' | cut -c1-400)"
  exit 1
fi

# S: a subnet host behind Y1.
v6m__netns_add "$ns_s"
mkdir -p "$V6M_TMP/node/s"
echo "$ip_s" >"$V6M_TMP/node/s/ip"
ip -n "$ns_y1" link add sub0 type veth peer name eth0 netns "$ns_s" || v6m_die "veth for S"
ip -n "$ns_y1" addr add "$sub_gw/64" dev sub0 nodad
ip -n "$ns_y1" link set sub0 up
ip netns exec "$ns_y1" sysctl -qw net.ipv6.conf.all.forwarding=1
ip -n "$ns_s" addr add "$ip_s/64" dev eth0 nodad
ip -n "$ns_s" link set eth0 up
ip -n "$ns_s" -6 route add default via "$sub_gw" dev eth0 || v6m_die "S's default route"
etc=/etc/netns/$ns_s
mkdir -p "$etc"
echo "$etc" >>"$V6M_TMP/state/etc"
printf '# %s: nothing answers here (routed via Y1 onto the bridge); every query is counted\nnameserver %s\n' \
  "$V6M_ID" "$V6M_HUB_IP" >"$etc/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$etc/hosts"
chmod 644 "$etc/resolv.conf" "$etc/hosts"
claim y1 "$ygg1"
claim y2 "$ygg2"
claim s "$ip_s"
if reach s "$ygg2" 10; then
  v6m_ok "S [$ip_s] pings Y2 [$ygg2] (via Y1's tun and the overlay)"
else
  v6m_not_ok "S [$ip_s] pings Y2 [$ygg2]"
  exit 1
fi

say "0. canary lookups: the trap sees DNS from Y1, Y2 and S"
canary_pids=()
for n in y1 y2 s; do
  node_exec "$n" timeout 2 getent ahosts "canary-$n.example" >/dev/null 2>&1 &
  canary_pids+=($!)
  v6m__track_pid $!
done
wait "${canary_pids[@]}"
for entry in "y1|$ula1" "y2|$ula2" "s|$ip_s"; do
  IFS='|' read -r n src <<<"$entry"
  if (($(dns_queries_match "src host $src" | grep -cF "canary-$n.example") > 0)); then
    v6m_ok "the DNS trap saw $n's canary query from [$src]"
  else
    v6m_not_ok "the DNS trap saw $n's canary query from [$src]" "$(dns_queries | head -n 4 | tr '\n' ' ')"
  fi
done
dns_base=$(dns_count)

recommended="s2s_v6mesh_trust_all_certs = false
s2s_v6mesh_ranges = { [\"200::/8\"] = { trust_all_certs = true } }"
prosody_create --node s s "$va" "$dom_s" "$ip_s" "$recommended"
fp_s=$(cert_fingerprint "$V6M_TMP/srv/s/certs/$dom_s.crt")
[[ -n $fp_s ]] || v6m_die "no fingerprint of S's certificate"
prosody_create --node y1 --tail "Component \"$svc\" \"muc\"" y1 "$va" "$dom_y1" "$ygg1" "$recommended"
prosody_create --node y2 --modules "s2s_auth_fingerprint" y2 "$vb" "$dom_y2" "$ygg2" "$recommended
plugin_paths = { \"$V6M_PLUGINS\" }
s2s_trusted_fingerprints = { }"
prosody_install_start s y1 y2
prosody_adduser y1 alice pw-alice >/dev/null || v6m_die "adduser alice"
prosody_adduser y2 bob pw-bob >/dev/null || v6m_die "adduser bob"
prosody_adduser s carol pw-carol >/dev/null || v6m_die "adduser carol"
v6m_check "Y2 loaded the third-party mod_s2s_auth_fingerprint" prosody_module_loaded y2 s2s_auth_fingerprint
for n in y1 y2 s; do
  l=$(node_exec "$n" ss -Hltn 'sport = :5269' | awk '{print $4}' | sort | tr '\n' ' ')
  v6m_check_eq "$n: Prosody listens for s2s on [$(prosody_ip "$n")] and [::1]" \
    "$(printf '%s\n' "[$(prosody_ip "$n")]:5269" '[::1]:5269' | sort | tr '\n' ' ')" "$l"
done

# ------------------------------------------------------------------ 5
say "5. control: S <-> Y2 without the pin"
lines_y2=$(log_lines y2)
refused_both_ways
if log_has y2 "$lines_y2" -F "Leaving the certificate of $dom_s to Prosody: trust_all_certs is off for [$ip_s]"; then
  v6m_ok "control: Y2 left S's certificate to Prosody (trust_all_certs off for [$ip_s], 300::/8 not trusted by address)"
else
  v6m_not_ok "control: Y2 left S's certificate to Prosody" \
    "$(log_since y2 "$lines_y2" | grep -F "$dom_s" | grep -E $'\t(info|warn)\t' | head -n 3 | cut -f2- | tr '\n\t' '  ' | cut -c1-300)"
fi
if log_has y2 "$lines_y2" -E "Trusting $(ere "$dom_s")|Accepting SASL EXTERNAL identity from $(ere "$dom_s")"; then
  v6m_not_ok "control: Y2 neither trusted nor accepted $dom_s" "$(log_since y2 "$lines_y2" | grep -m1 -E "Trusting|Accepting SASL" | cut -f2-)"
else
  v6m_ok "control: Y2 neither trusted nor accepted $dom_s"
fi
note "Y2 logged: $(log_since y2 "$lines_y2" | grep -F "$dom_s" | grep -E $'\t(info|warn|error)\t' | cut -f2- | head -n 3 | tr '\n\t' '  ' | cut -c1-400)"
sed -i "s|^s2s_trusted_fingerprints = { }\$|s2s_trusted_fingerprints = { [\"$dom_s\"] = \"$fp_s\" }|" \
  "$(v6m__srv y2)/prosody.cfg.lua"
prosody_stop y2
v6m_check "Y2 restarted with s2s_trusted_fingerprints = { [\"$dom_s\"] = \"$fp_s\" }" prosody_start y2 || exit 1

# ------------------------------------------------------------------ 1
say "1. chats Y1 <-> Y2 and S <-> Y2"
lines_y1=$(log_lines y1)
lines_y2=$(log_lines y2)
lines_s=$(log_lines s)
chat_check y1 alice pw-alice y2 bob pw-bob "Y1 to Y2 over yggdrasil" 20
chat_check y2 bob pw-bob y1 alice pw-alice "Y2 to Y1 over yggdrasil" 20
chat_check s carol pw-carol y2 bob pw-bob "S to Y2 over yggdrasil" 20
chat_check y2 bob pw-bob s carol pw-carol "Y2 to S over yggdrasil" 20
# trusted_by SRV FROM_LINE PEER ADDRESS: SRV trusted PEER by its 200::/8 address.
trusted_by() {
  if log_has "$1" "$2" -F "Trusting $3: it is at [$4], the address its name encodes (range 200::/8)"; then
    v6m_ok "$1 trusted $3 by its address [$4] (range 200::/8)"
  else
    v6m_not_ok "$1 trusted $3 by its address [$4] (range 200::/8)" \
      "$(log_since "$1" "$2" | grep -F "$3" | grep -E 'Trusting|Leaving|s2s (connection|stream)|[Cc]ertificate' | head -n 4 | cut -f2- | tr '\n\t' '  ' | cut -c1-400)"
  fi
}
trusted_by y1 "$lines_y1" "$dom_y2" "$ygg2"
trusted_by y2 "$lines_y2" "$dom_y1" "$ygg1"
trusted_by s "$lines_s" "$dom_y2" "$ygg2"
n=$(log_since y2 "$lines_y2" | grep -cF "'$dom_s' matched SHA1 fingerprint $fp_s")
if ((n >= 2)); then
  v6m_ok "Y2 accepted S's certificate by the pin on its streams both ways ($n x \"'$dom_s' matched SHA1 fingerprint\")"
else
  v6m_not_ok "Y2 accepted S's certificate by the pin on its streams both ways" "$n matches: $(log_since y2 "$lines_y2" | grep -F "$dom_s" | grep -E $'\t(info|warn)\t' | head -n 4 | cut -f2- | tr '\n\t' '  ' | cut -c1-400)"
fi
if log_has y2 "$lines_y2" -F "Trusting $dom_s"; then
  v6m_not_ok "Y2 did not trust S by its 300:: address" "$(log_since y2 "$lines_y2" | grep -m1 -F "Trusting $dom_s" | cut -f2-)"
else
  v6m_ok "Y2 did not trust S by its 300:: address (only the pin)"
fi

# ------------------------------------------------------------------ 2
say "2. MUC on $svc: bob@Y2 joins"
room=yggroom@$svc
out_l=$V6M_TMP/muc-alice.out
out_r=$V6M_TMP/muc-bob.out
mapfile -t aargs < <(client_args y1 alice pw-alice)
mapfile -t bargs < <(client_args y2 bob pw-bob)
client_start y1 "$out_l" muc "${aargs[@]}" --room "$room/alice" --stay 25 --say "hello from alice over yggdrasil" --say-when bob
pid_l=$V6M_CLIENT_PID
if client_wait_for "$out_l" '"event":"joined"' 15; then
  client_start y2 "$out_r" muc "${bargs[@]}" --room "$room/bob" --stay 20
  pid_r=$V6M_CLIENT_PID
  client_wait_for "$out_r" "\"event\":\"groupchat\",\"from\":\"$room/alice\"" 15
  client_expect "bob@$dom_y2 joins $room (self-presence)" "$out_r" '"event":"joined"'
  client_expect "bob@$dom_y2 gets alice's groupchat message from $room" "$out_r" \
    "\"event\":\"groupchat\",\"from\":\"$room/alice\",\"body\":\"hello from alice over yggdrasil"
  v6m__kill_pid "$pid_r"
else
  v6m_not_ok "alice@$dom_y1 creates and joins $room" "$(cat "$out_l" "$out_l.err" | tr '\n' ' ' | cut -c1-300)"
fi
v6m__kill_pid "$pid_l"

# ------------------------------------------------------------------ 3
say "3. the s2s traffic ran on the tuns, none on the bridge"
sleep 0.3
for t in tun1 tun2; do
  where="Y${t#tun}'s tun"
  n12=$(pcap_count "$t" "tcp port 5269 and host $ygg1 and host $ygg2")
  ns2=$(pcap_count "$t" "tcp port 5269 and host $ip_s and host $ygg2")
  if ((n12 > 0 && ns2 > 0)); then
    v6m_ok "$where carried port 5269: $n12 packets Y1<->Y2, $ns2 packets S<->Y2"
  else
    v6m_not_ok "$where carried port 5269 Y1<->Y2 and S<->Y2" "$n12 and $ns2 packets"
  fi
done
syn_text="Y1->Y2 $(syns tun2 "$ygg1" "$ygg2"), Y2->Y1 $(syns tun2 "$ygg2" "$ygg1"), S->Y2 $(syns tun2 "$ip_s" "$ygg2"), Y2->S $(syns tun2 "$ygg2" "$ip_s")"
if ! grep -qE ' 0(,|$)' <<<"$syn_text"; then
  v6m_ok "Y2's tun saw connections opened each way (SYNs: $syn_text)"
else
  v6m_not_ok "Y2's tun saw connections opened each way" "SYNs: $syn_text"
fi
s1=$(syns tun1 "$ip_s" "$ygg2")
if ((s1 > 0)); then v6m_ok "S's connections to Y2 crossed Y1's tun ($s1 SYNs)"; else v6m_not_ok "S's connections to Y2 crossed Y1's tun" "0 SYNs"; fi
b5269=$(pcap_count bridge 'tcp port 5269')
bpeer=$(pcap_count bridge "tcp port $peer_port and host $ula1 and host $ula2")
bother=$(pcap_count bridge "tcp and not (tcp port $peer_port and host $ula1 and host $ula2)")
if ((b5269 == 0 && bother == 0 && bpeer > 0)); then
  v6m_ok "the bridge carried only the yggdrasil peering ($bpeer packets on port $peer_port), no port-5269 packet"
else
  v6m_not_ok "the bridge carried only the yggdrasil peering, no port-5269 packet" \
    "port 5269: $b5269, peering: $bpeer, other TCP: $bother: $(pcap_lines bridge "tcp and not tcp port $peer_port" | head -n 2 | tr '\n' ' ')"
fi

# ------------------------------------------------------------------ 4
say "4. DNS and logs"
n=$(dns_count)
if ((n == dns_base)); then
  v6m_ok "0 DNS packets on the bridge since the canaries (Prosody x3 and the yggdrasil daemons)"
else
  v6m_not_ok "0 DNS packets on the bridge since the canaries" \
    "$((n - dns_base)) more: $(dns_queries | tail -n +"$((dns_base + 1))" | grep -oE '(A|AAAA|SRV)\? [^ ]+' | sort -u | head -n 6 | tr '\n' ' ')"
fi
logs_lack "no Lua traceback in the whole log" 'stack traceback' y1 y2 s
for n in y1 y2; do
  v6m_check "$n: the yggdrasil daemon still runs" kill -0 "$(cat "$V6M_TMP/node/$n/ygg.pid")"
done
note "suite time: ${SECONDS} s"
v6m_finish
