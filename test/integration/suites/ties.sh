#!/usr/bin/env bash
# Names of addresses whose base32 form has tied longest runs of 'a' (SPEC §2).
#
#   sudo bash test/integration/suites/ties.sh [VERSION_A [VERSION_B]]   (13, 0.12, 0.12-lua5.1, 0.12-luajit or trunk; default 13 13)
#
# On a tie the canonical name replaces the FIRST longest run with '-', the
# reference implementation the LAST; the module must accept both spellings and
# nothing else. Server A (VERSION_A) is configured with its canonical name,
# server B (VERSION_B) with the reference spelling of its address (an address
# with three tied runs, so a third, invalid spelling exists: the hyphen on the
# middle run). A's address is the first of PREFIX::X:0:0:Y, ::X:0:Y:0,
# ::X:Y:0:0 whose two spellings differ (dist/'s encode vs encode_reference);
# B's is a fixed address with three tied runs (V6M_TIES_IP_B overrides); the
# runs are also counted independently here, so the codec is checked too:
#   - chats both ways between A (canonical) and B (reference spelling);
#   - B loads without a "not canonical" warning (the reference form is valid);
#   - `v6alt get_domain <B's ip>` prints B's CANONICAL name on both servers, and
#     `v6alt get_ip` of both spellings prints B's address;
#   - the middle-run and the uncompressed spellings of B bounce at once with
#     remote-server-not-found and the reason, and get_ip refuses them;
#   - 0 DNS packets.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

va=${1:-13}
vb=${2:-13}
v6m_setup "ties-$va-$vb"

v6m_use_rock

# tie_info IPV6 -> "ip canonical reference uncompressed middle tied_runs run_length first last"
# (middle/first/last: the hyphen on the second/first/last of the tied runs,
# spelled here; middle is "-" if fewer than 3).
# Runs are counted here, independently of the codec; only encode/encode_reference
# come from dist/.
tie_lua='package.path = "dist/?.lua;" .. package.path
local v = require("mod_s2s_v6mesh.v6alt")
local function info(ip)
  local p = assert(v.parse_ip(ip))
  local canon, ref = v.encode(p), v.encode_reference(p)
  local c = canon:gsub("%.v6%.alt$", "")
  local full = c:find("-", 1, true) and c:gsub("%-", string.rep("a", 26 - (#c - 1))) or c
  -- eligible runs: start at index >= 2, end at index <= 25, length >= 2
  local runs, i = {}, 2
  while i <= 25 do
    if full:sub(i, i) == "a" then
      local j = i
      while j + 1 <= 25 and full:sub(j + 1, j + 1) == "a" do j = j + 1 end
      if j - i + 1 >= 2 then runs[#runs + 1] = { i, j - i + 1 } end
      i = j + 1
    else
      i = i + 1
    end
  end
  local longest, tied = 0, {}
  for _, r in ipairs(runs) do if r[2] > longest then longest = r[2] end end
  for _, r in ipairs(runs) do if r[2] == longest then tied[#tied + 1] = r end end
  local function hyphen_at(r) return full:sub(1, r[1] - 1) .. "-" .. full:sub(r[1] + r[2]) .. ".v6.alt" end
  local middle = #tied >= 3 and hyphen_at(tied[2]) or "-"
  local first = #tied >= 1 and hyphen_at(tied[1]) or "-"
  local last = #tied >= 1 and hyphen_at(tied[#tied]) or "-"
  return string.format("%s %s %s %s %s %d %d %s %s", v.format_ip(p), canon, ref, full .. ".v6.alt", middle, #tied, longest, first, last)
end'
tie_info() { (cd "$V6M_REPO" && V6M_ARG=$1 lua5.4 -e "$tie_lua
print(info(os.getenv('V6M_ARG')))"); }
# tie_search MIN_TIED: the first address of the forms PREFIX::X:0:0:Y,
# PREFIX::X:0:Y:0, PREFIX::X:Y:0:0 (X, Y from 1 to ff) whose canonical and
# reference names differ, with at least MIN_TIED tied runs.
tie_search() {
  (cd "$V6M_REPO" && V6M_PFX=$V6M_PREFIX V6M_MIN=$1 lua5.4 -e "$tie_lua
local min, pfx = tonumber(os.getenv('V6M_MIN')), os.getenv('V6M_PFX')
for _, form in ipairs({ '%s:0:%x:0:0:%x', '%s:0:%x:0:%x:0', '%s:0:%x:%x:0:0' }) do
  for x = 1, 0xff do for y = 1, 0xff do
    local ip = string.format(form, pfx, x, y)
    local p = v.parse_ip(ip)
    if p and v.encode(p) ~= v.encode_reference(p) then
      local line = info(ip)
      if tonumber(line:match(' (%d+) %d+ %S+ %S+$')) >= min then print(line) os.exit(0) end
    end
  end end
end
os.exit(1)")
}

if ! read -r ip_a canon_a ref_a full_a _ tied_a len_a first_a last_a < <(tie_search 2); then
  v6m_not_ok "search $V6M_PREFIX::X:0:0:Y for a tie" "none found"
  exit 1
fi
v6m_ok "A: [$ip_a] has $tied_a tied runs of $len_a 'a': canonical $canon_a, reference $ref_a"
# Three tied runs of three: 7vwwk43iae aaa b aaa b aaa b bbb e (for the default prefix).
# Any address works if the checks below hold; searched ones rarely have 3 ties.
ip_b_try=${V6M_TIES_IP_B:-$V6M_PREFIX:0:400:40:4:2109}
read -r ip_b canon_b ref_b full_b middle_b tied_b len_b first_b last_b < <(tie_info "$ip_b_try")
if [[ $canon_b != "$ref_b" && $tied_b -ge 3 ]]; then
  v6m_ok "B: [$ip_b] has $tied_b tied runs of $len_b 'a': canonical $canon_b, reference $ref_b, middle $middle_b"
else
  v6m_not_ok "B: [$ip_b_try] has 3 tied runs" "got $tied_b runs of $len_b: $canon_b / $ref_b (set V6M_TIES_IP_B)"
  exit 1
fi
# The codec's two spellings against runs counted here: canonical = first run,
# reference = last run; and the names the harness computes are the canonical ones.
if [[ $canon_a == "$first_a" && $ref_a == "$last_a" && $canon_b == "$first_b" && $ref_b == "$last_b" &&
  $(v6alt_name "$ip_a") == "$canon_a" && $(v6alt_name "$ip_b") == "$canon_b" ]]; then
  v6m_ok "encode puts the '-' on the first tied run, encode_reference on the last"
else
  v6m_not_ok "encode puts the '-' on the first tied run, encode_reference on the last" \
    "A: $canon_a/$ref_a vs $first_a/$last_a; B: $canon_b/$ref_b vs $first_b/$last_b"
fi

mesh_create
prosody_create a "$va" "$canon_a" "$ip_a"
prosody_create b "$vb" "$ref_b" "$ip_b"
for n in a b; do
  if ! prosody_install_rock "$n" "$rock"; then
    v6m_not_ok "$n: prosodyctl install" "$(tail -n 3 <<<"$V6M_OUT$V6M_ERR" | tr '\n' ' ')"
  fi
  v6m_check "$n: starts (Prosody $(prosody_version "$n")) as $(prosody_domain "$n")" prosody_start "$n" || exit 1
  v6m_check "$n: s2s_v6mesh is loaded" prosody_module_loaded "$n" s2s_v6mesh
done
if prosody_log_grep b "$(sed 's/[.]/\\./g' <<<"$ref_b") is served at \[$ip_b\]" &&
  ! prosody_log_grep b "Peers running this module will refuse it"; then
  v6m_ok "b: the reference spelling is accepted at load (served at [$ip_b], no 'not canonical' warning)"
else
  v6m_not_ok "b: the reference spelling is accepted at load" "$(grep -m 2 -E 's2s_v6mesh' "$(prosody_log b)" | tr '\n' ' ')"
fi
if prosody_log_grep a "$(sed 's/[.]/\\./g' <<<"$canon_a") is served at \[$ip_a\]"; then
  v6m_ok "a: served at [$ip_a] under its canonical name"
else
  v6m_not_ok "a: served at [$ip_a] under its canonical name" "$(grep -m 2 -E 's2s_v6mesh' "$(prosody_log a)" | tr '\n' ' ')"
fi
v6m_check "adduser alice on a" prosody_adduser a alice pw-alice
v6m_check "adduser bob on b" prosody_adduser b bob pw-bob

chat_check a alice pw-alice b bob pw-bob "tie a to reference-named b" 30
chat_check b bob pw-bob a alice pw-alice "tie reference-named b to a" 30

shell_ok() { # NAME EXPECTED ARGS...
  local name=$1 expected=$2 rc=0
  shift 2
  prosody_shell "$name" "$@" || rc=$?
  if ((rc == 0)) && [[ $V6M_OUT == "$expected" ]]; then
    v6m_ok "$name: shell $* -> $expected"
  else
    v6m_not_ok "$name: shell $* -> $expected" "exit $rc, stdout '$V6M_OUT', stderr '$V6M_ERR'"
  fi
}
shell_err() { # NAME WHY ARGS...: non-zero exit, one line naming WHY
  local name=$1 why=$2 rc=0 all
  shift 2
  prosody_shell "$name" "$@" || rc=$?
  all=$(printf '%s\n%s\n' "$V6M_OUT" "$V6M_ERR" | sed '/^[[:space:]]*$/d')
  if ((rc != 0)) && [[ $(wc -l <<<"$all") == 1 && $all == *"$why"* ]]; then
    v6m_ok "$name: shell $* refused: $all"
  else
    v6m_not_ok "$name: shell $* refused ($why)" "exit $rc: $(tr '\n' '|' <<<"$all")"
  fi
}
for n in a b; do
  shell_ok "$n" "OK: Encoded hostname: $canon_b" v6alt get_domain "$ip_b"
  shell_ok "$n" "OK: Encoded hostname: $canon_a" v6alt get_domain "$ip_a"
  shell_ok "$n" "OK: IP address: $ip_b" v6alt get_ip "$canon_b"
  shell_ok "$n" "OK: IP address: $ip_b" v6alt get_ip "$ref_b"
  shell_ok "$n" "OK: IP address: $ip_a" v6alt get_ip "$ref_a"
  shell_err "$n" "is not where an encoder puts it" v6alt get_ip "$middle_b"
  shell_err "$n" "uncompressed" v6alt get_ip "$full_b"
done

# expect_bounce FROM USER PASS TO_JID WHY: error reply remote-server-not-found
# whose text contains WHY, within 2 s, and no connection attempt for it.
expect_bounce() {
  local from=$1 user=$2 pass=$3 to=$4 why=$5 reply cond text ms rc=0
  local -a sargs
  mapfile -t sargs < <(client_args "$from" "$user" "$pass")
  client_run "$from" send "${sargs[@]}" --to "$to" --body "to a third spelling" --expect-error --timeout 15 || rc=$?
  reply=$(grep '"error-reply"' <<<"$V6M_OUT" | head -n 1)
  cond=$(node -e 'const o=JSON.parse(process.argv[1]||"{}");console.log(o.condition??"")' "$reply" 2>/dev/null)
  text=$(node -e 'const o=JSON.parse(process.argv[1]||"{}");console.log(o.text??"")' "$reply" 2>/dev/null)
  ms=$(node -e 'const o=JSON.parse(process.argv[1]||"{}");console.log(o.elapsed_ms??99999)' "$reply" 2>/dev/null)
  if ((rc == 0)) && [[ $cond == remote-server-not-found && $text == *"$why"* ]] && ((ms < 2000)); then
    v6m_ok "$from: chat to $to bounced with remote-server-not-found in ${ms} ms: $text"
  else
    v6m_not_ok "$from: chat to $to bounced with remote-server-not-found ($why)" "exit $rc: $(tr '\n' ' ' <<<"$V6M_OUT")"
  fi
  local host=${to#*@}
  if grep -E "s2sout[0-9a-f]+" "$(prosody_log "$from")" | grep -qF "$host"; then
    v6m_not_ok "$from: no s2s connection for $host" "$(grep -E 's2sout' "$(prosody_log "$from")" | grep -F -m 1 "$host")"
  else
    v6m_ok "$from: no s2s connection for $host"
  fi
}
expect_bounce a alice pw-alice "bob@$middle_b" "is not where an encoder puts it"
expect_bounce a alice pw-alice "bob@$full_b" "uncompressed"
# The receiving side too: B's users cannot be reached under A's non-canonical
# spelling from B (A's address has only two tied runs: the uncompressed form).
expect_bounce b bob pw-bob "alice@$full_a" "uncompressed"

n=$(dns_count)
if ((n == 0)); then
  v6m_ok "0 DNS packets on the mesh"
else
  v6m_not_ok "0 DNS packets on the mesh" "$n counted: $(dns_queries | grep -oE '(A|AAAA|SRV)\? [^ ]+' | sort -u | head -n 5 | tr '\n' ' ')"
fi
logs_lack "no DNS lookup of a .v6.alt name, no traceback in its log" 'Resolve [^ ]*v6\.alt|stack traceback' a b
v6m_finish
