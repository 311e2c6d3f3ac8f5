#!/usr/bin/env bash
# The .v6.alt resolver (SPEC §6) for clients and servers that know nothing of
# .v6.alt, end to end.
#
#   sudo bash test/integration/resolver-peers.sh
#
# Nodes on the mesh (all addresses in $V6M_PREFIX::/64, each name the .v6.alt
# name of its node's address):
#   m   Prosody 13 with the module (the rock from build/rocks/): the server the
#       clients log in to and every peer federates with
#   m2  Prosody 13 with the module: the receiver of the clients' chats
#   r   the resolver: v6alt-dnsd on [r]:5390 (--allow the mesh /64) and, in
#       front of it, dnsmasq on [r]:53 (server=/v6.alt/[r]#5390,
#       rebind-domain-ok=/v6.alt/, stop-dns-rebind, no upstream)
#   c   the clients: go-sendxmpp, slixmpp and @xmpp/client, given only the
#       JID and the password
#   e   ejabberd 23.01 (Debian), without the module of course
#   p   Prosody 13 without the module
# c, e and p have /etc/netns/<ns>/resolv.conf naming r (port 53, as glibc and
# most clients need); m and m2 keep the harness's default, the dead hub
# address, so any DNS query of theirs would show on the bridge.
#
# Checks (besides the setup): c resolves m's name through r (getaddrinfo) and
# nothing outside .v6.alt; dnsmasq needs rebind-domain-ok=/v6.alt/ when
# stop-dns-rebind is on (a second dnsmasq without it drops the ULA answer);
#  1. Each client in c sends a chat as alice@m (found through the resolver:
#     SRV _xmpp-client._tcp, AAAA) to bob@m2; bob (client.mjs, explicit
#     service) receives it. The module routes m -> m2 without DNS.
#  2. ejabberd (e) and Prosody without the module (p) federate both ways with
#     m through the resolver: a chat each way delivered; the log says how each
#     direction authenticated (SASL EXTERNAL or dialback).
#  3. The module's own federation (m <-> m2, a chat each way, and every
#     connection above) sends 0 DNS packets: the trap on the hub bridge sees no
#     DNS packet from or to m or m2, and their logs show no lookup of a
#     .v6.alt name; it does see the peers' queries to r (a positive control:
#     the capture sees what crosses the bridge), and nothing asks the hub.
#
# What each needed (nothing about .v6.alt anywhere; only the resolver):
#   go-sendxmpp 0.5.6   -n (--no-tls-verify: the self-signed certificate); no -j
#   slixmpp 1.8.3       send-slixmpp.py: connect() with no address (SRV via
#                       aiodns); ssl_context without verification;
#                       sasl_mech="PLAIN" (its SCRAM-PLUS fails on TLS 1.3)
#   @xmpp/client 0.14   send-xmppjs.mjs: service = the bare domain (a domain
#                       alone: "No compatible connection method found");
#                       NODE_TLS_REJECT_UNAUTHORIZED=0; the IPv6 bracket fix
#                       of client.mjs (without it no IPv6 address connects)
#   ejabberd 23.01      lib.sh ejabberd_create: hosts, certfiles,
#                       s2s_use_starttls: required, mod_s2s_dialback; no DNS
#                       option (Erlang reads the namespace's resolv.conf)
#   Prosody 13 without  s2s_secure_auth = false
set -uo pipefail
# shellcheck source=test/integration/lib.sh
source "$(dirname "$0")/lib.sh"

v6m_setup "integration-resolver-peers"
PY=/usr/bin/python3 # Debian's python3, where python3-slixmpp is installed

command -v go-sendxmpp >/dev/null || v6m_die "missing tool: go-sendxmpp (run scripts/install-deps.sh)"
command -v ejabberdctl >/dev/null || v6m_die "missing tool: ejabberdctl (run scripts/install-deps.sh)"
command -v dnsmasq >/dev/null || v6m_die "missing tool: dnsmasq (run scripts/install-deps.sh)"
"$PY" -c 'import slixmpp, aiodns' 2>/dev/null || v6m_die "missing python3-slixmpp / python3-aiodns (run scripts/install-deps.sh)"
[[ -f ${V6M_DNSD:-$V6M_REPO/bin/v6alt-dnsd} ]] || v6m_die "missing bin/v6alt-dnsd"

ip_m=$V6M_PREFIX::d:1
ip_m2=$V6M_PREFIX::d:2
ip_r=$V6M_PREFIX::d:53
ip_c=$V6M_PREFIX::d:c
ip_e=$V6M_PREFIX::d:e
ip_p=$V6M_PREFIX::d:f
dom_m=$(v6alt_name "$ip_m") || v6m_die "v6alt_name $ip_m"
dom_m2=$(v6alt_name "$ip_m2") || v6m_die "v6alt_name $ip_m2"
dom_e=$(v6alt_name "$ip_e") || v6m_die "v6alt_name $ip_e"
dom_p=$(v6alt_name "$ip_p") || v6m_die "v6alt_name $ip_p"
v6m_ok "names: m $dom_m, m2 $dom_m2, ejabberd $dom_e, prosody-without-module $dom_p"

v6m_use_rock
mesh_create

# ---------------------------------------------------------------- the resolver
node_add r "$ip_r"
resolver_start r
node_add c "$ip_c"
node_use_dns c "$ip_r"

# glibc in c, through dnsmasq and the daemon (getent: getaddrinfo, AAAA).
got=$(node_exec c getent ahostsv6 "$dom_m" 2>&1 | awk 'NR == 1 {print $1}')
v6m_check_eq "c: getaddrinfo($dom_m) through dnsmasq -> v6alt-dnsd = m's address" "$ip_m" "$got"
got=$(node_exec c getent ahostsv6 "xmpp.example" 2>&1 | awk 'NR == 1 {print $1}')
v6m_check_eq "c: a name outside .v6.alt is not resolved (no upstream)" "" "$got"

# dnsmasq's stop-dns-rebind (on by default on many routers) drops answers with
# private addresses (ULA fc00::/7, and 2001:db8::/32 too) unless the domain is
# listed in rebind-domain-ok: a second dnsmasq in r, on port 54, with the same
# configuration less that line, shows that the line is needed.
dns_ask() { # NODE SERVER PORT NAME -> "rcode=N answers=N" (one AAAA query over UDP)
  node_exec "$1" "$PY" - "$2" "$3" "$4" <<'PY' 2>&1
import random, socket, struct, sys
server, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
qid = random.randint(0, 65535)
packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
packet += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
packet += struct.pack(">HH", 28, 1)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(packet, (server, port))
reply = s.recv(4096)
flags, _qd, an = struct.unpack(">HHH", reply[2:8])
print(f"rcode={flags & 15} answers={an}")
PY
}
rdir=$V6M_TMP/node/r
sed -e '/^rebind-domain-ok=/d' -e 's/^port=53$/port=54/' -e "s|^pid-file=.*|pid-file=$rdir/dnsmasq54.pid|" \
  -e "s|^log-facility=.*|log-facility=$rdir/dnsmasq54.log|" "$rdir/dnsmasq.conf" >"$rdir/dnsmasq54.conf"
node_exec r dnsmasq --keep-in-foreground --conf-file="$rdir/dnsmasq54.conf" 2>"$rdir/dnsmasq54.err" &
v6m__track_pid $!
for ((i = 0; i < 50; i++)); do
  [[ -n $(node_exec r ss -Hlun 'sport = :54' 2>/dev/null) ]] && break
  sleep 0.1
done
v6m_check_eq "dnsmasq with rebind-domain-ok=/v6.alt/: AAAA of $dom_m (a ULA) answered" \
  "rcode=0 answers=1" "$(dns_ask c "$ip_r" 53 "$dom_m")"
v6m_check_eq "dnsmasq with stop-dns-rebind but without rebind-domain-ok: that AAAA is dropped" \
  "rcode=0 answers=0" "$(dns_ask c "$ip_r" 54 "$dom_m")"

# ---------------------------------------------------------------- servers
prosody_create m 13 "$dom_m" "$ip_m"
prosody_create m2 13 "$dom_m2" "$ip_m2"
# Without the module nothing vouches for m's self-signed certificate: with
# s2s_secure_auth = true (the harness's default) p would refuse m both ways.
# s2s_secure_auth = false (Prosody's own default) keeps TLS required
# (s2s_require_encryption) but lets p accept m by dialback and connect to m
# without verifying its certificate.
prosody_create --no-module p 13 "$dom_p" "$ip_p" 's2s_secure_auth = false'
node_use_dns p "$ip_r"
ejabberd_create e "$dom_e" "$ip_e"
node_use_dns e "$ip_r"

for n in m m2; do
  if prosody_install_rock "$n" "$rock"; then
    v6m_ok "$n: prosodyctl install $(basename "$rock")"
  else
    v6m_not_ok "$n: prosodyctl install $(basename "$rock")" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
  fi
done
for n in m m2 p; do
  v6m_check "$n: starts ($(prosody_domain "$n"))" prosody_start "$n" || exit 1
done
v6m_check "m: s2s_v6mesh is loaded" prosody_module_loaded m s2s_v6mesh
for n in m m2; do
  v6m_check "$n: resolv.conf still names the dead hub address" \
    grep -qx "nameserver $V6M_HUB_IP" "/etc/netns/$V6M_ID-$n/resolv.conf"
done
v6m_check "e: ejabberd 23.01 starts ($dom_e, own config dir, spool, node name and cookie)" ejabberd_start e || exit 1

v6m_check "adduser alice on m" prosody_adduser m alice pw-alice
v6m_check "adduser bob on m2" prosody_adduser m2 bob pw-bob
v6m_check "adduser dave on p" prosody_adduser p dave pw-dave
v6m_check "adduser carol on e (ejabberdctl register)" ejabberd_adduser e carol pw-carol

# receive_check DESC RECV_NODE RECV_SERVICE RECV_DOMAIN RUSER RPASS BODY SEND_NODE SENDER_CMD...
# The receiver (client.mjs recv, explicit service) gets online first, then
# SENDER_CMD runs inside SEND_NODE (timeout 40 s); ok when the receiver got BODY.
receive_check() {
  local desc=$1 rnode=$2 rservice=$3 rdomain=$4 ruser=$5 rpass=$6 body=$7 snode=$8
  shift 8
  local out rpid rc=0 src=0 sout
  out=$V6M_TMP/recv.$RANDOM.out
  sout=$V6M_TMP/send.$RANDOM.out
  client_start "$rnode" "$out" recv --service "$rservice" --domain "$rdomain" --user "$ruser" \
    --pass "$rpass" --count 1 --timeout 45
  rpid=$V6M_CLIENT_PID
  if ! client_wait_for "$out" '"presence-sent"' 15; then
    v6m_not_ok "$desc" "receiver did not get online: $(cat "$out" "$out.err" | tr '\n' ' ')"
    v6m__kill_pid "$rpid"
    return 1
  fi
  node_exec "$snode" env -i HOME="$V6M_TMP/home" PATH="$V6M_PATH" LANG=C.UTF-8 \
    timeout 40 "$@" >"$sout" 2>&1 || src=$?
  client_wait "$rpid" 50 || rc=$?
  if ((rc == 0)) && grep -qF "\"body\":\"$body\"" "$out"; then
    v6m_ok "$desc"
    return 0
  fi
  v6m_not_ok "$desc" "receiver exit $rc; sender exit $src: $(grep -v '^Using slower stringprep' "$sout" | tail -n 4 | tr '\n' ' ')"
  return 1
}
mkdir -p "$V6M_TMP/home"

# ---------------------------------------------------------------- 1. clients
svc_m2="xmpp://[$ip_m2]:5222"
body="go-sendxmpp via the resolver"
# shellcheck disable=SC2016 # ($1.. are expanded by that sh)
receive_check "1. go-sendxmpp -n -u alice@$dom_m (no server given) -> bob@$dom_m2 delivered" \
  m2 "$svc_m2" "$dom_m2" bob pw-bob "$body" c \
  sh -c 'printf "%s\n" "$1" | go-sendxmpp -n -u "$2" -p "$3" "$4"' _ \
  "$body" "alice@$dom_m" pw-alice "bob@$dom_m2"

body="slixmpp via the resolver"
receive_check "1. slixmpp connect() with no address, alice@$dom_m -> bob@$dom_m2 delivered" \
  m2 "$svc_m2" "$dom_m2" bob pw-bob "$body" c \
  "$PY" "$V6M_LIB_DIR/send-slixmpp.py" "alice@$dom_m" pw-alice "bob@$dom_m2" "$body" 30

body="xmpp.js via the resolver"
receive_check "1. @xmpp/client with service = the domain, alice@$dom_m -> bob@$dom_m2 delivered" \
  m2 "$svc_m2" "$dom_m2" bob pw-bob "$body" c \
  "$V6M_NODE" "$V6M_LIB_DIR/send-xmppjs.mjs" "alice@$dom_m" pw-alice "bob@$dom_m2" "$body" 30

# ---------------------------------------------------------------- 2. servers without the module
svc_m="xmpp://[$ip_m]:5222"
svc_e="xmpp://[$ip_e]:5222"
receive_check "2. chat alice@$dom_m -> carol@$dom_e (ejabberd) delivered" \
  e "$svc_e" "$dom_e" carol pw-carol "m to ejabberd" m \
  "$V6M_NODE" "$V6M_LIB_DIR/client.mjs" send --service "$svc_m" --domain "$dom_m" --user alice \
  --pass pw-alice --to "carol@$dom_e" --body "m to ejabberd" --timeout 30 --linger-ms 300
receive_check "2. chat carol@$dom_e (ejabberd) -> alice@$dom_m delivered" \
  m "$svc_m" "$dom_m" alice pw-alice "ejabberd to m" e \
  "$V6M_NODE" "$V6M_LIB_DIR/client.mjs" send --service "$svc_e" --domain "$dom_e" --user carol \
  --pass pw-carol --to "alice@$dom_m" --body "ejabberd to m" --timeout 30 --linger-ms 300
chat_check m alice pw-alice p dave pw-dave "m to prosody without the module" 30
chat_check p dave pw-dave m alice pw-alice "prosody without the module to m" 30

# How each direction authenticated, from the logs. Expected: the module
# vouches for the peers' self-signed certificates (their names encode the
# addresses they connect from), so e and p log in to m with SASL EXTERNAL;
# neither e nor p can verify m's self-signed certificate, so m falls back to
# dialback, which e and p verify by connecting back to m through the resolver.
auth_check() { # DESC LOGFILE ERE...: ok when every ERE matches a line of LOGFILE
  local desc=$1 f=$2 ere
  shift 2
  for ere in "$@"; do
    if ! grep -qE -- "$ere" "$f" 2>/dev/null; then
      v6m_not_ok "$desc" "no line matching $ere in $(basename "$f")"
      return 1
    fi
  done
  v6m_ok "$desc"
}
q() { printf '%s' "${1//./\\.}"; } # a domain as an ERE
elog=$(ejabberd_log e)
auth_check "2. m -> e: dialback (ejabberd cannot verify m's certificate)" "$elog" \
  "Accepted inbound s2s dialback authentication $(q "$dom_m") -> $(q "$dom_e")"
auth_check "2. e -> m: SASL EXTERNAL (the module trusts e's certificate by address)" "$elog" \
  "Accepted outbound s2s EXTERNAL authentication $(q "$dom_e") -> $(q "$dom_m")"
auth_check "2. m -> p: dialback (p cannot verify m's certificate)" "$(prosody_log p)" \
  "<result [^>]*(from='$(q "$dom_m")'[^>]*xmlns='jabber:server:dialback'|xmlns='jabber:server:dialback'[^>]*from='$(q "$dom_m")')" \
  "connection $(q "$dom_m")->$(q "$dom_p") is now authenticated"
auth_check "2. p -> m: SASL EXTERNAL (the module trusts p's certificate by address)" "$(prosody_log m)" \
  "Accepting SASL EXTERNAL identity from $(q "$dom_p")"

# ---------------------------------------------------------------- 3. the module's own federation
chat_check m alice pw-alice m2 bob pw-bob "m to m2 by the module" 30
chat_check m2 bob pw-bob m alice pw-alice "m2 to m by the module" 30

n=$(dns_count_match "host $ip_m or host $ip_m2")
if ((n == 0)); then
  v6m_ok "3. 0 DNS packets from or to m and m2 on the mesh"
else
  v6m_not_ok "3. 0 DNS packets from or to m and m2 on the mesh" \
    "$n: $(dns_queries_match "host $ip_m or host $ip_m2" | head -n 3 | tr '\n' ' ')"
fi
logs_lack "no DNS lookup of a .v6.alt name in its log (3)" 'Resolve [^ ]*v6\.alt' m m2
n=$(dns_count_match "dst host $V6M_HUB_IP")
v6m_check_eq "3. no DNS packet to the hub address (c, e, p ask r)" 0 "$n"
queries=$(dns_queries_match "dst host $ip_r and dst port 53")
for want in "c _xmpp-client._tcp.$dom_m" "c AAAA? $dom_m" "e _xmpp-server._tcp.$dom_m" \
  "p _xmpp-server._tcp.$dom_m" "p AAAA? $dom_m"; do
  src=${want%% *}
  what=${want#* }
  srcip=ip_$src
  if grep -F " ${!srcip}." <<<"$queries" | grep -qF "$what"; then
    v6m_ok "3. the trap saw $src ask r for $what (positive control)"
  else
    v6m_not_ok "3. the trap saw $src ask r for $what (positive control)" \
      "$(grep -F " ${!srcip}." <<<"$queries" | grep -oE '(A|AAAA|SRV)\? [^ ]+' | sort -u | head -n 6 | tr '\n' ' ')"
  fi
done

logs_lack "no Lua traceback in its log" 'stack traceback' m m2 p
v6m_check "e: ejabberdctl stop ends the node cleanly" ejabberd_stop e
v6m_finish
