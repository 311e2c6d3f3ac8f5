#!/usr/bin/env bash
# The short form of bench/names-fuzz.lua for npm test: 50,000 random and
# mutated names through v6alt.decode (strict and lax) on lua5.1, lua5.4 and
# luajit; the properties are listed at the top of bench/names-fuzz.lua.
# Results in lib.sh's protocol: "ok - …" / "not ok - …" lines, then
# "names-fuzz: N passed, N failed", and "names-fuzz <passed> <failed>" appended
# to $V6M_RESULTS when set. Knobs: FUZZ_NAMES=50000 FUZZ_LUAS="lua5.1 lua5.4 luajit".
set -u
cd "$(dirname "$0")/.." || exit 2
names=${FUZZ_NAMES:-50000}
passed=0 failed=0 digests=""
for lua in ${FUZZ_LUAS:-lua5.1 lua5.4 luajit}; do
  if out=$(timeout 120 "$lua" bench/names-fuzz.lua dist "$names" 2>&1); then
    echo "ok - names fuzz on $lua: $(head -n 1 <<<"$out" | sed 's/^[^:]*: //')"
    passed=$((passed + 1))
  else
    echo "not ok - names fuzz on $lua ($(grep -E 'violations|P[0-9]|rror' <<<"$out" | head -n 4 | tr '\n' ' '))"
    failed=$((failed + 1))
  fi
  digests+="$(grep -oE '"digest":[0-9]+' <<<"$out" | head -n 1) "
done
if [[ $(tr ' ' '\n' <<<"$digests" | grep -v '^$' | sort -u | wc -l) == 1 ]]; then
  echo "ok - names fuzz: the same name sequence on every Lua (${digests%% *})"
  passed=$((passed + 1))
else
  echo "not ok - names fuzz: the same name sequence on every Lua (digests: $digests)"
  failed=$((failed + 1))
fi
echo "names-fuzz: $passed passed, $failed failed"
[[ -n ${V6M_RESULTS:-} ]] && echo "names-fuzz $passed $failed" >>"$V6M_RESULTS"
((failed == 0))
