#!/usr/bin/env bash
# The whole test suite: static checks, unit specs on every Lua, and the
# integration suites against real Prosody servers. Every suite appends
# "<name> <passed> <failed>" to $V6M_RESULTS; the closing line sums them.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
V6M_RESULTS=$(mktemp)
export V6M_RESULTS
trap 'rm -f "$V6M_RESULTS"' EXIT

check() { # check NAME COMMAND... : a one-test suite
  local name=$1; shift
  if "$@" >/tmp/v6m-check.$$ 2>&1; then
    echo "ok - $name"; echo "$name 1 0" >>"$V6M_RESULTS"
  else
    echo "not ok - $name"; sed 's/^/    /' /tmp/v6m-check.$$ | tail -20
    echo "$name 0 1" >>"$V6M_RESULTS"
  fi
  rm -f /tmp/v6m-check.$$
}

suite() { # suite NAME SCRIPT ARGS... : a script that reports its own counts
  local name=$1; shift
  local before; before=$(wc -l <"$V6M_RESULTS")
  echo "== $name"
  "$@"
  local rc=$?
  # A suite that died without reporting anything counts as one failure.
  if [[ $(wc -l <"$V6M_RESULTS") -eq $before ]]; then
    echo "not ok - $name reported no results (exit $rc)"
    echo "$name 0 1" >>"$V6M_RESULTS"
  elif [[ $rc -ne 0 ]] && ! awk -v b="$before" 'NR>b && $3>0 {f=1} END {exit !f}' "$V6M_RESULTS"; then
    echo "not ok - $name exited $rc although its checks passed"
    echo "$name 0 1" >>"$V6M_RESULTS"
  fi
}

echo "== static checks"
check "dist/ is up to date with src/" bash scripts/check-dist.sh
check "luacheck dist/ is clean" luacheck --no-color -q dist/
check "the rock builds" bash scripts/build-rock.sh

suite unit bash scripts/test-unit.sh
integration=test/integration
for version in 13 0.12; do
  suite "shell ($version)" bash $integration/shell.sh "$version"
done
suite "harness self-test" bash $integration/harness-selftest.sh 13 0.12
for pair in "13 13" "13 0.12" "0.12 13" "0.12 0.12"; do
  # shellcheck disable=SC2086 # two words on purpose
  suite "federation smoke ($pair)" bash $integration/federation-smoke.sh $pair
done
# The scenario suites, each on Prosody 13, on 0.12, and with a 0.12 server
# talking to a 13 one.
for f in $integration/suites/*.sh; do
  [[ -e $f ]] || continue
  for pair in "13 13" "0.12 0.12" "0.12 13"; do
    # shellcheck disable=SC2086
    suite "$(basename "$f" .sh) ($pair)" bash "$f" $pair
  done
done

awk '{p += $2; f += $3} END {printf "%d passed, %d failed\n", p, f; exit (f > 0 || p == 0)}' "$V6M_RESULTS"
