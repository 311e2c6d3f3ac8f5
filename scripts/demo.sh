#!/usr/bin/env bash
# The main job, for a person to watch: build the rock, install it with each
# server's own `prosodyctl install` into two real Prosody 13 servers, each in
# its own network namespace with its own IPv6 address and a .v6.alt name, send a
# chat from one to the other, and let a user of B talk in a room on A's MUC
# component (groups.<A's name>) -- with no DNS server anywhere. The module is in
# the global modules_enabled only, as the README says; components do not load
# that list, and the module covers them all the same. Last, a client that knows
# nothing of .v6.alt (go-sendxmpp) finds A by DNS through v6alt-dnsd and sends
# a chat given only a JID and a password.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=../test/integration/lib.sh
source test/integration/lib.sh

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { sed 's/^/    /'; }

v6m_setup demo

say "Building the rock from dist/"
rock=$(bash scripts/build-rock.sh) || v6m_die "rock build failed"
echo "    $rock"

ip_a=${V6M_PREFIX}::a
ip_b=${V6M_PREFIX}::b
name_a=$(v6alt_name "$ip_a")
name_b=$(v6alt_name "$ip_b")

say "A mesh of two hosts (network namespaces), DNS pointed at an address where nothing answers"
mesh_create
echo "    server A: [$ip_a]  ->  $name_a"
echo "    server B: [$ip_b]  ->  $name_b"

say "Installing with prosodyctl install (A from the rock file, B from a rocks server folder)"
prosody_create --tail "Component \"groups.$name_a\" \"muc\"" a 13 "$name_a" "$ip_a"
prosody_create b 13 "$name_b" "$ip_b"
echo "    A's configuration, the end of it:"
tail -n 2 "$(dirname "$(prosody_log a)")/prosody.cfg.lua" | show
v6m_check "prosodyctl install $(basename "$rock") on A" prosody_install_rock a "$rock"
echo "$V6M_OUT" | tail -n 2 | show
v6m_check "prosodyctl install --server=build/rocks mod_s2s_v6mesh on B" prosody_install_rock b "$root/build/rocks"
echo "$V6M_OUT" | tail -n 2 | show

say "Starting both servers (s2s_require_encryption = true, s2s_secure_auth = true, self-signed certificates)"
v6m_check "server A started" prosody_start a || exit 1
v6m_check "server B started" prosody_start b || exit 1

say "prosodyctl shell v6alt get_domain $ip_a   (on A)"
prosody_shell a v6alt get_domain "$ip_a"
echo "$V6M_OUT" | show
v6m_check_eq "A's shell prints A's name" "OK: Encoded hostname: $name_a" "$V6M_OUT"

prosody_adduser a alice alicepass >/dev/null
prosody_adduser b bob bobpass >/dev/null

say "bob@$name_b waits; alice@$name_a sends him a chat"
out=$V6M_TMP/bob.out
mapfile -t bob_args < <(client_args b bob bobpass)
client_start b "$out" recv "${bob_args[@]}" --count 1 --timeout 30
client_wait_for "$out" '"event":"online"' 15 || v6m_not_ok "bob is online" "$(cat "$out.err")"
mapfile -t alice_args < <(client_args a alice alicepass)
client_run a send "${alice_args[@]}" --to "bob@$name_b" --body "Hello from $name_a, no DNS involved" --timeout 20
if client_wait_for "$out" '"event":"message"' 20; then
  v6m_ok "bob received alice's chat"
  grep '"event":"message"' "$out" | show
else
  v6m_not_ok "bob received alice's chat" "$(tail -n 3 "$out.err")"
fi

room=lobby@groups.$name_a
say "alice (A) and bob (B) join the room $room on A's MUC component; bob says hello"
muc_out=$V6M_TMP/alice-muc.out
client_start a "$muc_out" muc "${alice_args[@]}" --room "$room/alice" --stay 25
client_wait_for "$muc_out" '"event":"joined"' 15 || v6m_not_ok "alice joined $room" "$(tail -n 3 "$muc_out.err")"
client_run b muc "${bob_args[@]}" --room "$room/bob" --say "Hello room, from $name_b" --stay 6
grep -E '"event":"(joined|muc-presence|groupchat)"' <<<"$V6M_OUT" | sed 's/^/    bob: /'
if client_wait_for "$muc_out" "\"body\":\"Hello room, from $name_b\"" 15; then
  v6m_ok "alice, in the room on A, got bob's groupchat message from B"
  grep '"event":"groupchat"' "$muc_out" | sed 's/^/    alice: /'
else
  v6m_not_ok "alice, in the room on A, got bob's groupchat message from B" "$(tail -n 3 "$muc_out")"
fi

ip_r=${V6M_PREFIX}::53:1
ip_c=${V6M_PREFIX}::c
say "A client that knows nothing of .v6.alt: go-sendxmpp, given only alice's JID and password"
echo "    resolver node [$ip_r]: v6alt-dnsd on port 5390, dnsmasq on port 53 with server=/v6.alt/[$ip_r]#5390"
echo "    client node [$ip_c]: resolv.conf names [$ip_r]"
node_add r "$ip_r"
node_add c "$ip_c"
resolver_start r
node_use_dns c "$ip_r"
client_start b "$out.2" recv "${bob_args[@]}" --count 1 --timeout 30
client_wait_for "$out.2" '"event":"presence-sent"' 15 || v6m_not_ok "bob is online again" "$(cat "$out.2.err")"
echo "    \$ echo ... | go-sendxmpp -n -u alice@$name_a -p alicepass bob@$name_b"
printf 'Hello from go-sendxmpp, which found %s by DNS\n' "$name_a" |
  node_exec c go-sendxmpp -n -u "alice@$name_a" -p alicepass "bob@$name_b" 2>&1 | show
if client_wait_for "$out.2" '"event":"message"' 20; then
  v6m_ok "bob received the chat go-sendxmpp sent with only alice's JID"
  grep '"event":"message"' "$out.2" | show
else
  v6m_not_ok "bob received the chat go-sendxmpp sent with only alice's JID" "$(tail -n 3 "$out.2" "$out.2.err")"
fi

say "What the servers logged about each other"
grep -hE "s2s_v6mesh|Trusting|Refusing|is served at" "$(prosody_log a)" | grep -v debug | sed 's/^/    A: /' | tail -n 6
grep -hE "s2s_v6mesh|Trusting|Refusing|is served at" "$(prosody_log b)" | grep -v debug | sed 's/^/    B: /' | tail -n 6

say "DNS packets the servers sent (the client's own lookups at the resolver are the only DNS)"
n=$(dns_count_match "host $ip_a or host $ip_b")
echo "    $n"
v6m_check_eq "no DNS query was made by either server" 0 "$n"
